"""Identity pools through boto3's unmodified ``cognito-identity`` client against a real server.

Admin operations are signed with the admin credentials; GetId, GetOpenIdToken, GetCredentialsForIdentity and
UnlinkIdentity are sent unsigned, as an app sends them. Users sign in with ``cognito-idp`` to get the ID
tokens used as logins. OpenID tokens are checked with PyJWT against the identity issuer's published JWKS.

The spec is the Amazon Cognito Federated Identities API reference, botocore's ``cognito-identity`` model, and
the developer guide's "Identity pools authentication flow" and "Role-based access control".
"""

from __future__ import annotations

import base64
import json
import sqlite3
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import jwt
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials as BotoCredentials
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.secretbox import SecretBox
from tests.e2e.aws_support import aws_client, identity_trust
from tests.oidc_fake import FakeOidcProvider
from tests.saml_idp_fake import FakeAwsSamlIdP, tamper
from tests.support import ADMIN_KEY_ID, ADMIN_SECRET, REGION, GatehouseServer

PASSWORD = "Correct-horse-1"
ROLE_AUTH = "arn:aws:iam::000000000000:role/identity-authenticated"
ROLE_GUEST = "arn:aws:iam::000000000000:role/identity-guest"
ROLE_ADMINS = "arn:aws:iam::000000000000:role/identity-admins"
ROLE_READERS = "arn:aws:iam::000000000000:role/identity-readers"
DEVELOPER = "login.example.app"


# --- helpers -----------------------------------------------------------------------------------------------


def error_of(call: Callable[[], Any]) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as exc:
        call()
    error = exc.value.response["Error"]
    return (
        str(error["Code"]),
        str(error.get("Message", "")),
        int(exc.value.response["ResponseMetadata"]["HTTPStatusCode"]),
    )


def claims_of(token: str) -> dict[str, Any]:
    claims = jwt.decode(token, options={"verify_signature": False})
    assert isinstance(claims, dict)
    return claims


@dataclass
class UserPool:
    id: str
    client_id: str
    other_client_id: str
    key: str  # the pool's name as a login provider: its issuer without the scheme

    @property
    def aws_key(self) -> str:
        return f"cognito-idp.{REGION}.amazonaws.com/{self.id}"


def make_user_pool(idp: Any, gatehouse: GatehouseServer, name: str) -> UserPool:
    pool_id = str(idp.create_user_pool(PoolName=name)["UserPool"]["Id"])
    flows = ["ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    client = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=flows)
    other = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="other", ExplicitAuthFlows=flows)
    key = f"127.0.0.1:{gatehouse.port}/{pool_id}"
    return UserPool(pool_id, client["UserPoolClient"]["ClientId"], other["UserPoolClient"]["ClientId"], key)


def make_user(idp: Any, pool: UserPool, username: str) -> None:
    idp.admin_create_user(
        UserPoolId=pool.id, Username=username, TemporaryPassword="Temporary-pass-1", MessageAction="SUPPRESS"
    )
    idp.admin_set_user_password(UserPoolId=pool.id, Username=username, Password=PASSWORD, Permanent=True)


def sign_in(idp: Any, pool: UserPool, username: str, client_id: str | None = None) -> dict[str, str]:
    result = idp.admin_initiate_auth(
        UserPoolId=pool.id,
        ClientId=client_id or pool.client_id,
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD},
    )["AuthenticationResult"]
    return dict(result)


def id_token(idp: Any, pool: UserPool, username: str) -> str:
    return sign_in(idp, pool, username)["IdToken"]


def provider(pool: UserPool, *, check: bool = False, client_id: str | None = None) -> dict[str, Any]:
    return {"ProviderName": pool.key, "ClientId": client_id or pool.client_id, "ServerSideTokenCheck": check}


def forged(gatehouse: GatehouseServer, pool_id: str, claims: dict[str, Any]) -> str:
    """A token signed with the pool's real ID-token key (read from the data dir, as only the operator
    could): lets a test present a genuinely signed but expired token."""
    box = SecretBox(bytes.fromhex((gatehouse.data_dir / "secret.key").read_text().strip()))
    with sqlite3.connect(gatehouse.data_dir / "gatehouse.db") as db:
        kid, sealed = db.execute(
            "SELECT kid, private_jwk FROM signing_keys WHERE pool_id = ? AND token_use = 'id' AND active = 1",
            (pool_id,),
        ).fetchone()
    key = jwt.algorithms.RSAAlgorithm.from_jwk(box.open(sealed, aad=kid.encode()).decode())
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})  # type: ignore[arg-type]


def tampered(token: str) -> str:
    """The same token with one claim changed and the signature kept."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "00000000-0000-0000-0000-000000000000"
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{body}.{signature}"


# --- fixtures ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saml_idp() -> FakeAwsSamlIdP:
    return FakeAwsSamlIdP()


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
def users(idp: Any, gatehouse: GatehouseServer) -> UserPool:
    pool = make_user_pool(idp, gatehouse, "identity-users")
    for name in ("alice", "bob", "erin", "frank", "grace", "heidi", "ivan", "judy", "kim"):
        make_user(idp, pool, name)
    return pool


@pytest.fixture(scope="module")
def partners(idp: Any, gatehouse: GatehouseServer) -> UserPool:
    pool = make_user_pool(idp, gatehouse, "identity-partners")
    for name in ("carol", "dave", "mallory", "oscar"):
        make_user(idp, pool, name)
    return pool


@pytest.fixture(scope="module")
def identity_pool(ci: Any, users: UserPool, partners: UserPool) -> str:
    pool = ci.create_identity_pool(
        IdentityPoolName="app identities",
        AllowUnauthenticatedIdentities=False,
        AllowClassicFlow=True,  # GetOpenIdToken is the basic flow's
        CognitoIdentityProviders=[provider(users, check=True), provider(partners)],
        DeveloperProviderName=DEVELOPER,
    )
    return str(pool["IdentityPoolId"])


@pytest.fixture(scope="module")
def guest_pool(ci: Any, users: UserPool) -> str:
    pool = ci.create_identity_pool(
        IdentityPoolName="guests welcome",
        AllowUnauthenticatedIdentities=True,
        AllowClassicFlow=True,
        CognitoIdentityProviders=[provider(users)],
    )
    return str(pool["IdentityPoolId"])


def identity_count(ci: Any, pool_id: str) -> int:
    return len(ci.list_identities(IdentityPoolId=pool_id, MaxResults=60)["Identities"])


# --- identity pools ----------------------------------------------------------------------------------------


def test_create_describe_update_list_delete(ci: Any, iam: Any, users: UserPool, saml_idp: FakeAwsSamlIdP) -> None:
    iam.create_open_id_connect_provider(Url="https://idp.example.com", ClientIDList=["app"], ThumbprintList=["0" * 40])
    iam.create_saml_provider(Name="corp", SAMLMetadataDocument=saml_idp.metadata_xml())
    created = ci.create_identity_pool(
        IdentityPoolName="crud pool",
        AllowUnauthenticatedIdentities=True,
        AllowClassicFlow=True,
        CognitoIdentityProviders=[provider(users, check=True)],
        SupportedLoginProviders={"accounts.google.com": "google-client-id.apps.example"},
        OpenIdConnectProviderARNs=["arn:aws:iam::000000000000:oidc-provider/idp.example.com"],
        SamlProviderARNs=["arn:aws:iam::000000000000:saml-provider/corp"],
        DeveloperProviderName="dev.example",
        IdentityPoolTags={"team": "platform"},
    )
    pool_id = created["IdentityPoolId"]
    region, _, uuid_part = pool_id.partition(":")
    assert region == REGION and len(uuid_part) == 36
    described = ci.describe_identity_pool(IdentityPoolId=pool_id)
    described.pop("ResponseMetadata")
    created.pop("ResponseMetadata")
    assert described == created
    assert described["CognitoIdentityProviders"] == [provider(users, check=True)]
    assert described["AllowClassicFlow"] is True and described["IdentityPoolTags"] == {"team": "platform"}

    updated = ci.update_identity_pool(
        IdentityPoolId=pool_id,
        IdentityPoolName="crud pool renamed",
        AllowUnauthenticatedIdentities=False,
        CognitoIdentityProviders=[provider(users, client_id=users.other_client_id)],
        DeveloperProviderName="dev.example",
    )
    assert updated["IdentityPoolName"] == "crud pool renamed"
    assert updated["AllowUnauthenticatedIdentities"] is False and updated["AllowClassicFlow"] is False
    assert updated["SupportedLoginProviders"] == {} and updated["IdentityPoolTags"] == {"team": "platform"}
    assert ci.describe_identity_pool(IdentityPoolId=pool_id)["CognitoIdentityProviders"][0]["ClientId"] == (
        users.other_client_id
    )
    code, message, _ = error_of(
        lambda: ci.update_identity_pool(
            IdentityPoolId=pool_id,
            IdentityPoolName="x",
            AllowUnauthenticatedIdentities=False,
            DeveloperProviderName="another.dev",
        )
    )
    assert code == "InvalidParameterException" and "DeveloperProviderName" in message
    assert ci.describe_identity_pool(IdentityPoolId=pool_id)["DeveloperProviderName"] == "dev.example"

    seen: list[str] = []
    token: str | None = None
    while True:
        page = ci.list_identity_pools(MaxResults=1, **({"NextToken": token} if token else {}))
        assert len(page["IdentityPools"]) <= 1
        seen += [p["IdentityPoolId"] for p in page["IdentityPools"]]
        token = page.get("NextToken")
        if not token:
            break
    assert pool_id in seen and len(seen) == len(set(seen))

    ci.delete_identity_pool(IdentityPoolId=pool_id)
    code, message, status = error_of(lambda: ci.describe_identity_pool(IdentityPoolId=pool_id))
    assert (code, status) == ("ResourceNotFoundException", 400) and pool_id in message
    assert error_of(lambda: ci.delete_identity_pool(IdentityPoolId=pool_id))[0] == "ResourceNotFoundException"


def test_validation_errors_answer_as_cognito(raw_ci: Any, ci: Any, users: UserPool) -> None:
    before = len(ci.list_identity_pools(MaxResults=60)["IdentityPools"])
    code, message, status = error_of(lambda: raw_ci.create_identity_pool(IdentityPoolName="no flag"))
    assert (code, status) == ("InvalidParameterException", 400)
    assert message == (
        "1 validation error detected: Value null at 'allowUnauthenticatedIdentities' failed to satisfy "
        "constraint: Member must not be null"
    )
    code, message, _ = error_of(
        lambda: raw_ci.create_identity_pool(IdentityPoolName="bad/name", AllowUnauthenticatedIdentities=True)
    )
    assert code == "InvalidParameterException" and "identityPoolName" in message and "regular expression" in message
    code, _, _ = error_of(
        lambda: raw_ci.create_identity_pool(IdentityPoolName="x", AllowUnauthenticatedIdentities="yes")
    )
    assert code == "SerializationException"
    bad_inputs: list[dict[str, Any]] = [
        {"SupportedLoginProviders": {"login.evil.example": "x"}},
        {"CognitoIdentityProviders": [{"ProviderName": "127.0.0.1:1/us-east-1_Missing1", "ClientId": "abc"}]},
        {"CognitoIdentityProviders": [{"ProviderName": users.key, "ClientId": "notaclientofthatpool"}]},
        {"OpenIdConnectProviderARNs": ["arn:aws:iam::000000000000:user/not-a-provider"]},
        {"OpenIdConnectProviderARNs": ["arn:aws:iam::000000000000:oidc-provider/unregistered.example.com"]},
        {"SamlProviderARNs": ["arn:aws:iam::000000000000:saml-provider/unregistered"]},
    ]
    for extra in bad_inputs:
        code, _, _ = error_of(
            lambda extra=extra: ci.create_identity_pool(
                IdentityPoolName="invalid", AllowUnauthenticatedIdentities=False, **extra
            )
        )
        assert code == "InvalidParameterException", extra
    assert error_of(lambda: ci.describe_identity_pool(IdentityPoolId="not-an-id"))[0] == "InvalidParameterException"
    assert len(ci.list_identity_pools(MaxResults=60)["IdentityPools"]) == before


def test_admin_operations_need_the_admin_signature(gatehouse: GatehouseServer, public_ci: Any) -> None:
    code, _, status = error_of(lambda: public_ci.list_identity_pools(MaxResults=10))
    assert (code, status) == ("MissingAuthenticationTokenException", 403)
    wrong = gatehouse.client("cognito-identity", secret="not-the-secret")
    code, _, status = error_of(lambda: wrong.list_identity_pools(MaxResults=10))
    assert (code, status) == ("InvalidSignatureException", 403)
    stranger = gatehouse.client("cognito-identity", key_id="AKIDSTRANGER")
    assert (
        error_of(lambda: stranger.create_identity_pool(IdentityPoolName="x", AllowUnauthenticatedIdentities=True))[0]
        == "UnrecognizedClientException"
    )


def test_tags(ci: Any, identity_pool: str) -> None:
    arn = f"arn:aws:cognito-identity:{REGION}:000000000000:identitypool/{identity_pool}"
    ci.tag_resource(ResourceArn=arn, Tags={"env": "test", "owner": "identity"})
    assert ci.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"env": "test", "owner": "identity"}
    ci.untag_resource(ResourceArn=arn, TagKeys=["env", "absent"])
    assert ci.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"owner": "identity"}
    assert ci.describe_identity_pool(IdentityPoolId=identity_pool)["IdentityPoolTags"] == {"owner": "identity"}
    assert error_of(lambda: ci.list_tags_for_resource(ResourceArn="arn:aws:s3:::not-an-identity-pool"))[0] == (
        "InvalidParameterException"
    )
    missing = (
        f"arn:aws:cognito-identity:{REGION}:000000000000:identitypool/{REGION}:00000000-0000-0000-0000-000000000000"
    )
    assert error_of(lambda: ci.tag_resource(ResourceArn=missing, Tags={"a": "b"}))[0] == "ResourceNotFoundException"


# --- GetId and logins --------------------------------------------------------------------------------------


def test_get_id_is_stable_per_login(idp: Any, ci: Any, public_ci: Any, users: UserPool, identity_pool: str) -> None:
    first = public_ci.get_id(IdentityPoolId=identity_pool, Logins={users.key: id_token(idp, users, "alice")})
    again = public_ci.get_id(IdentityPoolId=identity_pool, Logins={users.key: id_token(idp, users, "alice")})
    # AWS's name for the user pool (what Amplify builds) reaches the same identity.
    aws_named = public_ci.get_id(IdentityPoolId=identity_pool, Logins={users.aws_key: id_token(idp, users, "alice")})
    bob = public_ci.get_id(IdentityPoolId=identity_pool, Logins={users.key: id_token(idp, users, "bob")})
    assert first["IdentityId"] == again["IdentityId"] == aws_named["IdentityId"] != bob["IdentityId"]
    region, _, rest = first["IdentityId"].partition(":")
    assert region == REGION and len(rest) == 36
    described = ci.describe_identity(IdentityId=first["IdentityId"])
    assert described["Logins"] == [users.key]
    assert described["CreationDate"] <= described["LastModifiedDate"]
    listed = {i["IdentityId"]: i for i in ci.list_identities(IdentityPoolId=identity_pool, MaxResults=60)["Identities"]}
    assert listed[first["IdentityId"]]["Logins"] == [users.key]


def test_guests_only_where_the_pool_allows_them(public_ci: Any, ci: Any, identity_pool: str, guest_pool: str) -> None:
    before = identity_count(ci, identity_pool)
    code, message, _ = error_of(lambda: public_ci.get_id(IdentityPoolId=identity_pool))
    assert (
        code == "NotAuthorizedException"
        and message == "Unauthenticated access is not supported for this identity pool."
    )
    assert identity_count(ci, identity_pool) == before
    one = public_ci.get_id(IdentityPoolId=guest_pool)["IdentityId"]
    two = public_ci.get_id(IdentityPoolId=guest_pool)["IdentityId"]
    assert one != two
    token = public_ci.get_open_id_token(IdentityId=one)
    assert token["IdentityId"] == one and claims_of(token["Token"])["amr"] == ["unauthenticated"]
    assert ci.describe_identity(IdentityId=one)["Logins"] == []
    # The pool stops allowing guests: the existing guest is refused too.
    ci.update_identity_pool(
        IdentityPoolId=guest_pool,
        IdentityPoolName="guests welcome",
        AllowUnauthenticatedIdentities=False,
        AllowClassicFlow=True,
        CognitoIdentityProviders=ci.describe_identity_pool(IdentityPoolId=guest_pool)["CognitoIdentityProviders"],
    )
    try:
        assert error_of(lambda: public_ci.get_open_id_token(IdentityId=one))[0] == "NotAuthorizedException"
    finally:
        ci.update_identity_pool(
            IdentityPoolId=guest_pool,
            IdentityPoolName="guests welcome",
            AllowUnauthenticatedIdentities=True,
            AllowClassicFlow=True,
            CognitoIdentityProviders=ci.describe_identity_pool(IdentityPoolId=guest_pool)["CognitoIdentityProviders"],
        )
    missing = f"{REGION}:00000000-0000-0000-0000-000000000000"
    assert error_of(lambda: public_ci.get_id(IdentityPoolId=missing))[0] == "ResourceNotFoundException"
    assert error_of(lambda: public_ci.get_open_id_token(IdentityId=missing))[0] == "ResourceNotFoundException"


def test_a_returning_login_changes_nothing_and_a_new_one_is_linked(
    idp: Any, ci: Any, public_ci: Any, users: UserPool, partners: UserPool, identity_pool: str
) -> None:
    kim = {users.key: id_token(idp, users, "kim")}
    identity = public_ci.get_id(IdentityPoolId=identity_pool, Logins=kim)["IdentityId"]
    before = {k: v for k, v in ci.describe_identity(IdentityId=identity).items() if k != "ResponseMetadata"}
    count = identity_count(ci, identity_pool)
    # GetId for a login already linked answers the same identity and writes nothing.
    for _ in range(3):
        assert public_ci.get_id(IdentityPoolId=identity_pool, Logins=kim)["IdentityId"] == identity
    after = {k: v for k, v in ci.describe_identity(IdentityId=identity).items() if k != "ResponseMetadata"}
    assert after == before  # LastModifiedDate included
    assert identity_count(ci, identity_pool) == count
    # The same login with one never seen before: the new one is linked to kim's identity.
    oscar = {partners.key: id_token(idp, partners, "oscar")}
    assert public_ci.get_id(IdentityPoolId=identity_pool, Logins={**kim, **oscar})["IdentityId"] == identity
    assert sorted(ci.describe_identity(IdentityId=identity)["Logins"]) == sorted([users.key, partners.key])
    assert public_ci.get_id(IdentityPoolId=identity_pool, Logins=oscar)["IdentityId"] == identity
    assert identity_count(ci, identity_pool) == count
    # A tampered token for a linked login is still refused: the read-only path comes after verification.
    code, _, _ = error_of(
        lambda: public_ci.get_id(IdentityPoolId=identity_pool, Logins={users.key: tampered(kim[users.key])})
    )
    assert code == "NotAuthorizedException"


def test_linking_two_logins_and_conflicts(
    idp: Any, ci: Any, public_ci: Any, users: UserPool, partners: UserPool, identity_pool: str
) -> None:
    erin = {users.key: id_token(idp, users, "erin")}
    carol = {partners.key: id_token(idp, partners, "carol")}
    identity = public_ci.get_id(IdentityPoolId=identity_pool, Logins=erin)["IdentityId"]
    # Presenting both logins for erin's identity links carol's login to it.
    public_ci.get_open_id_token(IdentityId=identity, Logins={**erin, **carol})
    assert public_ci.get_id(IdentityPoolId=identity_pool, Logins=carol)["IdentityId"] == identity
    assert sorted(ci.describe_identity(IdentityId=identity)["Logins"]) == sorted([users.key, partners.key])

    dave = {partners.key: id_token(idp, partners, "dave")}
    daves = public_ci.get_id(IdentityPoolId=identity_pool, Logins=dave)["IdentityId"]
    assert daves != identity
    # dave's login belongs to another identity: linking it to erin's is a conflict, and nothing changes.
    frank = {users.key: id_token(idp, users, "frank")}
    franks = public_ci.get_id(IdentityPoolId=identity_pool, Logins=frank)["IdentityId"]
    code, _, _ = error_of(lambda: public_ci.get_open_id_token(IdentityId=franks, Logins={**frank, **dave}))
    assert code == "ResourceConflictException"
    code, _, _ = error_of(lambda: public_ci.get_id(IdentityPoolId=identity_pool, Logins={**frank, **dave}))
    assert code == "ResourceConflictException"
    assert ci.describe_identity(IdentityId=franks)["Logins"] == [users.key]
    assert ci.describe_identity(IdentityId=daves)["Logins"] == [partners.key]


def test_knowing_an_identity_id_is_not_enough(
    idp: Any, public_ci: Any, ci: Any, users: UserPool, partners: UserPool, identity_pool: str
) -> None:
    victim = public_ci.get_id(IdentityPoolId=identity_pool, Logins={users.key: id_token(idp, users, "grace")})[
        "IdentityId"
    ]
    code, message, _ = error_of(lambda: public_ci.get_open_id_token(IdentityId=victim))
    assert code == "NotAuthorizedException" and victim in message
    # Another user's valid login cannot be linked onto it, nor does it open it.
    mallory = {partners.key: id_token(idp, partners, "mallory")}
    code, _, _ = error_of(lambda: public_ci.get_open_id_token(IdentityId=victim, Logins=mallory))
    assert code == "NotAuthorizedException"
    assert ci.describe_identity(IdentityId=victim)["Logins"] == [users.key]


def test_bad_login_tokens_are_refused(
    gatehouse: GatehouseServer,
    idp: Any,
    ci: Any,
    public_ci: Any,
    users: UserPool,
    partners: UserPool,
    identity_pool: str,
) -> None:
    tokens = sign_in(idp, users, "heidi")
    outsider_pool = make_user_pool(idp, gatehouse, "identity-outsiders")
    make_user(idp, outsider_pool, "oscar")
    now = int(time.time())
    genuine = claims_of(tokens["IdToken"])
    expired = forged(gatehouse, users.id, {**genuine, "iat": now - 7200, "exp": now - 3600})
    cases: list[tuple[str, dict[str, str], str]] = [
        ("tampered", {users.key: tampered(tokens["IdToken"])}, "signature"),
        ("expired", {users.key: expired}, "expired"),
        ("access token", {users.key: tokens["AccessToken"]}, "identity token"),
        ("other client", {users.key: sign_in(idp, users, "heidi", users.other_client_id)["IdToken"]}, "audience"),
        ("pool not configured", {outsider_pool.key: id_token(idp, outsider_pool, "oscar")}, "supported provider"),
        ("token of another pool", {partners.key: tokens["IdToken"]}, "Issuer"),
        ("unknown provider", {"login.unknown.example": tokens["IdToken"]}, "supported provider"),
        ("developer login in a public call", {DEVELOPER: "heidi"}, "supported provider"),
        ("garbage", {users.key: "not.a.jwt"}, "Invalid login token"),
    ]
    before = identity_count(ci, identity_pool)
    for name, logins, expected in cases:
        code, message, status = error_of(
            lambda logins=logins: public_ci.get_id(IdentityPoolId=identity_pool, Logins=logins)
        )
        assert (code, status) == ("NotAuthorizedException", 400), name
        assert expected in message, (name, message)
    assert identity_count(ci, identity_pool) == before
    # Each refusal is in the audit trail, with its reason and never the token.
    events = [json.loads(line) for line in gatehouse.log_text().splitlines() if line.startswith("{")]
    refusals = [e for e in events if e.get("event") == "identity.login_refused" and e.get("pool") == identity_pool]
    assert len(refusals) >= len(cases) and any("expired" in e["reason"] for e in refusals)
    assert tokens["IdToken"].split(".")[2] not in gatehouse.log_text()
    # The genuine token works; once the user signs out everywhere, ServerSideTokenCheck refuses it.
    public_ci.get_id(IdentityPoolId=identity_pool, Logins={users.key: tokens["IdToken"]})
    idp.admin_user_global_sign_out(UserPoolId=users.id, Username="heidi")
    code, message, _ = error_of(
        lambda: public_ci.get_id(IdentityPoolId=identity_pool, Logins={users.key: tokens["IdToken"]})
    )
    assert code == "NotAuthorizedException" and "revoked" in message


# --- OpenID tokens ---------------------------------------------------------------------------------------------


def test_open_id_token_verifies_against_the_identity_jwks(
    gatehouse: GatehouseServer, idp: Any, public_ci: Any, users: UserPool, identity_pool: str
) -> None:
    with urllib.request.urlopen(f"{gatehouse.url}/identity/.well-known/openid-configuration") as response:
        discovery = json.load(response)
    issuer = f"{gatehouse.url}/identity"
    assert discovery["issuer"] == issuer and discovery["jwks_uri"] == f"{issuer}/.well-known/jwks.json"
    logins = {users.key: id_token(idp, users, "ivan")}
    identity = public_ci.get_id(IdentityPoolId=identity_pool, Logins=logins)["IdentityId"]
    answer = public_ci.get_open_id_token(IdentityId=identity, Logins=logins)
    keys = jwt.PyJWKClient(discovery["jwks_uri"])
    token = answer["Token"]
    claims = jwt.decode(
        token, keys.get_signing_key_from_jwt(token).key, algorithms=["RS256"], audience=identity_pool, issuer=issuer
    )
    sub = claims_of(logins[users.key])["sub"]
    assert claims["sub"] == identity == answer["IdentityId"]
    assert claims["amr"] == ["authenticated", users.key, f"{users.key}:CognitoSignIn:{sub}"]
    assert claims["exp"] - claims["iat"] == 600
    assert claims["https://cognito-identity.amazonaws.com/identity-pool-arn"].endswith(f":identitypool/{identity_pool}")
    # A user pool's keys are not the identity issuer's: its tokens do not verify there.
    with pytest.raises(jwt.exceptions.PyJWKClientError):
        keys.get_signing_key_from_jwt(logins[users.key])


# --- developer identities ----------------------------------------------------------------------------------


def test_developer_identities(gatehouse: GatehouseServer, ci: Any, public_ci: Any, identity_pool: str) -> None:
    first = ci.get_open_id_token_for_developer_identity(
        IdentityPoolId=identity_pool, Logins={DEVELOPER: "user-1"}, TokenDuration=3600, PrincipalTags={"dept": "ops"}
    )
    identity = first["IdentityId"]
    claims = claims_of(first["Token"])
    assert claims["sub"] == identity and claims["aud"] == identity_pool
    assert claims["amr"] == ["authenticated", DEVELOPER, f"{DEVELOPER}:{identity_pool}:user-1"]
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["https://aws.amazon.com/tags"] == {"principal_tags": {"dept": ["ops"]}}
    again = ci.get_open_id_token_for_developer_identity(IdentityPoolId=identity_pool, Logins={DEVELOPER: "user-1"})
    assert again["IdentityId"] == identity
    assert claims_of(again["Token"])["exp"] - claims_of(again["Token"])["iat"] == 900
    # Linking a second developer user to the identity, then looking it up both ways.
    ci.get_open_id_token_for_developer_identity(
        IdentityPoolId=identity_pool, IdentityId=identity, Logins={DEVELOPER: "user-2"}
    )
    found = ci.lookup_developer_identity(IdentityPoolId=identity_pool, DeveloperUserIdentifier="user-2")
    assert found["IdentityId"] == identity and found["DeveloperUserIdentifierList"] == ["user-1", "user-2"]
    page = ci.lookup_developer_identity(IdentityPoolId=identity_pool, IdentityId=identity, MaxResults=1)
    assert page["DeveloperUserIdentifierList"] == ["user-1"]
    rest = ci.lookup_developer_identity(
        IdentityPoolId=identity_pool, IdentityId=identity, MaxResults=1, NextToken=page["NextToken"]
    )
    assert rest["DeveloperUserIdentifierList"] == ["user-2"] and "NextToken" not in rest
    assert (
        error_of(lambda: ci.lookup_developer_identity(IdentityPoolId=identity_pool, DeveloperUserIdentifier="nobody"))[
            0
        ]
        == "ResourceNotFoundException"
    )

    other = ci.get_open_id_token_for_developer_identity(IdentityPoolId=identity_pool, Logins={DEVELOPER: "user-3"})[
        "IdentityId"
    ]
    code, _, _ = error_of(
        lambda: ci.get_open_id_token_for_developer_identity(
            IdentityPoolId=identity_pool, IdentityId=identity, Logins={DEVELOPER: "user-3"}
        )
    )
    assert code == "DeveloperUserAlreadyRegisteredException"
    merged = ci.merge_developer_identities(
        IdentityPoolId=identity_pool,
        DeveloperProviderName=DEVELOPER,
        SourceUserIdentifier="user-3",
        DestinationUserIdentifier="user-1",
    )
    assert merged["IdentityId"] == identity
    assert (
        ci.lookup_developer_identity(IdentityPoolId=identity_pool, DeveloperUserIdentifier="user-3")["IdentityId"]
        == identity
    )
    assert ci.describe_identity(IdentityId=other)["Logins"] == []
    hidden = ci.list_identities(IdentityPoolId=identity_pool, MaxResults=60, HideDisabled=True)["Identities"]
    assert other not in {i["IdentityId"] for i in hidden}

    ci.unlink_developer_identity(
        IdentityId=identity,
        IdentityPoolId=identity_pool,
        DeveloperProviderName=DEVELOPER,
        DeveloperUserIdentifier="user-2",
    )
    assert ci.lookup_developer_identity(IdentityPoolId=identity_pool, IdentityId=identity)[
        "DeveloperUserIdentifierList"
    ] == ["user-1", "user-3"]
    code, _, _ = error_of(
        lambda: ci.unlink_developer_identity(
            IdentityId=identity,
            IdentityPoolId=identity_pool,
            DeveloperProviderName="other.dev",
            DeveloperUserIdentifier="user-1",
        )
    )
    assert code == "ResourceNotFoundException"

    # The app proves the identity with the developer token under cognito-identity.amazonaws.com.
    proof = {"cognito-identity.amazonaws.com": first["Token"]}
    opened = public_ci.get_open_id_token(IdentityId=identity, Logins=proof)
    assert claims_of(opened["Token"])["amr"][0] == "authenticated"
    assert error_of(lambda: public_ci.get_open_id_token(IdentityId=other, Logins=proof))[0] == "NotAuthorizedException"
    # The same token spelt otherwise is no token (RFC 7515 §2: unpadded base64url; one signature, one spelling).
    header, payload, signature = first["Token"].split(".")
    for respelt in (
        f"{header}.{payload}.{signature}==",
        f"{header}.{payload}.{signature.replace('-', '+').replace('_', '/')}",
        f"{header}.{payload}.{signature[:9]}!!{signature[9:]}",
    ):
        if respelt == first["Token"]:
            continue  # a signature with no - or _ to respell
        code, _, _ = error_of(
            lambda respelt=respelt: public_ci.get_open_id_token(
                IdentityId=identity, Logins={"cognito-identity.amazonaws.com": respelt}
            )
        )
        assert code == "NotAuthorizedException", respelt
    short = ci.get_open_id_token_for_developer_identity(
        IdentityPoolId=identity_pool, Logins={DEVELOPER: "user-1"}, TokenDuration=1
    )["Token"]
    time.sleep(2.1)
    code, message, _ = error_of(
        lambda: public_ci.get_open_id_token(IdentityId=identity, Logins={"cognito-identity.amazonaws.com": short})
    )
    assert code == "NotAuthorizedException" and "expired" in message
    # Developer operations are admin operations.
    assert (
        error_of(
            lambda: public_ci.get_open_id_token_for_developer_identity(
                IdentityPoolId=identity_pool, Logins={DEVELOPER: "x"}
            )
        )[0]
        == "MissingAuthenticationTokenException"
    )


def test_unlink_identity(
    idp: Any, ci: Any, public_ci: Any, users: UserPool, partners: UserPool, identity_pool: str
) -> None:
    judy = {users.key: id_token(idp, users, "judy")}
    carol = {partners.key: id_token(idp, partners, "carol")}
    identity = public_ci.get_id(IdentityPoolId=identity_pool, Logins=judy)["IdentityId"]
    # Without one of the identity's own logins nothing is unlinked.
    code, _, _ = error_of(
        lambda: public_ci.unlink_identity(IdentityId=identity, Logins=carol, LoginsToRemove=[users.key])
    )
    assert code == "NotAuthorizedException"
    assert ci.describe_identity(IdentityId=identity)["Logins"] == [users.key]
    public_ci.unlink_identity(IdentityId=identity, Logins=judy, LoginsToRemove=[users.aws_key])
    described = ci.describe_identity(IdentityId=identity)
    assert described["Logins"] == []
    # The unlinked login is new again: it gets a new identity; the old one is disabled.
    assert public_ci.get_id(IdentityPoolId=identity_pool, Logins=judy)["IdentityId"] != identity
    hidden = ci.list_identities(IdentityPoolId=identity_pool, MaxResults=60, HideDisabled=True)["Identities"]
    assert identity not in {i["IdentityId"] for i in hidden}
    assert error_of(lambda: public_ci.get_open_id_token(IdentityId=identity))[0] == "NotAuthorizedException"


def test_list_and_delete_identities(ci: Any, public_ci: Any, guest_pool: str) -> None:
    made = {public_ci.get_id(IdentityPoolId=guest_pool)["IdentityId"] for _ in range(3)}
    seen: list[str] = []
    token: str | None = None
    while True:
        page = ci.list_identities(IdentityPoolId=guest_pool, MaxResults=2, **({"NextToken": token} if token else {}))
        assert page["IdentityPoolId"] == guest_pool and len(page["Identities"]) <= 2
        seen += [i["IdentityId"] for i in page["Identities"]]
        token = page.get("NextToken")
        if not token:
            break
    assert made <= set(seen) and seen == sorted(seen)
    result = ci.delete_identities(IdentityIdsToDelete=sorted(made))
    assert result["UnprocessedIdentityIds"] == []
    for identity in made:
        assert (
            error_of(lambda identity=identity: ci.describe_identity(IdentityId=identity))[0]
            == "ResourceNotFoundException"
        )


# --- roles and principal tags ------------------------------------------------------------------------------


def test_roles_and_role_mappings_round_trip(ci: Any, users: UserPool, partners: UserPool, identity_pool: str) -> None:
    mappings = {
        f"{users.key}:{users.client_id}": {
            "Type": "Rules",
            "AmbiguousRoleResolution": "AuthenticatedRole",
            "RulesConfiguration": {
                "Rules": [
                    {"Claim": "cognito:groups", "MatchType": "Contains", "Value": "admins", "RoleARN": ROLE_ADMINS},
                    {"Claim": "email", "MatchType": "StartsWith", "Value": "reader", "RoleARN": ROLE_READERS},
                ]
            },
        },
        f"{partners.aws_key}:{partners.client_id}": {"Type": "Token", "AmbiguousRoleResolution": "Deny"},
    }
    ci.set_identity_pool_roles(
        IdentityPoolId=identity_pool,
        Roles={"authenticated": ROLE_AUTH, "unauthenticated": ROLE_GUEST},
        RoleMappings=mappings,
    )
    roles = ci.get_identity_pool_roles(IdentityPoolId=identity_pool)
    assert roles["Roles"] == {"authenticated": ROLE_AUTH, "unauthenticated": ROLE_GUEST}
    assert roles["RoleMappings"] == mappings
    code, message, _ = error_of(
        lambda: ci.set_identity_pool_roles(
            IdentityPoolId=identity_pool, Roles={"authenticated": "my-role-that-is-not-an-arn"}
        )
    )
    assert code == "NotAuthorizedException" and message == "Access to Role 'my-role-that-is-not-an-arn' is forbidden."
    bad_mappings: list[dict[str, Any]] = [
        {f"{users.key}:{users.client_id}": {"Type": "Rules", "AmbiguousRoleResolution": "Deny"}},
        {"login.unknown.example": {"Type": "Token", "AmbiguousRoleResolution": "Deny"}},
        {f"{users.key}:{users.client_id}": {"Type": "Token"}},
        # "You can specify up to 25 rules per identity provider" (RulesConfigurationType).
        {
            f"{users.key}:{users.client_id}": {
                "Type": "Rules",
                "AmbiguousRoleResolution": "Deny",
                "RulesConfiguration": {
                    "Rules": [
                        {"Claim": "email", "MatchType": "Equals", "Value": f"u{n}", "RoleARN": ROLE_READERS}
                        for n in range(26)
                    ]
                },
            }
        },
    ]
    for bad in bad_mappings:
        code, _, _ = error_of(
            lambda bad=bad: ci.set_identity_pool_roles(
                IdentityPoolId=identity_pool, Roles={"authenticated": ROLE_AUTH}, RoleMappings=bad
            )
        )
        assert code == "InvalidParameterException", bad
    assert ci.get_identity_pool_roles(IdentityPoolId=identity_pool)["RoleMappings"] == mappings


def test_principal_tag_attribute_map(ci: Any, users: UserPool, identity_pool: str) -> None:
    assert (
        ci.get_principal_tag_attribute_map(IdentityPoolId=identity_pool, IdentityProviderName=users.key)["UseDefaults"]
        is False
    )
    answer = ci.set_principal_tag_attribute_map(
        IdentityPoolId=identity_pool, IdentityProviderName=users.key, UseDefaults=True, PrincipalTags={"mail": "email"}
    )
    assert (answer["UseDefaults"], answer["PrincipalTags"]) == (True, {"mail": "email"})
    got = ci.get_principal_tag_attribute_map(IdentityPoolId=identity_pool, IdentityProviderName=users.aws_key)
    assert (got["UseDefaults"], got["PrincipalTags"]) == (True, {"mail": "email"})
    code, _, _ = error_of(
        lambda: ci.set_principal_tag_attribute_map(
            IdentityPoolId=identity_pool, IdentityProviderName="login.unknown.example", UseDefaults=True
        )
    )
    assert code == "InvalidParameterException"


# --- credentials (enhanced and basic flows, through Gatehouse's IAM and STS) ----------------------------------


def trust(pool_id: str, amr: str) -> str:
    """A role trust policy as the Cognito console writes it for an identity pool (with sts:TagSession)."""
    return identity_trust(pool_id, amr, tag_session=True)


@dataclass
class CredentialsSetup:
    pool_id: str
    roles: dict[str, str]  # name -> ARN


@pytest.fixture(scope="module")
def setup(idp: Any, ci: Any, iam: Any, users: UserPool, partners: UserPool) -> CredentialsSetup:
    pool_id = ci.create_identity_pool(
        IdentityPoolName="credentials",
        AllowUnauthenticatedIdentities=True,
        CognitoIdentityProviders=[provider(users), provider(partners)],
    )["IdentityPoolId"]
    other_pool = ci.create_identity_pool(IdentityPoolName="another pool", AllowUnauthenticatedIdentities=True)
    roles = {}
    for name, amr, for_pool in [
        ("cred-authenticated", "authenticated", pool_id),
        ("cred-guest", "unauthenticated", pool_id),
        ("cred-admins", "authenticated", pool_id),
        ("cred-readers", "authenticated", pool_id),
        ("cred-editors", "authenticated", pool_id),
        ("cred-untrusting", "authenticated", other_pool["IdentityPoolId"]),
    ]:
        roles[name] = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust(for_pool, amr))["Role"]["Arn"]
    idp.create_group(UserPoolId=users.id, GroupName="admins")
    make_user(idp, users, "ken")
    idp.admin_add_user_to_group(UserPoolId=users.id, Username="ken", GroupName="admins")
    idp.admin_create_user(
        UserPoolId=users.id,
        Username="lena",
        TemporaryPassword="Temporary-pass-1",
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": "email", "Value": "reader-lena@example.com"}],
    )
    idp.admin_set_user_password(UserPoolId=users.id, Username="lena", Password=PASSWORD, Permanent=True)
    make_user(idp, users, "max")
    # Partners carry roles in their tokens (cognito:roles / cognito:preferred_role) through groups.
    idp.create_group(UserPoolId=partners.id, GroupName="editors", RoleArn=roles["cred-editors"], Precedence=1)
    idp.create_group(UserPoolId=partners.id, GroupName="readers", RoleArn=roles["cred-readers"], Precedence=2)
    make_user(idp, partners, "nina")
    idp.admin_add_user_to_group(UserPoolId=partners.id, Username="nina", GroupName="editors")
    idp.admin_add_user_to_group(UserPoolId=partners.id, Username="nina", GroupName="readers")
    make_user(idp, partners, "otto")
    ci.set_identity_pool_roles(
        IdentityPoolId=pool_id,
        Roles={"authenticated": roles["cred-authenticated"], "unauthenticated": roles["cred-guest"]},
        RoleMappings={
            f"{users.aws_key}:{users.client_id}": {
                "Type": "Rules",
                "AmbiguousRoleResolution": "AuthenticatedRole",
                "RulesConfiguration": {
                    "Rules": [
                        {
                            "Claim": "cognito:groups",
                            "MatchType": "Contains",
                            "Value": "admin",
                            "RoleARN": roles["cred-admins"],
                        },
                        {
                            "Claim": "email",
                            "MatchType": "StartsWith",
                            "Value": "reader-",
                            "RoleARN": roles["cred-readers"],
                        },
                    ]
                },
            },
            f"{partners.key}:{partners.client_id}": {"Type": "Token", "AmbiguousRoleResolution": "Deny"},
        },
    )
    return CredentialsSetup(pool_id, roles)


def caller(gatehouse: GatehouseServer, credentials: dict[str, Any]) -> dict[str, Any]:
    """Who STS says the credentials are (GetCallerIdentity signed with them)."""
    sts = aws_client(
        "sts", gatehouse.url, credentials["AccessKeyId"], credentials["SecretKey"], credentials["SessionToken"]
    )
    return dict(sts.get_caller_identity())


def credentials_for(public_ci: Any, pool_id: str, logins: dict[str, str], **extra: Any) -> dict[str, Any]:
    identity = public_ci.get_id(IdentityPoolId=pool_id, Logins=logins)["IdentityId"]
    answer = public_ci.get_credentials_for_identity(IdentityId=identity, Logins=logins, **extra)
    assert answer["IdentityId"] == identity
    return dict(answer["Credentials"])


def test_credentials_follow_the_role_mapping_rules(
    gatehouse: GatehouseServer, idp: Any, public_ci: Any, users: UserPool, setup: CredentialsSetup
) -> None:
    expected = {"ken": "cred-admins", "lena": "cred-readers", "max": "cred-authenticated"}
    for username, role in expected.items():
        credentials = credentials_for(public_ci, setup.pool_id, {users.key: id_token(idp, users, username)})
        assert credentials["AccessKeyId"].startswith("ASIA") and len(credentials["SecretKey"]) == 40
        remaining = credentials["Expiration"].timestamp() - time.time()
        assert 3500 < remaining <= 3600
        who = caller(gatehouse, credentials)
        assert who["Arn"] == f"arn:aws:sts::000000000000:assumed-role/{role}/CognitoIdentityCredentials", username


def test_credentials_from_token_roles_and_custom_role_arn(
    gatehouse: GatehouseServer, idp: Any, public_ci: Any, partners: UserPool, setup: CredentialsSetup
) -> None:
    nina = {partners.key: id_token(idp, partners, "nina")}
    # cognito:preferred_role: the group with the lowest precedence.
    assert caller(gatehouse, credentials_for(public_ci, setup.pool_id, nina))["Arn"].endswith(
        "/cred-editors/CognitoIdentityCredentials"
    )
    chosen = credentials_for(public_ci, setup.pool_id, nina, CustomRoleArn=setup.roles["cred-readers"])
    assert caller(gatehouse, chosen)["Arn"].endswith("/cred-readers/CognitoIdentityCredentials")
    identity = public_ci.get_id(IdentityPoolId=setup.pool_id, Logins=nina)["IdentityId"]
    code, _, _ = error_of(
        lambda: public_ci.get_credentials_for_identity(
            IdentityId=identity, Logins=nina, CustomRoleArn=setup.roles["cred-admins"]
        )
    )
    assert code == "NotAuthorizedException"
    # otto's token names no role and the mapping denies ambiguity.
    otto = {partners.key: id_token(idp, partners, "otto")}
    otto_id = public_ci.get_id(IdentityPoolId=setup.pool_id, Logins=otto)["IdentityId"]
    code, message, _ = error_of(lambda: public_ci.get_credentials_for_identity(IdentityId=otto_id, Logins=otto))
    assert code == "NotAuthorizedException" and "ambiguous role mapping" in message


def test_guest_credentials_and_untrusted_roles(
    gatehouse: GatehouseServer, ci: Any, public_ci: Any, setup: CredentialsSetup
) -> None:
    guest = public_ci.get_id(IdentityPoolId=setup.pool_id)["IdentityId"]
    credentials = public_ci.get_credentials_for_identity(IdentityId=guest)["Credentials"]
    assert caller(gatehouse, credentials)["Arn"].endswith("/cred-guest/CognitoIdentityCredentials")
    # The guest role only trusts unauthenticated identities; the authenticated role only authenticated ones.
    ci.set_identity_pool_roles(
        IdentityPoolId=setup.pool_id,
        Roles={"authenticated": setup.roles["cred-authenticated"], "unauthenticated": setup.roles["cred-untrusting"]},
    )
    try:
        code, _, _ = error_of(lambda: public_ci.get_credentials_for_identity(IdentityId=guest))
        assert code == "InvalidIdentityPoolConfigurationException"
        ci.set_identity_pool_roles(
            IdentityPoolId=setup.pool_id,
            Roles={"unauthenticated": setup.roles["cred-authenticated"]},
        )
        code, _, _ = error_of(lambda: public_ci.get_credentials_for_identity(IdentityId=guest))
        assert code == "InvalidIdentityPoolConfigurationException"
        ci.set_identity_pool_roles(
            IdentityPoolId=setup.pool_id,
            Roles={"unauthenticated": "arn:aws:iam::000000000000:role/no-such-role"},
        )
        code, _, _ = error_of(lambda: public_ci.get_credentials_for_identity(IdentityId=guest))
        assert code == "InvalidIdentityPoolConfigurationException"
    finally:
        ci.set_identity_pool_roles(
            IdentityPoolId=setup.pool_id,
            Roles={"authenticated": setup.roles["cred-authenticated"], "unauthenticated": setup.roles["cred-guest"]},
        )
    # Forged session tokens do not pass STS.
    forged_credentials = {**credentials, "SessionToken": credentials["SessionToken"][:-4] + "AAAA"}
    with pytest.raises(ClientError):
        caller(gatehouse, forged_credentials)


def test_classic_flow_only_where_allowed(gatehouse: GatehouseServer, ci: Any, public_ci: Any, iam: Any) -> None:
    sts = gatehouse.client("sts", signed=False)
    pools = {}
    for allowed in (True, False):
        pool_id = ci.create_identity_pool(
            IdentityPoolName=f"classic {allowed}",
            AllowUnauthenticatedIdentities=True,
            AllowClassicFlow=allowed,
            DeveloperProviderName="classic.dev",
        )["IdentityPoolId"]
        role = iam.create_role(
            RoleName=f"classic-{allowed}", AssumeRolePolicyDocument=trust(pool_id, "unauthenticated")
        )
        pools[allowed] = (pool_id, role["Role"]["Arn"])
    pool_id, role_arn = pools[True]
    identity = public_ci.get_id(IdentityPoolId=pool_id)["IdentityId"]
    token = public_ci.get_open_id_token(IdentityId=identity)["Token"]
    answer = sts.assume_role_with_web_identity(RoleArn=role_arn, RoleSessionName="classic", WebIdentityToken=token)
    assert answer["SubjectFromWebIdentityToken"] == identity
    assert caller(gatehouse, {**answer["Credentials"], "SecretKey": answer["Credentials"]["SecretAccessKey"]})[
        "Arn"
    ].endswith("/classic-True/classic")
    pool_id, role_arn = pools[False]
    identity = public_ci.get_id(IdentityPoolId=pool_id)["IdentityId"]
    code, message, _ = error_of(lambda: public_ci.get_open_id_token(IdentityId=identity))
    assert code == "InvalidParameterException" and "Basic (classic) flow is not enabled" in message
    # Nor does STS take the pool's OpenID tokens (here a developer identity's) itself.
    token = ci.get_open_id_token_for_developer_identity(IdentityPoolId=pool_id, Logins={"classic.dev": "u1"})["Token"]
    code, message, _ = error_of(
        lambda: sts.assume_role_with_web_identity(RoleArn=role_arn, RoleSessionName="classic", WebIdentityToken=token)
    )
    assert code == "InvalidIdentityToken" and "classic" in message


# --- logins from an IAM OIDC provider (OpenIdConnectProviderARNs) --------------------------------------------


@pytest.fixture(scope="module")
def oidc_idp() -> Iterator[FakeOidcProvider]:
    fake = FakeOidcProvider()
    fake.start()
    yield fake
    fake.stop()


def test_logins_from_an_iam_oidc_provider(
    gatehouse: GatehouseServer, ci: Any, public_ci: Any, iam: Any, oidc_idp: FakeOidcProvider
) -> None:
    arn = iam.create_open_id_connect_provider(Url=oidc_idp.issuer, ClientIDList=["ext-app"], ThumbprintList=["0" * 40])[
        "OpenIDConnectProviderArn"
    ]
    assert arn.endswith(f":oidc-provider/{oidc_idp.name}")
    pool_id = ci.create_identity_pool(
        IdentityPoolName="oidc logins",
        AllowUnauthenticatedIdentities=False,
        AllowClassicFlow=True,
        OpenIdConnectProviderARNs=[arn],
    )["IdentityPoolId"]
    role = iam.create_role(RoleName="oidc-users", AssumeRolePolicyDocument=trust(pool_id, "authenticated"))["Role"]
    ci.set_identity_pool_roles(IdentityPoolId=pool_id, Roles={"authenticated": role["Arn"]})
    logins = {oidc_idp.name: oidc_idp.token()}
    identity = public_ci.get_id(IdentityPoolId=pool_id, Logins=logins)["IdentityId"]
    assert public_ci.get_id(IdentityPoolId=pool_id, Logins={oidc_idp.name: oidc_idp.token()})["IdentityId"] == identity
    assert ci.describe_identity(IdentityId=identity)["Logins"] == [oidc_idp.name]
    token = public_ci.get_open_id_token(IdentityId=identity, Logins=logins)["Token"]
    assert claims_of(token)["amr"] == ["authenticated", oidc_idp.name, f"{oidc_idp.name}:ext-user-1"]
    credentials = public_ci.get_credentials_for_identity(IdentityId=identity, Logins=logins)["Credentials"]
    assert caller(gatehouse, credentials)["Arn"].endswith("/oidc-users/CognitoIdentityCredentials")
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    refused = {
        "another audience": oidc_idp.token(aud="not-a-client"),
        "expired": oidc_idp.token(iat=int(time.time()) - 7200, exp=int(time.time()) - 3600),
        "another key": oidc_idp.token(key=other_key),
    }
    before = identity_count(ci, pool_id)
    for name, bad in refused.items():
        code, message, _ = error_of(
            lambda bad=bad: public_ci.get_id(IdentityPoolId=pool_id, Logins={oidc_idp.name: bad})
        )
        assert code == "NotAuthorizedException" and message.startswith("Invalid login token."), name
    assert identity_count(ci, pool_id) == before


def verify_session(gatehouse: GatehouseServer, credentials: dict[str, Any], **ask: Any) -> dict[str, Any]:
    """What ``POST /gatehouse/verify`` says about a request signed with the credentials."""
    url = "https://files.example.com/photos/a.jpg"
    request = AWSRequest(method="GET", url=url)
    SigV4Auth(
        BotoCredentials(credentials["AccessKeyId"], credentials["SecretKey"], credentials["SessionToken"]), "s3", REGION
    ).add_auth(request)
    # The signature covers the host, which AWSRequest leaves out of its headers until it is sent.
    headers = {"Host": "files.example.com", **dict(request.headers.items())}
    question = {"method": "GET", "url": url, "headers": headers, "body": "", **ask}
    http_request = urllib.request.Request(
        gatehouse.url + "/gatehouse/verify",
        data=json.dumps(question).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(http_request, timeout=5) as response:
        answer = json.loads(response.read())
    assert isinstance(answer, dict)
    return answer


def test_principal_tags_become_session_tags(
    gatehouse: GatehouseServer, idp: Any, ci: Any, iam: Any, public_ci: Any, users: UserPool
) -> None:
    pool_id = ci.create_identity_pool(
        IdentityPoolName="tagged sessions",
        AllowUnauthenticatedIdentities=False,
        CognitoIdentityProviders=[provider(users)],
    )["IdentityPoolId"]
    tagging = iam.create_role(RoleName="tagged", AssumeRolePolicyDocument=trust(pool_id, "authenticated"))["Role"]
    ci.set_identity_pool_roles(IdentityPoolId=pool_id, Roles={"authenticated": tagging["Arn"]})
    ci.set_principal_tag_attribute_map(
        IdentityPoolId=pool_id,
        IdentityProviderName=users.key,
        UseDefaults=True,
        PrincipalTags={"who": "cognito:username"},
    )
    logins = {users.key: id_token(idp, users, "max")}
    sub = claims_of(logins[users.key])["sub"]
    credentials = credentials_for(public_ci, pool_id, logins)
    principal = verify_session(gatehouse, credentials)["Principal"]
    assert principal["PrincipalTags"] == {"username": sub, "client": users.client_id, "who": "max"}
    assert principal["IdentityId"] == public_ci.get_id(IdentityPoolId=pool_id, Logins=logins)["IdentityId"]
    # A role whose trust policy does not allow sts:TagSession cannot take tagged sessions.
    untagged_trust = json.loads(trust(pool_id, "authenticated"))
    untagged_trust["Statement"][0]["Action"] = "sts:AssumeRoleWithWebIdentity"
    strict = iam.create_role(RoleName="no-tags", AssumeRolePolicyDocument=json.dumps(untagged_trust))["Role"]
    ci.set_identity_pool_roles(IdentityPoolId=pool_id, Roles={"authenticated": strict["Arn"]})
    identity = public_ci.get_id(IdentityPoolId=pool_id, Logins=logins)["IdentityId"]
    code, _, _ = error_of(lambda: public_ci.get_credentials_for_identity(IdentityId=identity, Logins=logins))
    assert code == "InvalidIdentityPoolConfigurationException"
    ci.set_principal_tag_attribute_map(IdentityPoolId=pool_id, IdentityProviderName=users.key, UseDefaults=False)
    untagged = public_ci.get_credentials_for_identity(IdentityId=identity, Logins=logins)["Credentials"]
    assert verify_session(gatehouse, untagged)["Principal"]["PrincipalTags"] == {}


def test_developer_identity_credentials(gatehouse: GatehouseServer, ci: Any, iam: Any, public_ci: Any) -> None:
    pool_id = ci.create_identity_pool(
        IdentityPoolName="developer credentials", AllowUnauthenticatedIdentities=False, DeveloperProviderName=DEVELOPER
    )["IdentityPoolId"]
    role = iam.create_role(RoleName="developer-users", AssumeRolePolicyDocument=trust(pool_id, DEVELOPER))["Role"]
    ci.set_identity_pool_roles(IdentityPoolId=pool_id, Roles={"authenticated": role["Arn"]})
    answer = ci.get_open_id_token_for_developer_identity(IdentityPoolId=pool_id, Logins={DEVELOPER: "dev-user-9"})
    credentials = public_ci.get_credentials_for_identity(
        IdentityId=answer["IdentityId"], Logins={"cognito-identity.amazonaws.com": answer["Token"]}
    )["Credentials"]
    assert caller(gatehouse, credentials)["Arn"].endswith("/developer-users/CognitoIdentityCredentials")
    # The identity issuer's own name (its issuer without the scheme) works as the login key too.
    own_name = f"127.0.0.1:{gatehouse.port}/identity"
    again = public_ci.get_credentials_for_identity(IdentityId=answer["IdentityId"], Logins={own_name: answer["Token"]})
    assert again["IdentityId"] == answer["IdentityId"]
    # A token of another identity pool does not open this one's identities.
    other = ci.get_open_id_token_for_developer_identity(IdentityPoolId=pool_id, Logins={DEVELOPER: "dev-user-10"})
    code, _, _ = error_of(
        lambda: public_ci.get_credentials_for_identity(
            IdentityId=answer["IdentityId"], Logins={"cognito-identity.amazonaws.com": other["Token"]}
        )
    )
    assert code == "NotAuthorizedException"


# --- logins from an IAM SAML provider (SamlProviderARNs) ------------------------------------------------------


def saml_roles(provider_arn: str, *roles: str) -> dict[str, list[str]]:
    return {"https://aws.amazon.com/SAML/Attributes/Role": [f"{role},{provider_arn}" for role in roles]}


def test_logins_from_an_iam_saml_provider(
    gatehouse: GatehouseServer, ci: Any, iam: Any, public_ci: Any, saml_idp: FakeAwsSamlIdP
) -> None:
    provider_arn = "arn:aws:iam::000000000000:saml-provider/corp"
    if provider_arn not in [p["Arn"] for p in iam.list_saml_providers()["SAMLProviderList"]]:
        iam.create_saml_provider(Name="corp", SAMLMetadataDocument=saml_idp.metadata_xml())
    pool_id = ci.create_identity_pool(
        IdentityPoolName="saml logins", AllowUnauthenticatedIdentities=False, SamlProviderARNs=[provider_arn]
    )["IdentityPoolId"]
    arns = {
        name: iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust(pool_id, provider_arn))["Role"]["Arn"]
        for name in ("saml-staff", "saml-auditors")
    }
    one_role = {provider_arn: saml_idp.response(saml_roles(provider_arn, arns["saml-staff"]))}
    identity = public_ci.get_id(IdentityPoolId=pool_id, Logins=one_role)["IdentityId"]
    fresh = {provider_arn: saml_idp.response(saml_roles(provider_arn, arns["saml-staff"]))}
    assert public_ci.get_id(IdentityPoolId=pool_id, Logins=fresh)["IdentityId"] == identity
    assert ci.describe_identity(IdentityId=identity)["Logins"] == [provider_arn]
    # The role is the assertion's, not the pool's (which has none).
    credentials = public_ci.get_credentials_for_identity(IdentityId=identity, Logins=one_role)["Credentials"]
    assert caller(gatehouse, credentials)["Arn"].endswith("/saml-staff/CognitoIdentityCredentials")

    two_roles = {provider_arn: saml_idp.response(saml_roles(provider_arn, arns["saml-staff"], arns["saml-auditors"]))}
    code, _, _ = error_of(lambda: public_ci.get_credentials_for_identity(IdentityId=identity, Logins=two_roles))
    assert code == "InvalidParameterException"
    chosen = public_ci.get_credentials_for_identity(
        IdentityId=identity, Logins=two_roles, CustomRoleArn=arns["saml-auditors"]
    )["Credentials"]
    assert caller(gatehouse, chosen)["Arn"].endswith("/saml-auditors/CognitoIdentityCredentials")
    code, _, _ = error_of(
        lambda: public_ci.get_credentials_for_identity(
            IdentityId=identity, Logins=one_role, CustomRoleArn=arns["saml-auditors"]
        )
    )
    assert code == "NotAuthorizedException"

    before = identity_count(ci, pool_id)
    stranger = FakeAwsSamlIdP(entity_id="https://idp.corp.example/saml")
    refused = {
        "tampered": tamper(one_role[provider_arn], "ann@corp.example", "eve@corp.example"),
        "signed by another key": saml_idp.response(saml_roles(provider_arn, arns["saml-staff"]), signer=stranger),
        "expired": saml_idp.response(saml_roles(provider_arn, arns["saml-staff"]), lifetime=-120),
        "for another audience": saml_idp.response(saml_roles(provider_arn, arns["saml-staff"]), audience="urn:x"),
        "not SAML": "bm90IHNhbWw=",
    }
    for name, bad in refused.items():
        code, message, _ = error_of(
            lambda bad=bad: public_ci.get_id(IdentityPoolId=pool_id, Logins={provider_arn: bad})
        )
        assert code == "NotAuthorizedException" and message.startswith("Invalid login token."), (name, message)
    assert identity_count(ci, pool_id) == before
