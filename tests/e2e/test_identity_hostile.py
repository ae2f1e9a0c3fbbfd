"""Identity pools under attack: failed calls write nothing, unsigned calls do only what an app may.

The spec: the Amazon Cognito Federated Identities API reference (GetCredentialsForIdentity, GetOpenIdToken,
UnlinkIdentity: "Removing the last linked login will make this identity inaccessible", UnlinkDeveloperIdentity:
"the Cognito identity becomes inaccessible", GetOpenIdTokenForDeveloperIdentity) and botocore's
``cognito-identity`` model (which operations are unsigned, which errors each answers). Every refusal is checked
against the store: the identity's logins, and whether a refused login is still new to the pool.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.aws_support import identity_trust
from tests.e2e.test_identity_pools import UserPool, claims_of, error_of, id_token, make_user, make_user_pool, provider
from tests.support import GatehouseServer

DEVELOPER = "login.hostile.app"
PROOF = "cognito-identity.amazonaws.com"


@pytest.fixture(scope="module")
def users(idp: Any, gatehouse: GatehouseServer) -> UserPool:
    pool = make_user_pool(idp, gatehouse, "users")
    for name in ("amy", "ann", "bea", "cal", "dot", "eli", "flo"):
        make_user(idp, pool, name)
    return pool


@pytest.fixture(scope="module")
def partners(idp: Any, gatehouse: GatehouseServer) -> UserPool:
    pool = make_user_pool(idp, gatehouse, "partners")
    for name in ("pat", "pia", "pol", "pam"):
        make_user(idp, pool, name)
    return pool


def logins_of(ci: Any, identity_id: str) -> list[str]:
    return sorted(ci.describe_identity(IdentityId=identity_id)["Logins"])


def enabled(ci: Any, pool_id: str) -> set[str]:
    found = ci.list_identities(IdentityPoolId=pool_id, MaxResults=60, HideDisabled=True)["Identities"]
    return {str(i["IdentityId"]) for i in found}


def pool_of(ci: Any, pool_id: str) -> dict[str, Any]:
    described = dict(ci.describe_identity_pool(IdentityPoolId=pool_id))
    described.pop("ResponseMetadata")
    return described


def make_pool(ci: Any, name: str, users: UserPool, partners: UserPool, **extra: Any) -> str:
    return str(
        ci.create_identity_pool(
            IdentityPoolName=name,
            AllowUnauthenticatedIdentities=True,
            AllowClassicFlow=True,
            CognitoIdentityProviders=[provider(users), provider(partners)],
            DeveloperProviderName=DEVELOPER,
            **extra,
        )["IdentityPoolId"]
    )


# --- 1. a failed GetCredentialsForIdentity / GetOpenIdToken links nothing --------------------------------------


def test_failed_credentials_call_links_no_login(
    idp: Any, ci: Any, iam: Any, public_ci: Any, users: UserPool, partners: UserPool
) -> None:
    """GetCredentialsForIdentity with a new login besides a linked one links it ("Supplying multiple logins
    creates an implicit link") only when the call succeeds: refused at the role (no authenticated role, a role
    mapping that denies, a CustomRoleArn not allowed) or at the trust policy, the identity keeps its logins and
    the new login is still new to the pool."""
    pool_id = make_pool(ci, "failed credentials", users, partners)
    trusting = iam.create_role(RoleName="trusting", AssumeRolePolicyDocument=identity_trust(pool_id))["Role"]["Arn"]
    untrusting = iam.create_role(RoleName="untrusting", AssumeRolePolicyDocument=identity_trust("us-east-1:x"))["Role"][
        "Arn"
    ]
    amy = {users.key: id_token(idp, users, "amy")}
    pat = {partners.key: id_token(idp, partners, "pat")}
    identity = public_ci.get_id(IdentityPoolId=pool_id, Logins=amy)["IdentityId"]
    partner_mapping = {
        f"{partners.key}:{partners.client_id}": {"Type": "Token", "AmbiguousRoleResolution": "Deny"},
    }
    refusals: list[tuple[dict[str, Any], dict[str, Any], str]] = [
        ({"Roles": {}}, {}, "InvalidIdentityPoolConfigurationException"),
        ({"Roles": {"authenticated": trusting}, "RoleMappings": partner_mapping}, {}, "NotAuthorizedException"),
        ({"Roles": {"authenticated": trusting}}, {"CustomRoleArn": untrusting}, "NotAuthorizedException"),
        ({"Roles": {"authenticated": untrusting}}, {}, "InvalidIdentityPoolConfigurationException"),
    ]
    for roles, extra, expected in refusals:
        ci.set_identity_pool_roles(IdentityPoolId=pool_id, **roles)
        code, message, status = error_of(
            lambda extra=extra: public_ci.get_credentials_for_identity(
                IdentityId=identity, Logins={**amy, **pat}, **extra
            )
        )
        assert (code, status) == (expected, 400), (roles, message)
        assert logins_of(ci, identity) == [users.key], roles
    # pat's login is still new to the pool: GetId gives it an identity of its own (then unlinked again below).
    pats = public_ci.get_id(IdentityPoolId=pool_id, Logins=pat)["IdentityId"]
    assert pats != identity
    # With a role that works, the same call links pat's login -- now to another identity: a conflict.
    ci.set_identity_pool_roles(IdentityPoolId=pool_id, Roles={"authenticated": trusting})
    code, _, _ = error_of(lambda: public_ci.get_credentials_for_identity(IdentityId=identity, Logins={**amy, **pat}))
    assert code == "ResourceConflictException"
    assert logins_of(ci, identity) == [users.key] and logins_of(ci, pats) == [partners.key]
    pia = {partners.key: id_token(idp, partners, "pia")}
    answer = public_ci.get_credentials_for_identity(IdentityId=identity, Logins={**amy, **pia})
    assert answer["IdentityId"] == identity and answer["Credentials"]["AccessKeyId"].startswith("ASIA")
    assert logins_of(ci, identity) == sorted([users.key, partners.key])


def test_failed_open_id_token_call_links_no_login(
    idp: Any, ci: Any, public_ci: Any, users: UserPool, partners: UserPool
) -> None:
    """GetOpenIdToken refused (the basic flow disabled, or a conflicting login) links none of the new logins."""
    pool_id = make_pool(ci, "failed open id token", users, partners)
    ann = {users.key: id_token(idp, users, "ann")}
    pol = {partners.key: id_token(idp, partners, "pol")}
    identity = public_ci.get_id(IdentityPoolId=pool_id, Logins=ann)["IdentityId"]
    bea = {users.aws_key: id_token(idp, users, "bea")}  # a second user of the same user pool: a conflict
    code, _, _ = error_of(lambda: public_ci.get_open_id_token(IdentityId=identity, Logins={**ann, **pol, **bea}))
    assert code == "ResourceConflictException"
    assert logins_of(ci, identity) == [users.key]
    assert public_ci.get_id(IdentityPoolId=pool_id, Logins=pol)["IdentityId"] != identity


# --- 2. the unsigned UnlinkIdentity never touches developer logins, nor links -------------------------------------


def test_unlink_identity_cannot_remove_a_developer_login(
    idp: Any, ci: Any, public_ci: Any, users: UserPool, partners: UserPool
) -> None:
    """A developer user identifier is linked and unlinked only with the developer's credentials
    (GetOpenIdTokenForDeveloperIdentity, UnlinkDeveloperIdentity). The unsigned UnlinkIdentity, authorised by
    the Logins an app holds (its user pool token, or the identity's own OpenID token), must not unlink it:
    NotAuthorizedException, and nothing changes."""
    pool_id = make_pool(ci, "developer unlink", users, partners)
    dev = ci.get_open_id_token_for_developer_identity(
        IdentityPoolId=pool_id, Logins={DEVELOPER: "dev-cal", users.key: id_token(idp, users, "cal")}
    )
    identity = dev["IdentityId"]
    assert logins_of(ci, identity) == sorted([DEVELOPER, users.key])
    cal = {users.key: id_token(idp, users, "cal")}
    proof = {PROOF: dev["Token"]}
    pam = {partners.key: id_token(idp, partners, "pam")}
    for logins in (cal, proof, {**cal, **pam}):
        for remove in ([DEVELOPER], [users.key, DEVELOPER]):
            code, message, status = error_of(
                lambda logins=logins, remove=remove: public_ci.unlink_identity(
                    IdentityId=identity, Logins=logins, LoginsToRemove=remove
                )
            )
            assert (code, status) == ("NotAuthorizedException", 400), message
            assert logins_of(ci, identity) == sorted([DEVELOPER, users.key])
    found = ci.lookup_developer_identity(IdentityPoolId=pool_id, DeveloperUserIdentifier="dev-cal")
    assert found["IdentityId"] == identity and found["DeveloperUserIdentifierList"] == ["dev-cal"]
    # pam's login rode along in a refused call: still new to the pool.
    assert public_ci.get_id(IdentityPoolId=pool_id, Logins=pam)["IdentityId"] != identity
    # The user pool login may go; the developer's stays and keeps the identity reachable.
    public_ci.unlink_identity(IdentityId=identity, Logins=proof, LoginsToRemove=[users.key])
    assert logins_of(ci, identity) == [DEVELOPER]
    again = ci.get_open_id_token_for_developer_identity(IdentityPoolId=pool_id, Logins={DEVELOPER: "dev-cal"})
    assert again["IdentityId"] == identity


def test_unlink_identity_links_nothing(idp: Any, ci: Any, public_ci: Any, users: UserPool, partners: UserPool) -> None:
    """UnlinkIdentity's Logins prove the identity; a login among them that is not linked to it is not linked by
    the call (only GetId, GetOpenIdToken and GetCredentialsForIdentity link), and logins that prove nothing
    (none linked to the identity) unlink nothing -- also on a guest identity."""
    pool_id = make_pool(ci, "unlink links nothing", users, partners)
    dot = {users.key: id_token(idp, users, "dot")}
    pia = {partners.key: id_token(idp, partners, "pia")}
    identity = public_ci.get_id(IdentityPoolId=pool_id, Logins=dot)["IdentityId"]
    public_ci.unlink_identity(IdentityId=identity, Logins={**dot, **pia}, LoginsToRemove=[users.key])
    assert logins_of(ci, identity) == [] and identity not in enabled(ci, pool_id)
    assert public_ci.get_id(IdentityPoolId=pool_id, Logins=pia)["IdentityId"] != identity
    # A guest identity is proved by no login: a stranger's login neither links to it nor disables it.
    guest = public_ci.get_id(IdentityPoolId=pool_id)["IdentityId"]
    eli = {users.key: id_token(idp, users, "eli")}
    code, _, _ = error_of(lambda: public_ci.unlink_identity(IdentityId=guest, Logins=eli, LoginsToRemove=[users.key]))
    assert code == "NotAuthorizedException"
    assert logins_of(ci, guest) == [] and guest in enabled(ci, pool_id)
    assert claims_of(public_ci.get_open_id_token(IdentityId=guest)["Token"])["amr"] == ["unauthenticated"]


# --- 3. an inaccessible identity stays inaccessible, to the developer's calls too -----------------------------------


def test_developer_call_does_not_reopen_an_inaccessible_identity(
    idp: Any, ci: Any, public_ci: Any, users: UserPool, partners: UserPool
) -> None:
    """ "Removing the last linked login will make this identity inaccessible" (UnlinkIdentity), and so does
    unlinking the last developer user identifier (UnlinkDeveloperIdentity). GetOpenIdTokenForDeveloperIdentity
    naming such an identity is refused (NotAuthorizedException, as GetId, GetOpenIdToken and
    GetCredentialsForIdentity refuse it) and links nothing; the logins, new again, make a new identity."""
    pool_id = make_pool(ci, "inaccessible", users, partners)
    flo = {users.key: id_token(idp, users, "flo")}
    unlinked = public_ci.get_id(IdentityPoolId=pool_id, Logins=flo)["IdentityId"]
    public_ci.unlink_identity(IdentityId=unlinked, Logins=flo, LoginsToRemove=[users.key])
    developer = ci.get_open_id_token_for_developer_identity(IdentityPoolId=pool_id, Logins={DEVELOPER: "dev-gone"})
    ci.unlink_developer_identity(
        IdentityId=developer["IdentityId"],
        IdentityPoolId=pool_id,
        DeveloperProviderName=DEVELOPER,
        DeveloperUserIdentifier="dev-gone",
    )
    for identity in (unlinked, developer["IdentityId"]):
        assert identity not in enabled(ci, pool_id)
        for logins in ({DEVELOPER: "dev-gone"}, {DEVELOPER: "dev-new"}, {DEVELOPER: "dev-new", **flo}):
            code, message, status = error_of(
                lambda identity=identity, logins=logins: ci.get_open_id_token_for_developer_identity(
                    IdentityPoolId=pool_id, IdentityId=identity, Logins=logins
                )
            )
            assert (code, status) == ("NotAuthorizedException", 400), message
            assert identity in message
        assert logins_of(ci, identity) == [] and identity not in enabled(ci, pool_id)
        code, _, _ = error_of(lambda identity=identity: public_ci.get_credentials_for_identity(IdentityId=identity))
        assert code == "NotAuthorizedException"
    code, _, _ = error_of(
        lambda: ci.lookup_developer_identity(IdentityPoolId=pool_id, DeveloperUserIdentifier="dev-new")
    )
    assert code == "ResourceNotFoundException"
    # The developer user, new again, gets a new identity; a guest identity (accessible) may still be claimed.
    fresh = ci.get_open_id_token_for_developer_identity(IdentityPoolId=pool_id, Logins={DEVELOPER: "dev-gone"})
    assert fresh["IdentityId"] not in (unlinked, developer["IdentityId"])
    guest = public_ci.get_id(IdentityPoolId=pool_id)["IdentityId"]
    claimed = ci.get_open_id_token_for_developer_identity(
        IdentityPoolId=pool_id, IdentityId=guest, Logins={DEVELOPER: "dev-guest"}
    )
    assert claimed["IdentityId"] == guest and logins_of(ci, guest) == [DEVELOPER]
    # A deleted identity is not found.
    ci.delete_identities(IdentityIdsToDelete=[unlinked])
    code, _, _ = error_of(
        lambda: ci.get_open_id_token_for_developer_identity(
            IdentityPoolId=pool_id, IdentityId=unlinked, Logins={DEVELOPER: "dev-deleted"}
        )
    )
    assert code == "ResourceNotFoundException"


# --- the developer provider's name is its own ------------------------------------------------------------------------


def test_developer_provider_name_is_no_login_provider_name(ci: Any, iam: Any) -> None:
    """Identities key a login by (provider name, subject): a DeveloperProviderName that is also the name of a
    login provider (a public provider of SupportedLoginProviders, ``cognito-identity.amazonaws.com``, an IAM OIDC
    provider of the pool) would let a user of that provider whose subject equals a developer user identifier
    reach that developer user's identity with an unsigned GetId. CreateIdentityPool and UpdateIdentityPool refuse
    it (InvalidParameterException) and store nothing."""
    oidc = iam.create_open_id_connect_provider(
        Url="https://login.hostile.example", ClientIDList=["app"], ThumbprintList=["0" * 40]
    )["OpenIDConnectProviderArn"]
    before = ci.list_identity_pools(MaxResults=60)["IdentityPools"]
    for name, extra in (
        ("accounts.google.com", {"SupportedLoginProviders": {"accounts.google.com": "app.example"}}),
        ("graph.facebook.com", {}),
        ("cognito-identity.amazonaws.com", {}),
        ("login.hostile.example", {"OpenIdConnectProviderARNs": [oidc]}),
    ):
        code, message, status = error_of(
            lambda name=name, extra=extra: ci.create_identity_pool(
                IdentityPoolName="clash", AllowUnauthenticatedIdentities=False, DeveloperProviderName=name, **extra
            )
        )
        assert (code, status) == ("InvalidParameterException", 400), (name, message)
    assert ci.list_identity_pools(MaxResults=60)["IdentityPools"] == before
    # Nor may an update bring the two names together, whichever comes second.
    base = {"IdentityPoolName": "names", "AllowUnauthenticatedIdentities": False}
    pool_id = ci.create_identity_pool(**base, OpenIdConnectProviderARNs=[oidc])["IdentityPoolId"]
    developer_pool = ci.create_identity_pool(**base, DeveloperProviderName="login.hostile.example")["IdentityPoolId"]
    for identity_pool, settings in (
        (pool_id, {"OpenIdConnectProviderARNs": [oidc], "DeveloperProviderName": "login.hostile.example"}),
        (developer_pool, {"OpenIdConnectProviderARNs": [oidc], "DeveloperProviderName": "login.hostile.example"}),
    ):
        described = pool_of(ci, identity_pool)
        code, _, _ = error_of(
            lambda identity_pool=identity_pool, settings=settings: ci.update_identity_pool(
                IdentityPoolId=identity_pool, **base, **settings
            )
        )
        assert code == "InvalidParameterException"
        assert pool_of(ci, identity_pool) == described


def test_developer_link_conflicts_name_the_login_that_conflicts(
    idp: Any, ci: Any, public_ci: Any, users: UserPool, partners: UserPool
) -> None:
    """GetOpenIdTokenForDeveloperIdentity linking to an existing identity: DeveloperUserAlreadyRegisteredException
    when the developer user identifier is another identity's, ResourceConflictException ("a login which is
    already linked to another account") when a public login is -- and nothing is linked either way."""
    pool_id = make_pool(ci, "developer conflicts", users, partners)
    make_user(idp, users, "gil")
    gil = {users.key: id_token(idp, users, "gil")}
    public = public_ci.get_id(IdentityPoolId=pool_id, Logins=gil)["IdentityId"]
    developer = ci.get_open_id_token_for_developer_identity(IdentityPoolId=pool_id, Logins={DEVELOPER: "dev-hal"})
    code, _, _ = error_of(
        lambda: ci.get_open_id_token_for_developer_identity(
            IdentityPoolId=pool_id, IdentityId=developer["IdentityId"], Logins={DEVELOPER: "dev-ivy", **gil}
        )
    )
    assert code == "ResourceConflictException"
    code, _, _ = error_of(
        lambda: ci.get_open_id_token_for_developer_identity(
            IdentityPoolId=pool_id, IdentityId=public, Logins={DEVELOPER: "dev-hal"}
        )
    )
    assert code == "DeveloperUserAlreadyRegisteredException"
    assert logins_of(ci, developer["IdentityId"]) == [DEVELOPER] and logins_of(ci, public) == [users.key]
    code, _, _ = error_of(
        lambda: ci.lookup_developer_identity(IdentityPoolId=pool_id, DeveloperUserIdentifier="dev-ivy")
    )
    assert code == "ResourceNotFoundException"


def test_tags_only_through_the_pools_own_arn(ci: Any, users: UserPool, partners: UserPool) -> None:
    """TagResource, UntagResource and ListTagsForResource name a pool by its ARN: an ARN of another account or
    region that ends in the pool's id is not that pool (ResourceNotFoundException), and its tags stay as they
    are -- as the user pools' tag operations answer."""
    pool_id = make_pool(ci, "tags", users, partners, IdentityPoolTags={"team": "core"})
    own = f"arn:aws:cognito-identity:us-east-1:000000000000:identitypool/{pool_id}"
    assert ci.list_tags_for_resource(ResourceArn=own)["Tags"] == {"team": "core"}
    for other, expected in (
        (f"arn:aws:cognito-identity:us-east-1:999999999999:identitypool/{pool_id}", "ResourceNotFoundException"),
        (f"arn:aws:cognito-identity:eu-west-1:000000000000:identitypool/{pool_id}", "ResourceNotFoundException"),
        (f"arn:aws-cn:cognito-identity:us-east-1:000000000000:identitypool/{pool_id}", "InvalidParameterException"),
    ):
        for call in (
            lambda other=other: ci.tag_resource(ResourceArn=other, Tags={"team": "mallory"}),
            lambda other=other: ci.untag_resource(ResourceArn=other, TagKeys=["team"]),
            lambda other=other: ci.list_tags_for_resource(ResourceArn=other),
        ):
            code, _, status = error_of(call)
            assert (code, status) == (expected, 400), other
    assert ci.list_tags_for_resource(ResourceArn=own)["Tags"] == {"team": "core"}
