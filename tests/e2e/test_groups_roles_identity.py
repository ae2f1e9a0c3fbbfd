"""Groups, roles and identity pools together, through boto3 against a real server.

The spec: "Quotas in Amazon Cognito" (a user belongs to at most 100 groups, a group name has up to 128
characters), the botocore models (cognito-identity's IdentityProviderToken takes up to 50,000 characters), the
developer guide's "Using rules to assign roles to users" (rules in order, the first match's role, unless
GetCredentialsForIdentity's CustomRoleArn chooses among the roles received) and "IAM roles" (a role's trust
policy tests ``cognito-identity.amazonaws.com:amr``, which names a user pool
``cognito-idp.<region>.amazonaws.com/<poolId>`` on AWS).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.aws_support import identity_trust
from tests.e2e.oauth_support import CALLBACK, Browser, OAuthPool, make_pool, query_of
from tests.e2e.oauth_support import PASSWORD as OAUTH_PASSWORD
from tests.e2e.oauth_support import make_user as make_oauth_user
from tests.e2e.test_identity_pools import (
    UserPool,
    caller,
    claims_of,
    error_of,
    make_user,
    make_user_pool,
    sign_in,
    tampered,
)
from tests.support import REGION, GatehouseServer

ACCOUNT = "000000000000"
# Cognito's quota of groups per user, and GroupNameType's longest name.
GROUPS_PER_USER = 100
GROUP_NAME_CHARS = 128


def role_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"


def make_role(iam: Any, name: str, trust: str) -> str:
    return str(iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]["Arn"])


def crowded_user(idp: Any, gatehouse: GatehouseServer, name: str) -> tuple[OAuthPool, dict[str, str]]:
    """A user in Cognito's most groups, each with the longest name and a role of its own, signed in on the hosted
    pages (``openid`` for userInfo, ``aws.cognito.signin.user.admin`` for GetUser): the largest tokens a pool
    issues for group membership."""
    pool = make_pool(idp, gatehouse.url, name)
    make_oauth_user(idp, pool.pool_id, "crowded")
    for i in range(GROUPS_PER_USER):
        group = f"g{i:03d}-".ljust(GROUP_NAME_CHARS, "n")
        idp.create_group(
            UserPoolId=pool.pool_id, GroupName=group, RoleArn=role_arn(f"group-role-{i:03d}"), Precedence=i + 1
        )
        idp.admin_add_user_to_group(UserPoolId=pool.pool_id, Username="crowded", GroupName=group)
    browser = Browser(gatehouse.url)
    url = browser.authorize_url(pool.secret_id, scope="openid aws.cognito.signin.user.admin")
    back = browser.sign_in(url, "crowded", OAUTH_PASSWORD)
    assert back.status_code in (302, 303), back.text
    answer = requests.post(
        f"{gatehouse.url}/{pool.pool_id}/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": query_of(back.headers["Location"])["code"],
            "redirect_uri": CALLBACK,
        },
        auth=(pool.secret_id, pool.secret),
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    tokens = answer.json()
    return pool, {
        "IdToken": tokens["id_token"],
        "AccessToken": tokens["access_token"],
        "RefreshToken": tokens["refresh_token"],
    }


def user_info(gatehouse: GatehouseServer, pool_id: str, access_token: str) -> requests.Response:
    return requests.get(
        f"{gatehouse.url}/{pool_id}/oauth2/userInfo", headers={"Authorization": f"Bearer {access_token}"}, timeout=10
    )


# --- tokens of a user in many groups ---------------------------------------------------------------------


def test_tokens_of_a_user_in_the_most_groups_are_taken_back_everywhere(
    public_idp: Any, idp: Any, ci: Any, public_ci: Any, iam: Any, gatehouse: GatehouseServer
) -> None:
    pool, tokens = crowded_user(idp, gatehouse, "crowded-users")
    claims = claims_of(tokens["IdToken"])
    assert len(claims["cognito:groups"]) == GROUPS_PER_USER and len(claims["cognito:roles"]) == GROUPS_PER_USER
    # Past aiohttp's 8190-byte header and the 16 KiB that Gatehouse once took as a token's longest.
    assert len(tokens["IdToken"]) > 16384 and len(tokens["AccessToken"]) > 16384

    assert public_idp.get_user(AccessToken=tokens["AccessToken"])["Username"] == "crowded"
    answer = user_info(gatehouse, pool.pool_id, tokens["AccessToken"])
    assert answer.status_code == 200, answer.text
    assert answer.json()["sub"] == claims["sub"]

    refreshed = public_idp.get_tokens_from_refresh_token(
        RefreshToken=tokens["RefreshToken"], ClientId=pool.secret_id, ClientSecret=pool.secret
    )["AuthenticationResult"]
    assert len(claims_of(refreshed["IdToken"])["cognito:groups"]) == GROUPS_PER_USER
    assert public_idp.get_user(AccessToken=refreshed["AccessToken"])["Username"] == "crowded"

    identity_pool = ci.create_identity_pool(
        IdentityPoolName="crowded identities",
        AllowUnauthenticatedIdentities=False,
        CognitoIdentityProviders=[
            {"ProviderName": f"127.0.0.1:{gatehouse.port}/{pool.pool_id}", "ClientId": pool.secret_id}
        ],
    )["IdentityPoolId"]
    authenticated = make_role(iam, "crowded-authenticated", identity_trust(identity_pool))
    ci.set_identity_pool_roles(IdentityPoolId=identity_pool, Roles={"authenticated": authenticated})
    logins = {f"cognito-idp.{REGION}.amazonaws.com/{pool.pool_id}": refreshed["IdToken"]}
    identity = public_ci.get_id(IdentityPoolId=identity_pool, Logins=logins)["IdentityId"]
    credentials = public_ci.get_credentials_for_identity(IdentityId=identity, Logins=logins)["Credentials"]
    assert ":assumed-role/crowded-authenticated/" in caller(gatehouse, credentials)["Arn"]
    # Refused, such a login is refused for what is wrong with it, not for its length.
    forged = {key: tampered(token) for key, token in logins.items()}
    code, message, _ = error_of(lambda: public_ci.get_id(IdentityPoolId=identity_pool, Logins=forged))
    assert (code, message) == ("NotAuthorizedException", "Invalid login token. Token signature invalid.")


def test_a_token_past_the_longest_is_still_refused(public_idp: Any) -> None:
    # Size checks stay: JWS-shaped junk of 70,000 characters is no token.
    junk = "e30." + "a" * 70000 + ".c2ln"
    code, message, _ = error_of(lambda: public_idp.get_user(AccessToken=junk))
    assert (code, message) == ("NotAuthorizedException", "Invalid token")


@pytest.fixture(scope="module")
def workers_gatehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatehouseServer]:
    """A second server whose workers share its port (``serve --workers 2``): each listens as a lone one does."""
    data_dir: Path = tmp_path_factory.mktemp("gatehouse-workers") / "data"
    server = GatehouseServer(data_dir, workers=2)
    server.start()
    yield server
    server.stop()


def test_every_worker_reads_a_bearer_header_of_such_a_token(workers_gatehouse: GatehouseServer) -> None:
    pool, tokens = crowded_user(workers_gatehouse.client(), workers_gatehouse, "crowded-workers")
    sub = claims_of(tokens["AccessToken"])["sub"]
    for _ in range(6):  # new connections, spread over the workers by the kernel
        answer = user_info(workers_gatehouse, pool.pool_id, tokens["AccessToken"])
        assert answer.status_code == 200, answer.text
        assert answer.json()["sub"] == sub


# --- Rules role mappings and CustomRoleArn ------------------------------------------------------------------


def test_custom_role_arn_may_name_the_role_of_any_matching_rule(
    idp: Any, ci: Any, public_ci: Any, iam: Any, gatehouse: GatehouseServer
) -> None:
    pool_id = idp.create_user_pool(
        PoolName="tiers", Schema=[{"Name": "tier", "AttributeDataType": "String", "Mutable": True}]
    )["UserPool"]["Id"]
    flows = ["ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    client_id = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=flows)[
        "UserPoolClient"
    ]["ClientId"]
    pool = UserPool(pool_id, client_id, client_id, f"127.0.0.1:{gatehouse.port}/{pool_id}")
    make_user(idp, pool, "bob")
    idp.admin_update_user_attributes(
        UserPoolId=pool.id, Username="bob", UserAttributes=[{"Name": "custom:tier", "Value": "silver"}]
    )
    idp.create_group(UserPoolId=pool.id, GroupName="admins")
    idp.admin_add_user_to_group(UserPoolId=pool.id, Username="bob", GroupName="admins")
    token = sign_in(idp, pool, "bob")["IdToken"]

    identity_pool = ci.create_identity_pool(
        IdentityPoolName="tiered identities",
        AllowUnauthenticatedIdentities=False,
        CognitoIdentityProviders=[{"ProviderName": pool.key, "ClientId": pool.client_id}],
    )["IdentityPoolId"]
    trust = identity_trust(identity_pool)
    admins, silver, gold, default = (make_role(iam, f"tier-{n}", trust) for n in ("admins", "silver", "gold", "auth"))
    rules = [
        {"Claim": "cognito:groups", "MatchType": "Contains", "Value": "admins", "RoleARN": admins},
        {"Claim": "custom:tier", "MatchType": "Equals", "Value": "silver", "RoleARN": silver},
        {"Claim": "custom:tier", "MatchType": "Equals", "Value": "gold", "RoleARN": gold},
    ]
    ci.set_identity_pool_roles(
        IdentityPoolId=identity_pool,
        Roles={"authenticated": default},
        RoleMappings={
            f"{pool.key}:{pool.client_id}": {
                "Type": "Rules",
                "AmbiguousRoleResolution": "Deny",
                "RulesConfiguration": {"Rules": rules},
            }
        },
    )
    logins = {pool.key: token}
    identity = public_ci.get_id(IdentityPoolId=identity_pool, Logins=logins)["IdentityId"]

    def role_of(**extra: Any) -> str:
        answer = public_ci.get_credentials_for_identity(IdentityId=identity, Logins=logins, **extra)
        return str(caller(gatehouse, answer["Credentials"])["Arn"]).split("/")[1]

    assert role_of() == "tier-admins"  # the first matching rule
    assert role_of(CustomRoleArn=admins) == "tier-admins"
    assert role_of(CustomRoleArn=silver) == "tier-silver"  # the second rule matches too
    for refused in (gold, default):  # a rule that does not match; a role no rule gives
        code, message, _ = error_of(
            lambda arn=refused: public_ci.get_credentials_for_identity(  # type: ignore[misc]
                IdentityId=identity, Logins=logins, CustomRoleArn=arn
            )
        )
        assert (code, message) == ("NotAuthorizedException", f"Access to Role '{refused}' is forbidden.")


# --- amr names a user pool as the identity pool lists it ----------------------------------------------------


def amr_trust(identity_pool: str, amr: str) -> str:
    """A trust policy as written for AWS: the identity pool, and a login through one provider."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": "cognito-identity.amazonaws.com"},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {
                        "StringEquals": {"cognito-identity.amazonaws.com:aud": identity_pool},
                        "ForAnyValue:StringLike": {"cognito-identity.amazonaws.com:amr": amr},
                    },
                }
            ],
        }
    )


def test_amr_and_described_logins_name_a_user_pool_as_the_identity_pool_lists_it(
    idp: Any, ci: Any, public_ci: Any, iam: Any, gatehouse: GatehouseServer
) -> None:
    pool = make_user_pool(idp, gatehouse, "aws-named")
    make_user(idp, pool, "ann")
    token = sign_in(idp, pool, "ann")["IdToken"]
    sub = claims_of(token)["sub"]
    identity_pool = ci.create_identity_pool(
        IdentityPoolName="aws named",
        AllowUnauthenticatedIdentities=False,
        AllowClassicFlow=True,
        CognitoIdentityProviders=[{"ProviderName": pool.aws_key, "ClientId": pool.client_id}],
    )["IdentityPoolId"]
    role = make_role(iam, "aws-named-login", amr_trust(identity_pool, pool.aws_key))
    ci.set_identity_pool_roles(IdentityPoolId=identity_pool, Roles={"authenticated": role})

    logins = {pool.aws_key: token}
    identity = public_ci.get_id(IdentityPoolId=identity_pool, Logins=logins)["IdentityId"]
    # Gatehouse's own name for the pool reaches the same identity, and is shown as the pool lists it.
    assert public_ci.get_id(IdentityPoolId=identity_pool, Logins={pool.key: token})["IdentityId"] == identity
    for given in (pool.aws_key, pool.key):
        open_id = public_ci.get_open_id_token(IdentityId=identity, Logins={given: token})["Token"]
        assert claims_of(open_id)["amr"] == ["authenticated", pool.aws_key, f"{pool.aws_key}:CognitoSignIn:{sub}"]
    credentials = public_ci.get_credentials_for_identity(IdentityId=identity, Logins=logins)["Credentials"]
    assert ":assumed-role/aws-named-login/" in caller(gatehouse, credentials)["Arn"]

    assert ci.describe_identity(IdentityId=identity)["Logins"] == [pool.aws_key]
    listed = ci.list_identities(IdentityPoolId=identity_pool, MaxResults=10)["Identities"]
    assert [entry["Logins"] for entry in listed] == [[pool.aws_key]]

    # A pool that lists Gatehouse's name keeps it, whichever name the login used.
    host_named = ci.create_identity_pool(
        IdentityPoolName="host named",
        AllowUnauthenticatedIdentities=False,
        AllowClassicFlow=True,
        CognitoIdentityProviders=[{"ProviderName": pool.key, "ClientId": pool.client_id}],
    )["IdentityPoolId"]
    other = public_ci.get_id(IdentityPoolId=host_named, Logins={pool.aws_key: token})["IdentityId"]
    open_id = public_ci.get_open_id_token(IdentityId=other, Logins={pool.aws_key: token})["Token"]
    assert claims_of(open_id)["amr"][1] == pool.key
    assert ci.describe_identity(IdentityId=other)["Logins"] == [pool.key]


def test_an_open_id_token_naming_the_aws_name_still_obeys_its_role_mapping(
    idp: Any, ci: Any, public_ci: Any, iam: Any, gatehouse: GatehouseServer
) -> None:
    pool = make_user_pool(idp, gatehouse, "aws-named-proof")
    make_user(idp, pool, "cy")
    token = sign_in(idp, pool, "cy")["IdToken"]
    identity_pool = ci.create_identity_pool(
        IdentityPoolName="aws named proof",
        AllowUnauthenticatedIdentities=False,
        AllowClassicFlow=True,
        CognitoIdentityProviders=[{"ProviderName": pool.aws_key, "ClientId": pool.client_id}],
    )["IdentityPoolId"]
    role = make_role(iam, "aws-named-proof", identity_trust(identity_pool))
    ci.set_identity_pool_roles(IdentityPoolId=identity_pool, Roles={"authenticated": role})
    logins = {pool.aws_key: token}
    identity = public_ci.get_id(IdentityPoolId=identity_pool, Logins=logins)["IdentityId"]
    open_id = public_ci.get_open_id_token(IdentityId=identity, Logins=logins)["Token"]
    assert claims_of(open_id)["amr"][1] == pool.aws_key

    # A mapping that denies every login through the user pool's client: the OpenID token (whose amr names the
    # pool by AWS's name) may not side-step it.
    rule = {"Claim": "custom:nothing", "MatchType": "Equals", "Value": "x", "RoleARN": role}
    ci.set_identity_pool_roles(
        IdentityPoolId=identity_pool,
        Roles={"authenticated": role},
        RoleMappings={
            f"{pool.aws_key}:{pool.client_id}": {
                "Type": "Rules",
                "AmbiguousRoleResolution": "Deny",
                "RulesConfiguration": {"Rules": [rule]},
            }
        },
    )
    code, message, _ = error_of(
        lambda: public_ci.get_credentials_for_identity(
            IdentityId=identity, Logins={"cognito-identity.amazonaws.com": open_id}
        )
    )
    assert code == "NotAuthorizedException" and "ambiguous role mapping rules" in message
