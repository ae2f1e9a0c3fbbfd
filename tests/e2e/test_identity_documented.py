"""Identity pools against Cognito's documented behaviour, through boto3 against a real server.

The spec: the Amazon Cognito Federated Identities API reference and botocore's ``cognito-identity`` model, and
the developer guide's "Identity pools authentication flow" (enhanced and basic), "Role-based access control"
and "Developer-authenticated identities". Each test pins a property an attacker or a careless configuration
would otherwise break, with the store checked unchanged after a refusal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.e2e.aws_support import identity_trust
from tests.e2e.test_identity_pools import (
    UserPool,
    caller,
    claims_of,
    id_token,
    make_user,
    make_user_pool,
    provider,
    sign_in,
    verify_session,
)
from tests.support import ADMIN_KEY_ID, ADMIN_SECRET, REGION, GatehouseServer

DEVELOPER = "login.example.app"


def error_of(call: Callable[[], Any]) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as exc:
        call()
    error = exc.value.response["Error"]
    return (
        str(error["Code"]),
        str(error.get("Message", "")),
        int(exc.value.response["ResponseMetadata"]["HTTPStatusCode"]),
    )


@pytest.fixture(scope="module")
def raw_ci(gatehouse: GatehouseServer) -> Any:
    """Signed, with boto3's own parameter checks off, so that the server's validation is what answers."""
    return boto3.client(
        "cognito-identity",
        endpoint_url=gatehouse.url,
        region_name=REGION,
        aws_access_key_id=ADMIN_KEY_ID,
        aws_secret_access_key=ADMIN_SECRET,
        config=Config(parameter_validation=False, retries={"max_attempts": 1, "mode": "standard"}),
    )


@pytest.fixture(scope="module")
def raw_public_ci(gatehouse: GatehouseServer) -> Any:
    """Unsigned, with boto3's own parameter checks off."""
    return boto3.client(
        "cognito-identity",
        endpoint_url=gatehouse.url,
        region_name=REGION,
        config=Config(parameter_validation=False, signature_version=UNSIGNED, retries={"max_attempts": 1}),
    )


@pytest.fixture(scope="module")
def users(idp: Any, gatehouse: GatehouseServer) -> UserPool:
    pool = make_user_pool(idp, gatehouse, "doc-users")
    for name in ("amy", "ben", "cat", "dan", "eve", "fay", "gus", "hal"):
        make_user(idp, pool, name)
    return pool


def identities_of(ci: Any, pool_id: str) -> list[dict[str, Any]]:
    found = ci.list_identities(IdentityPoolId=pool_id, MaxResults=60)["Identities"]
    return [{k: v for k, v in i.items()} for i in found]


def logins_of(ci: Any, identity_id: str) -> list[str]:
    return sorted(ci.describe_identity(IdentityId=identity_id)["Logins"])


def identity_count(ci: Any, pool_id: str) -> int:
    return len(ci.list_identities(IdentityPoolId=pool_id, MaxResults=60)["Identities"])


# --- the basic (classic) flow ----------------------------------------------------------------------------------


def test_open_id_token_only_where_the_basic_flow_is_enabled(
    idp: Any, ci: Any, public_ci: Any, users: UserPool, gatehouse: GatehouseServer
) -> None:
    """GetOpenIdToken is the basic flow's first step: Cognito answers InvalidParameterException "Basic (classic)
    flow is not enabled, please use enhanced flow." for a pool without AllowClassicFlow, and "... not supported
    with RoleMappings ..." for a pool with role mappings (role-based access control is enhanced-flow only)."""
    partners = make_user_pool(idp, gatehouse, "doc-partners")
    make_user(idp, partners, "pat")
    enhanced = ci.create_identity_pool(
        IdentityPoolName="enhanced only",
        AllowUnauthenticatedIdentities=True,
        CognitoIdentityProviders=[provider(users), provider(partners)],
    )["IdentityPoolId"]
    amy = {users.key: id_token(idp, users, "amy")}
    identity = public_ci.get_id(IdentityPoolId=enhanced, Logins=amy)["IdentityId"]
    guest = public_ci.get_id(IdentityPoolId=enhanced)["IdentityId"]
    pat = {partners.key: id_token(idp, partners, "pat")}
    for identity_id, logins in ((identity, {**amy, **pat}), (guest, {})):
        code, message, status = error_of(
            lambda identity_id=identity_id, logins=logins: public_ci.get_open_id_token(
                IdentityId=identity_id, Logins=logins
            )
        )
        assert (code, status) == ("InvalidParameterException", 400)
        assert message == "Basic (classic) flow is not enabled, please use enhanced flow."
    # The refused call linked nothing: pat's login is still new to the pool.
    assert logins_of(ci, identity) == [users.key]
    assert public_ci.get_id(IdentityPoolId=enhanced, Logins=pat)["IdentityId"] != identity
    # The same pool with the basic flow enabled hands out OpenID tokens.
    ci.update_identity_pool(
        IdentityPoolId=enhanced,
        IdentityPoolName="enhanced only",
        AllowUnauthenticatedIdentities=True,
        AllowClassicFlow=True,
        CognitoIdentityProviders=[provider(users), provider(partners)],
    )
    token = public_ci.get_open_id_token(IdentityId=identity, Logins=amy)["Token"]
    assert claims_of(token)["sub"] == identity and claims_of(token)["aud"] == enhanced
    assert claims_of(public_ci.get_open_id_token(IdentityId=guest)["Token"])["amr"] == ["unauthenticated"]
    # ... until it maps roles.
    ci.set_identity_pool_roles(
        IdentityPoolId=enhanced,
        Roles={},
        RoleMappings={f"{users.key}:{users.client_id}": {"Type": "Token", "AmbiguousRoleResolution": "Deny"}},
    )
    code, message, _ = error_of(lambda: public_ci.get_open_id_token(IdentityId=identity, Logins=amy))
    assert code == "InvalidParameterException"
    assert message == "Basic (classic) flow is not supported with RoleMappings, please use enhanced flow."


def test_role_mapping_is_not_side_stepped_with_an_open_id_token(
    gatehouse: GatehouseServer, idp: Any, ci: Any, iam: Any, public_ci: Any, users: UserPool
) -> None:
    """Role-based access control: a user pool's RoleMappings entry decides the role of its users. The identity's
    own OpenID token (login ``cognito-identity.amazonaws.com``) names the user pool in its ``amr`` but carries
    none of its claims: presented instead of the ID token, the mapping must still apply (no rule matches, so
    AmbiguousRoleResolution decides), never the pool's default authenticated role."""
    pool_id = ci.create_identity_pool(
        IdentityPoolName="mapped roles",
        AllowUnauthenticatedIdentities=False,
        AllowClassicFlow=True,
        CognitoIdentityProviders=[provider(users)],
        DeveloperProviderName=DEVELOPER,
    )["IdentityPoolId"]
    arns = {
        name: iam.create_role(RoleName=name, AssumeRolePolicyDocument=identity_trust(pool_id))["Role"]["Arn"]
        for name in ("doc-default", "doc-admins")
    }
    ci.set_identity_pool_roles(IdentityPoolId=pool_id, Roles={"authenticated": arns["doc-default"]})
    ben = {users.key: id_token(idp, users, "ben")}
    identity = public_ci.get_id(IdentityPoolId=pool_id, Logins=ben)["IdentityId"]
    # An OpenID token taken while the pool mapped no roles (GetOpenIdToken is refused once it does).
    proof = {"cognito-identity.amazonaws.com": public_ci.get_open_id_token(IdentityId=identity, Logins=ben)["Token"]}
    mapping_key = f"{users.aws_key}:{users.client_id}"
    ci.set_identity_pool_roles(
        IdentityPoolId=pool_id,
        Roles={"authenticated": arns["doc-default"]},
        RoleMappings={mapping_key: {"Type": "Token", "AmbiguousRoleResolution": "Deny"}},
    )
    for logins in (ben, proof):
        code, message, _ = error_of(
            lambda logins=logins: public_ci.get_credentials_for_identity(IdentityId=identity, Logins=logins)
        )
        assert code == "NotAuthorizedException" and "ambiguous role mapping" in message, logins.keys()
    # A developer token minted with the user pool login (its amr names the pool too) is held to the mapping.
    developer = ci.get_open_id_token_for_developer_identity(
        IdentityPoolId=pool_id, Logins={DEVELOPER: "dev-fay", users.key: id_token(idp, users, "fay")}
    )
    assert users.key in claims_of(developer["Token"])["amr"]
    code, _, _ = error_of(
        lambda: public_ci.get_credentials_for_identity(
            IdentityId=developer["IdentityId"], Logins={"cognito-identity.amazonaws.com": developer["Token"]}
        )
    )
    assert code == "NotAuthorizedException"
    # Rules that read claims match nothing in an OpenID token: AuthenticatedRole gives the default role, and
    # the rule's role cannot be asked for.
    ci.set_identity_pool_roles(
        IdentityPoolId=pool_id,
        Roles={"authenticated": arns["doc-default"]},
        RoleMappings={
            mapping_key: {
                "Type": "Rules",
                "AmbiguousRoleResolution": "AuthenticatedRole",
                "RulesConfiguration": {
                    "Rules": [{"Claim": "sub", "MatchType": "NotEqual", "Value": "x", "RoleARN": arns["doc-admins"]}]
                },
            }
        },
    )
    assert caller(gatehouse, public_ci.get_credentials_for_identity(IdentityId=identity, Logins=ben)["Credentials"])[
        "Arn"
    ].endswith("/doc-admins/CognitoIdentityCredentials")
    by_proof = public_ci.get_credentials_for_identity(IdentityId=identity, Logins=proof)["Credentials"]
    assert caller(gatehouse, by_proof)["Arn"].endswith("/doc-default/CognitoIdentityCredentials")
    code, _, _ = error_of(
        lambda: public_ci.get_credentials_for_identity(
            IdentityId=identity, Logins=proof, CustomRoleArn=arns["doc-admins"]
        )
    )
    assert code == "NotAuthorizedException"
    # A developer identity's own token (no mapped provider in its amr) keeps the default role.
    plain = ci.get_open_id_token_for_developer_identity(IdentityPoolId=pool_id, Logins={DEVELOPER: "dev-gus"})
    answer = public_ci.get_credentials_for_identity(
        IdentityId=plain["IdentityId"], Logins={"cognito-identity.amazonaws.com": plain["Token"]}
    )
    assert caller(gatehouse, answer["Credentials"])["Arn"].endswith("/doc-default/CognitoIdentityCredentials")


# --- logins ------------------------------------------------------------------------------------------------------


def test_aws_name_of_another_region_names_no_user_pool(idp: Any, ci: Any, public_ci: Any, users: UserPool) -> None:
    """AWS names a user pool by its issuer, ``cognito-idp.<region>.amazonaws.com/<region>_<id>``: the region is
    the pool's own. The same pool id under another region's name is not that pool."""
    pool_id = ci.create_identity_pool(
        IdentityPoolName="regions", AllowUnauthenticatedIdentities=False, CognitoIdentityProviders=[provider(users)]
    )["IdentityPoolId"]
    elsewhere = f"cognito-idp.eu-west-3.amazonaws.com/{users.id}"
    assert users.aws_key != elsewhere
    token = id_token(idp, users, "cat")
    code, message, _ = error_of(lambda: public_ci.get_id(IdentityPoolId=pool_id, Logins={elsewhere: token}))
    assert code == "NotAuthorizedException" and "supported provider" in message
    assert identity_count(ci, pool_id) == 0
    code, _, _ = error_of(
        lambda: ci.create_identity_pool(
            IdentityPoolName="elsewhere",
            AllowUnauthenticatedIdentities=False,
            CognitoIdentityProviders=[{"ProviderName": elsewhere, "ClientId": users.client_id}],
        )
    )
    assert code == "InvalidParameterException"
    code, _, _ = error_of(
        lambda: ci.set_identity_pool_roles(
            IdentityPoolId=pool_id,
            Roles={},
            RoleMappings={f"{elsewhere}:{users.client_id}": {"Type": "Token", "AmbiguousRoleResolution": "Deny"}},
        )
    )
    assert code == "InvalidParameterException"
    # The pool's own region's name still works, and reaches the same identity as Gatehouse's name.
    own = public_ci.get_id(IdentityPoolId=pool_id, Logins={users.aws_key: token})["IdentityId"]
    assert public_ci.get_id(IdentityPoolId=pool_id, Logins={users.key: token})["IdentityId"] == own


def test_one_bad_login_spoils_the_call(
    idp: Any, ci: Any, public_ci: Any, users: UserPool, gatehouse: GatehouseServer
) -> None:
    """Every login is checked before any counts: a valid login does not carry an invalid one (or one of a
    provider the pool does not list) into GetId or onto an identity."""
    others = make_user_pool(idp, gatehouse, "doc-others")
    make_user(idp, others, "oli")
    pool_id = ci.create_identity_pool(
        IdentityPoolName="one bad login",
        AllowUnauthenticatedIdentities=False,
        CognitoIdentityProviders=[provider(users), provider(others)],
    )["IdentityPoolId"]
    dan = {users.key: id_token(idp, users, "dan")}
    identity = public_ci.get_id(IdentityPoolId=pool_id, Logins=dan)["IdentityId"]
    oli = id_token(idp, others, "oli")
    forged_oli = oli[: oli.rindex(".") + 1] + "A" * 20
    bad = [
        {others.key: forged_oli},
        {"login.unlisted.example": oli},
        {others.key: sign_in(idp, others, "oli")["AccessToken"]},
    ]
    for extra in bad:
        for call in (
            lambda extra=extra: public_ci.get_id(IdentityPoolId=pool_id, Logins={**dan, **extra}),
            lambda extra=extra: public_ci.get_credentials_for_identity(IdentityId=identity, Logins={**dan, **extra}),
        ):
            code, message, _ = error_of(call)
            assert code == "NotAuthorizedException", (extra.keys(), message)
    assert logins_of(ci, identity) == [users.key] and identity_count(ci, pool_id) == 1


def test_server_side_token_check_refuses_revoked_disabled_and_deleted_users(
    idp: Any, ci: Any, public_ci: Any, users: UserPool
) -> None:
    """ServerSideTokenCheck: Cognito asks the user pool whether the token's user is still signed in. A revoked
    refresh token's family, a disabled user and a deleted user are refused, on GetId and on later calls of an
    identity reached before (where the token's check is otherwise remembered)."""
    pool_id = ci.create_identity_pool(
        IdentityPoolName="server side check",
        AllowUnauthenticatedIdentities=False,
        CognitoIdentityProviders=[provider(users, check=True)],
    )["IdentityPoolId"]
    ci.set_identity_pool_roles(IdentityPoolId=pool_id, Roles={})
    make_user(idp, users, "ivy")
    make_user(idp, users, "jon")
    make_user(idp, users, "kai")
    sessions = {name: sign_in(idp, users, name) for name in ("ivy", "jon", "kai")}
    reached = {
        name: public_ci.get_id(IdentityPoolId=pool_id, Logins={users.key: s["IdToken"]})["IdentityId"]
        for name, s in sessions.items()
    }
    idp.revoke_token(Token=sessions["ivy"]["RefreshToken"], ClientId=users.client_id)
    idp.admin_disable_user(UserPoolId=users.id, Username="jon")
    idp.admin_delete_user(UserPoolId=users.id, Username="kai")
    count = identity_count(ci, pool_id)
    for name, session in sessions.items():
        logins = {users.key: session["IdToken"]}
        for call in (
            lambda logins=logins: public_ci.get_id(IdentityPoolId=pool_id, Logins=logins),
            lambda logins=logins, name=name: public_ci.get_credentials_for_identity(
                IdentityId=reached[name], Logins=logins
            ),
        ):
            code, message, _ = error_of(call)
            assert code == "NotAuthorizedException" and "revoked" in message, name
    assert identity_count(ci, pool_id) == count


def test_server_side_token_check_asked_by_either_entry_of_a_client(
    idp: Any, ci: Any, public_ci: Any, users: UserPool
) -> None:
    """A user pool and client listed twice (under Gatehouse's name and AWS's), one entry asking for
    ServerSideTokenCheck: the check is made whichever name the login uses, not only when the first entry asks."""
    pool_id = ci.create_identity_pool(
        IdentityPoolName="listed twice",
        AllowUnauthenticatedIdentities=False,
        CognitoIdentityProviders=[
            provider(users),
            {"ProviderName": users.aws_key, "ClientId": users.client_id, "ServerSideTokenCheck": True},
        ],
    )["IdentityPoolId"]
    make_user(idp, users, "lou")
    token = sign_in(idp, users, "lou")["IdToken"]
    identity = public_ci.get_id(IdentityPoolId=pool_id, Logins={users.key: token})["IdentityId"]
    idp.admin_user_global_sign_out(UserPoolId=users.id, Username="lou")
    for key in (users.key, users.aws_key):
        code, message, _ = error_of(lambda key=key: public_ci.get_id(IdentityPoolId=pool_id, Logins={key: token}))
        assert code == "NotAuthorizedException" and "revoked" in message, key
    assert identity_count(ci, pool_id) == 1 and logins_of(ci, identity) == [users.key]


def test_server_side_token_check_refuses_the_id_tokens_of_a_deleted_client(
    idp: Any, ci: Any, public_ci: Any, users: UserPool
) -> None:
    """Deleting an app client revokes what it issued: an identity pool that checks tokens server-side refuses
    its ID tokens from then on (on GetId, and on later calls of the identity reached with one), while the
    user's token from another client of the same pool still signs in to the same identity."""
    flows = ["ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    doomed = idp.create_user_pool_client(UserPoolId=users.id, ClientName="doomed", ExplicitAuthFlows=flows)[
        "UserPoolClient"
    ]["ClientId"]
    pool_id = ci.create_identity_pool(
        IdentityPoolName="deleted client",
        AllowUnauthenticatedIdentities=False,
        CognitoIdentityProviders=[provider(users, check=True, client_id=doomed), provider(users, check=True)],
    )["IdentityPoolId"]
    ci.set_identity_pool_roles(IdentityPoolId=pool_id, Roles={})
    make_user(idp, users, "del")
    gone = sign_in(idp, users, "del", client_id=doomed)["IdToken"]
    kept = sign_in(idp, users, "del")["IdToken"]
    identity = public_ci.get_id(IdentityPoolId=pool_id, Logins={users.key: gone})["IdentityId"]

    idp.delete_user_pool_client(UserPoolId=users.id, ClientId=doomed)
    logins = {users.key: gone}
    for call in (
        lambda: public_ci.get_id(IdentityPoolId=pool_id, Logins=logins),
        lambda: public_ci.get_credentials_for_identity(IdentityId=identity, Logins=logins),
    ):
        code, message, status = error_of(call)
        assert (code, status) == ("NotAuthorizedException", 400) and "revoked" in message, message
    assert public_ci.get_id(IdentityPoolId=pool_id, Logins={users.key: kept})["IdentityId"] == identity
    assert identity_count(ci, pool_id) == 1


# --- developer identities ----------------------------------------------------------------------------------------


def test_developer_identities_stay_in_their_pool(ci: Any) -> None:
    """MergeDeveloperIdentities and LookupDeveloperIdentity work within one identity pool: a user of another
    pool is not found (nothing moves), and an IdentityId that does not match the DeveloperUserIdentifier is
    ResourceConflictException (LookupDeveloperIdentity)."""
    pools = [
        ci.create_identity_pool(
            IdentityPoolName=f"developers {n}", AllowUnauthenticatedIdentities=False, DeveloperProviderName=DEVELOPER
        )["IdentityPoolId"]
        for n in (1, 2)
    ]
    here = ci.get_open_id_token_for_developer_identity(IdentityPoolId=pools[0], Logins={DEVELOPER: "u-here"})
    also = ci.get_open_id_token_for_developer_identity(IdentityPoolId=pools[0], Logins={DEVELOPER: "u-also"})
    there = ci.get_open_id_token_for_developer_identity(IdentityPoolId=pools[1], Logins={DEVELOPER: "u-there"})
    code, _, _ = error_of(
        lambda: ci.merge_developer_identities(
            IdentityPoolId=pools[0],
            DeveloperProviderName=DEVELOPER,
            SourceUserIdentifier="u-there",
            DestinationUserIdentifier="u-here",
        )
    )
    assert code == "ResourceNotFoundException"
    assert logins_of(ci, there["IdentityId"]) == [DEVELOPER] and logins_of(ci, here["IdentityId"]) == [DEVELOPER]
    found = ci.lookup_developer_identity(IdentityPoolId=pools[1], DeveloperUserIdentifier="u-there")
    assert found["IdentityId"] == there["IdentityId"] and found["DeveloperUserIdentifierList"] == ["u-there"]
    code, _, _ = error_of(
        lambda: ci.lookup_developer_identity(
            IdentityPoolId=pools[0], IdentityId=here["IdentityId"], DeveloperUserIdentifier="u-also"
        )
    )
    assert code == "ResourceConflictException"
    assert also["IdentityId"] != here["IdentityId"]
    code, _, _ = error_of(lambda: ci.lookup_developer_identity(IdentityPoolId=pools[0], IdentityId=there["IdentityId"]))
    assert code == "ResourceNotFoundException"
    code, _, _ = error_of(
        lambda: ci.get_open_id_token_for_developer_identity(
            IdentityPoolId=pools[0], IdentityId=there["IdentityId"], Logins={DEVELOPER: "u-new"}
        )
    )
    assert code == "ResourceNotFoundException"
    assert logins_of(ci, there["IdentityId"]) == [DEVELOPER]
    code, _, _ = error_of(
        lambda: ci.lookup_developer_identity(IdentityPoolId=pools[0], DeveloperUserIdentifier="u-new")
    )
    assert code == "ResourceNotFoundException"


def test_developer_principal_tags_reach_the_session(
    gatehouse: GatehouseServer, ci: Any, iam: Any, public_ci: Any
) -> None:
    """GetOpenIdTokenForDeveloperIdentity's PrincipalTags ("attribute mappings for custom providers") are the
    developer identity's session tags when its token is exchanged in the enhanced flow, as STS takes them from
    the same token in the basic flow; another identity's token carries nothing over."""
    pool_id = ci.create_identity_pool(
        IdentityPoolName="developer tags", AllowUnauthenticatedIdentities=False, DeveloperProviderName=DEVELOPER
    )["IdentityPoolId"]
    role = iam.create_role(
        RoleName="doc-developer-tags", AssumeRolePolicyDocument=identity_trust(pool_id, DEVELOPER, tag_session=True)
    )["Role"]
    ci.set_identity_pool_roles(IdentityPoolId=pool_id, Roles={"authenticated": role["Arn"]})
    tagged = ci.get_open_id_token_for_developer_identity(
        IdentityPoolId=pool_id, Logins={DEVELOPER: "dev-ops"}, PrincipalTags={"dept": "ops", "level": "2"}
    )
    proof = {"cognito-identity.amazonaws.com": tagged["Token"]}
    credentials = public_ci.get_credentials_for_identity(IdentityId=tagged["IdentityId"], Logins=proof)["Credentials"]
    principal = verify_session(gatehouse, credentials)["Principal"]
    assert principal["PrincipalTags"] == {"dept": "ops", "level": "2"}
    assert principal["IdentityId"] == tagged["IdentityId"]
    plain = ci.get_open_id_token_for_developer_identity(IdentityPoolId=pool_id, Logins={DEVELOPER: "dev-plain"})
    untagged = public_ci.get_credentials_for_identity(
        IdentityId=plain["IdentityId"], Logins={"cognito-identity.amazonaws.com": plain["Token"]}
    )["Credentials"]
    assert verify_session(gatehouse, untagged)["Principal"]["PrincipalTags"] == {}
    code, _, _ = error_of(lambda: public_ci.get_credentials_for_identity(IdentityId=plain["IdentityId"], Logins=proof))
    assert code == "NotAuthorizedException"


def test_an_identity_made_inaccessible_stays_so(idp: Any, ci: Any, public_ci: Any, users: UserPool) -> None:
    """UnlinkIdentity: "Removing the last linked login will make this identity inaccessible." An OpenID token
    issued to the identity before does not reach it again through GetId, nor links new logins onto it."""
    pool_id = ci.create_identity_pool(
        IdentityPoolName="inaccessible",
        AllowUnauthenticatedIdentities=False,
        AllowClassicFlow=True,
        CognitoIdentityProviders=[provider(users)],
    )["IdentityPoolId"]
    make_user(idp, users, "mia")
    make_user(idp, users, "ned")
    mia = {users.key: id_token(idp, users, "mia")}
    identity = public_ci.get_id(IdentityPoolId=pool_id, Logins=mia)["IdentityId"]
    proof = {"cognito-identity.amazonaws.com": public_ci.get_open_id_token(IdentityId=identity, Logins=mia)["Token"]}
    public_ci.unlink_identity(IdentityId=identity, Logins=mia, LoginsToRemove=[users.key])
    ned = {users.key: id_token(idp, users, "ned")}
    for call in (
        lambda: public_ci.get_id(IdentityPoolId=pool_id, Logins=proof),
        lambda: public_ci.get_id(IdentityPoolId=pool_id, Logins={**proof, **ned}),
        lambda: public_ci.get_credentials_for_identity(IdentityId=identity, Logins=proof),
        lambda: public_ci.get_open_id_token(IdentityId=identity, Logins={**proof, **ned}),
    ):
        code, message, _ = error_of(call)
        assert code == "NotAuthorizedException" and identity in message, message
    assert logins_of(ci, identity) == []
    hidden = ci.list_identities(IdentityPoolId=pool_id, MaxResults=60, HideDisabled=True)["Identities"]
    assert identity not in {i["IdentityId"] for i in hidden}
    # ned's login is still new to the pool: it gets an identity of its own.
    assert public_ci.get_id(IdentityPoolId=pool_id, Logins=ned)["IdentityId"] != identity


def test_one_user_of_a_provider_per_identity(
    idp: Any, ci: Any, iam: Any, public_ci: Any, users: UserPool, gatehouse: GatehouseServer
) -> None:
    """A user pool answers to two names (Gatehouse's and AWS's). Two users' tokens under the two names are two
    users of one provider: never linked to one identity (that would let either reach the other's identity),
    whether the identity is new, found by one of them, or proved with its OpenID token."""
    partners = make_user_pool(idp, gatehouse, "doc-linking")
    make_user(idp, partners, "pia")
    pool_id = ci.create_identity_pool(
        IdentityPoolName="one user per provider",
        AllowUnauthenticatedIdentities=False,
        AllowClassicFlow=True,
        CognitoIdentityProviders=[provider(users), provider(partners)],
    )["IdentityPoolId"]
    for name in ("oda", "pam", "quin", "rex"):
        make_user(idp, users, name)
    oda, pam, quin, rex = (id_token(idp, users, name) for name in ("oda", "pam", "quin", "rex"))
    code, message, _ = error_of(
        lambda: public_ci.get_id(IdentityPoolId=pool_id, Logins={users.key: oda, users.aws_key: pam})
    )
    assert code == "ResourceConflictException" and "two users" in message
    assert identity_count(ci, pool_id) == 0
    # The same user under both names is one login.
    both = public_ci.get_id(IdentityPoolId=pool_id, Logins={users.key: oda, users.aws_key: oda})["IdentityId"]
    assert logins_of(ci, both) == [users.key]
    pia = {partners.key: id_token(idp, partners, "pia")}
    identity = public_ci.get_id(IdentityPoolId=pool_id, Logins={users.key: quin})["IdentityId"]
    proof = {
        "cognito-identity.amazonaws.com": public_ci.get_open_id_token(IdentityId=identity, Logins={users.key: quin})[
            "Token"
        ]
    }
    attempts: list[Callable[[], Any]] = [
        lambda: public_ci.get_id(IdentityPoolId=pool_id, Logins={users.key: quin, users.aws_key: rex}),
        lambda: public_ci.get_id(IdentityPoolId=pool_id, Logins={users.aws_key: rex, **pia, **proof}),
        lambda: public_ci.get_credentials_for_identity(
            IdentityId=identity, Logins={users.key: quin, users.aws_key: rex}
        ),
        lambda: public_ci.get_open_id_token(IdentityId=identity, Logins={**proof, users.key: rex}),
    ]
    for attempt in attempts:
        code, message, _ = error_of(attempt)
        assert code == "ResourceConflictException", message
    assert logins_of(ci, identity) == [users.key] and identity_count(ci, pool_id) == 2
    # rex's login is still new: it gets an identity of its own; a login of another provider still links.
    assert public_ci.get_id(IdentityPoolId=pool_id, Logins={users.key: rex})["IdentityId"] not in (identity, both)
    public_ci.get_open_id_token(IdentityId=identity, Logins={users.key: quin, **pia})
    assert logins_of(ci, identity) == sorted([users.key, partners.key])
