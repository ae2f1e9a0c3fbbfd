"""The AWS SDK for JavaScript v3 in a Node back end against Gatehouse, unchanged but for its endpoint.

One node process per module (tests/e2e/js/aws_sdk_driver.js) runs ``@aws-sdk/client-cognito-identity-provider``,
``@aws-sdk/client-sts`` and ``@aws-sdk/credential-providers`` one call at a time; the test checks with boto3, the
pool's JWKS and ``POST /gatehouse/verify`` what the calls did. Covered:

* cognito-idp signed by the SDK's own SigV4 signer with the admin credentials: CreateUserPool with a custom
  attribute, CreateUserPoolClient, AdminCreateUser, AdminGetUser (dates arrive as JS ``Date`` objects, the
  custom attribute is there), a non-ASCII attribute value and a ListUsers filter on it, groups, the SDK's
  paginators (``paginateListUsers``, ``paginateListUserPools``, ``paginateListGroups``,
  ``paginateAdminListGroupsForUser``) over several pages, AdminInitiateAuth;
* the user operations a client without credentials sends unsigned, as an app in a browser does: InitiateAuth
  USER_PASSWORD_AUTH, GetUser, REFRESH_TOKEN_AUTH, GetTokensFromRefreshToken, GlobalSignOut, after which the
  tokens are refused;
* errors as the SDK's own exception classes (``instanceof NotAuthorizedException``, ``UserNotFoundException``,
  ``ResourceNotFoundException``, ``InvalidParameterException``) with Cognito's messages and HTTP status in
  ``$metadata``; a wrong secret key (InvalidSignatureException), an unknown key (UnrecognizedClientException)
  and no signature at all (MissingAuthenticationTokenException), each 403 and changing nothing; a signature
  from a clock an hour behind, refused so that the SDK corrects its clock and retries;
* STS: the web-identity credential providers ``fromTokenFile`` (AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE and
  AWS_ENDPOINT_URL_STS, or the provider's ``clientConfig.endpoint``), ``fromWebToken``, the SDK's default
  credential chain from the same environment, and AssumeRoleWithWebIdentityCommand itself; GetCallerIdentity
  signed with the credentials names the assumed role Gatehouse issued, and Gatehouse's verifier accepts them
  within the role's policy (narrowed by a session policy the SDK sends). Hostile: a forged secret key
  (SignatureDoesNotMatch), a web-identity session calling a cognito-idp admin operation its role does not allow
  (AccessDeniedException; one it allows goes through), a tampered token
  (InvalidIdentityTokenException) and a role whose trust policy does not name the token's audience
  (AccessDenied) reach the SDK as STS's and Cognito's errors.

``fromCognitoIdentityPool`` is covered by tests/e2e/test_identity_js.py.
"""

from __future__ import annotations

import base64
import json
import pathlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.e2e.aws_support import ACCOUNT, oidc_trust
from tests.e2e.node_driver import NodeDriver, js_modules
from tests.support import ADMIN_KEY_ID, ADMIN_SECRET, REGION, GatehouseServer

DRIVER = pathlib.Path(__file__).resolve().parent / "js" / "aws_sdk_driver.js"
PACKAGES = ("client-cognito-identity-provider", "client-sts", "credential-providers", "nested-clients")
PASSWORD = "Correct-horse-1"
ADMIN = {"accessKeyId": ADMIN_KEY_ID, "secretAccessKey": ADMIN_SECRET}


class SdkJs(NodeDriver):
    """One node process running the SDK; :meth:`call` sends it one request and returns its answer."""

    def __init__(self, log_dir: pathlib.Path, url: str) -> None:
        # (The SDK's NodeVersionSupportWarning lands in the stderr file.)
        modules = js_modules(*(f"@aws-sdk/{name}" for name in PACKAGES))
        super().__init__(DRIVER, modules, log_dir / "aws-sdk-js-stderr.txt", timeout=30)
        self.url = url

    def call(self, op: str, **request: Any) -> dict[str, Any]:
        return self.request({"op": op, "endpoint": self.url, **request})

    def send(
        self,
        command: str,
        request: dict[str, Any],
        *,
        service: str = "idp",
        credentials: Any = ADMIN,
        options: dict[str, Any] | None = None,
    ) -> Any:
        """One command's answer (``credentials``: see the driver, None sends it without any; ``options``: more
        client configuration)."""
        return self.call(
            "send", service=service, command=command, input=request, credentials=credentials, options=options or {}
        )

    def ok(self, command: str, request: dict[str, Any], **options: Any) -> Any:
        """The output of a command that must succeed."""
        answer = self.send(command, request, **options)
        assert answer["ok"] is True, (command, answer)
        assert answer["result"]["$status"] == 200 and answer["result"]["$requestId"], answer
        return answer["result"]

    def pages(self, paginator: str, request: dict[str, Any], page_size: int) -> list[dict[str, Any]]:
        answer = self.call(
            "paginate", service="idp", paginator=paginator, input=request, pageSize=page_size, credentials=ADMIN
        )
        assert answer["ok"] is True, (paginator, answer)
        pages: list[dict[str, Any]] = answer["result"]
        return pages


@pytest.fixture(scope="module")
def sdk(tmp_path_factory: pytest.TempPathFactory, gatehouse: GatehouseServer) -> Iterator[SdkJs]:
    driver = SdkJs(tmp_path_factory.mktemp("aws-sdk-js"), gatehouse.url)
    yield driver
    driver.close()


@pytest.fixture(scope="module")
def app(idp: Any, gatehouse: GatehouseServer) -> dict[str, str]:
    """A pool with a custom attribute, a public app client and one confirmed user, made with boto3."""
    schema = [{"Name": "tier", "AttributeDataType": "String", "Mutable": True}]
    pool_id = idp.create_user_pool(PoolName="sdk-js-app", Schema=schema)["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="web",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username="bob",
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": "custom:tier", "Value": "silver"}],
    )
    idp.admin_set_user_password(UserPoolId=pool_id, Username="bob", Password=PASSWORD, Permanent=True)
    return {"pool_id": pool_id, "client_id": client_id, "provider": f"127.0.0.1:{gatehouse.port}/{pool_id}"}


def js_date(value: Any) -> datetime:
    """A value the SDK handed over as a JS Date (the driver sends those as {"$date": ISO string})."""
    assert isinstance(value, dict) and set(value) == {"$date"}, value
    return datetime.fromisoformat(value["$date"])


def attributes(user: dict[str, Any], key: str = "UserAttributes") -> dict[str, str]:
    return {a["Name"]: a["Value"] for a in user[key]}


def assert_refused(
    answer: dict[str, Any],
    name: str,
    status: int,
    message: str | None = None,
    *,
    service: str = "idp",
    modeled: bool = True,
) -> None:
    """``answer`` is the SDK's exception ``name`` with the HTTP status in its $metadata: an instance of the
    service exception of ``service``'s package and, where the service's model names the error, of its class."""
    assert answer["ok"] is False, answer
    assert (answer["name"], answer["status"], answer["fault"]) == (name, status, "client"), answer
    assert answer["requestId"], answer  # from x-amzn-RequestId, or STS's <RequestId>
    if message is not None:
        assert answer["message"] == message, answer
    base = "CognitoIdentityProviderServiceException" if service == "idp" else "STSServiceException"
    assert f"{service}.{base}" in answer["classes"], answer
    if modeled:
        assert f"{service}.{name}" in answer["classes"], answer


# --- cognito-idp, signed by the SDK ---------------------------------------------------------------------------


def test_admin_operations_signed_by_the_sdk(sdk: SdkJs, idp: Any, gatehouse: GatehouseServer) -> None:
    started = datetime.now(UTC)
    schema = [{"Name": "tier", "AttributeDataType": "String", "Mutable": True}]
    created = sdk.ok("CreateUserPool", {"PoolName": "sdk-js", "Schema": schema})["UserPool"]
    pool_id = created["Id"]
    assert abs(js_date(created["CreationDate"]) - started) < timedelta(minutes=1)
    assert "custom:tier" in [a["Name"] for a in created["SchemaAttributes"]]
    assert idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]["Name"] == "sdk-js"

    flows = ["ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    client = sdk.ok(
        "CreateUserPoolClient", {"UserPoolId": pool_id, "ClientName": "back end", "ExplicitAuthFlows": flows}
    )["UserPoolClient"]
    client_id = client["ClientId"]
    assert sorted(client["ExplicitAuthFlows"]) == flows and "ClientSecret" not in client

    new_user = sdk.ok(
        "AdminCreateUser",
        {
            "UserPoolId": pool_id,
            "Username": "ada",
            "MessageAction": "SUPPRESS",
            "UserAttributes": [
                {"Name": "email", "Value": "ada@sdk.example"},
                {"Name": "email_verified", "Value": "true"},
                {"Name": "custom:tier", "Value": "gold"},
            ],
        },
    )["User"]
    assert (new_user["Username"], new_user["UserStatus"]) == ("ada", "FORCE_CHANGE_PASSWORD")
    sdk.ok("AdminSetUserPassword", {"UserPoolId": pool_id, "Username": "ada", "Password": PASSWORD, "Permanent": True})

    user = sdk.ok("AdminGetUser", {"UserPoolId": pool_id, "Username": "ada"})
    assert (user["Username"], user["UserStatus"], user["Enabled"]) == ("ada", "CONFIRMED", True)
    created_at, modified_at = js_date(user["UserCreateDate"]), js_date(user["UserLastModifiedDate"])
    assert started - timedelta(seconds=1) <= created_at <= modified_at <= datetime.now(UTC) + timedelta(seconds=1)
    fetched = attributes(user)
    assert fetched["custom:tier"] == "gold" and fetched["email"] == "ada@sdk.example"
    assert fetched["sub"] == attributes(idp.admin_get_user(UserPoolId=pool_id, Username="ada"))["sub"]
    # A body beyond ASCII, and characters that URI and form encodings treat apart, under the SDK's signature.
    name = "Zoë Ada 日本 !*'()~ +&=%"
    change = [{"Name": "name", "Value": name}]
    sdk.ok("AdminUpdateUserAttributes", {"UserPoolId": pool_id, "Username": "ada", "UserAttributes": change})
    assert attributes(idp.admin_get_user(UserPoolId=pool_id, Username="ada"))["name"] == name

    # Groups, and the SDK's paginators walking several pages of each list.
    groups = ["readers", "editors", "admins"]
    for precedence, group in enumerate(groups):
        made = sdk.ok("CreateGroup", {"UserPoolId": pool_id, "GroupName": group, "Precedence": precedence})["Group"]
        assert made["GroupName"] == group and js_date(made["CreationDate"]) >= started - timedelta(seconds=1)
        sdk.ok("AdminAddUserToGroup", {"UserPoolId": pool_id, "Username": "ada", "GroupName": group})
    pages = sdk.pages("paginateListGroups", {"UserPoolId": pool_id}, 2)
    assert [len(page["Groups"]) for page in pages] == [2, 1]
    assert sorted(g["GroupName"] for page in pages for g in page["Groups"]) == sorted(groups)
    pages = sdk.pages("paginateAdminListGroupsForUser", {"UserPoolId": pool_id, "Username": "ada"}, 1)
    assert [len(page["Groups"]) for page in pages] == [1, 1, 1]
    assert sorted(g["GroupName"] for page in pages for g in page["Groups"]) == sorted(groups)
    in_group = idp.list_users_in_group(UserPoolId=pool_id, GroupName="admins")["Users"]
    assert [u["Username"] for u in in_group] == ["ada"]

    usernames = ["ada"] + [f"user-{n}" for n in range(4)]
    for username in usernames[1:]:
        sdk.ok("AdminCreateUser", {"UserPoolId": pool_id, "Username": username, "MessageAction": "SUPPRESS"})
    pages = sdk.pages("paginateListUsers", {"UserPoolId": pool_id}, 2)
    assert [len(page["Users"]) for page in pages] == [2, 2, 1]
    assert all("PaginationToken" in page for page in pages[:-1]) and "PaginationToken" not in pages[-1]
    listed = [u["Username"] for page in pages for u in page["Users"]]
    assert sorted(listed) == sorted(usernames)  # each user once
    assert all(isinstance(js_date(u["UserCreateDate"]), datetime) for page in pages for u in page["Users"])
    filtered = sdk.ok("ListUsers", {"UserPoolId": pool_id, "Filter": 'name ^= "Zoë"'})["Users"]
    assert [(u["Username"], attributes(u, "Attributes")["name"]) for u in filtered] == [("ada", name)]

    for n in range(2):
        sdk.ok("CreateUserPool", {"PoolName": f"sdk-js-{n}"})
    every_pool = {
        pool["Id"]
        for page in idp.get_paginator("list_user_pools").paginate(MaxResults=60)
        for pool in page["UserPools"]
    }
    assert len(every_pool) >= 3
    pages = sdk.pages("paginateListUserPools", {}, 2)
    assert all(len(page["UserPools"]) <= 2 for page in pages) and len(pages) == (len(every_pool) + 1) // 2
    sdk_pools = [pool["Id"] for page in pages for pool in page["UserPools"]]
    assert sorted(sdk_pools) == sorted(every_pool)

    signed_in = sdk.ok(
        "AdminInitiateAuth",
        {
            "UserPoolId": pool_id,
            "ClientId": client_id,
            "AuthFlow": "ADMIN_USER_PASSWORD_AUTH",
            "AuthParameters": {"USERNAME": "ada", "PASSWORD": PASSWORD},
        },
    )["AuthenticationResult"]
    assert (signed_in["TokenType"], signed_in["ExpiresIn"]) == ("Bearer", 3600)
    keys = jwt.PyJWKClient(f"{gatehouse.url}/{pool_id}/.well-known/jwks.json")
    token = signed_in["IdToken"]
    claims = jwt.decode(
        token,
        keys.get_signing_key_from_jwt(token).key,
        algorithms=["RS256"],
        audience=client_id,
        issuer=f"{gatehouse.url}/{pool_id}",
    )
    assert claims["custom:tier"] == "gold" and claims["sub"] == fetched["sub"]
    assert sorted(claims["cognito:groups"]) == sorted(groups)


def test_user_operations_go_unsigned(sdk: SdkJs, app: dict[str, str]) -> None:
    public = {"credentials": None}
    signed_in = sdk.ok(
        "InitiateAuth",
        {
            "ClientId": app["client_id"],
            "AuthFlow": "USER_PASSWORD_AUTH",
            "AuthParameters": {"USERNAME": "bob", "PASSWORD": PASSWORD},
        },
        **public,
    )["AuthenticationResult"]
    me = sdk.ok("GetUser", {"AccessToken": signed_in["AccessToken"]}, **public)
    assert me["Username"] == "bob" and attributes(me)["custom:tier"] == "silver"

    refreshed = sdk.ok(
        "InitiateAuth",
        {
            "ClientId": app["client_id"],
            "AuthFlow": "REFRESH_TOKEN_AUTH",
            "AuthParameters": {"REFRESH_TOKEN": signed_in["RefreshToken"]},
        },
        **public,
    )["AuthenticationResult"]
    assert "RefreshToken" not in refreshed and refreshed["AccessToken"] != signed_in["AccessToken"]
    assert sdk.ok("GetUser", {"AccessToken": refreshed["AccessToken"]}, **public)["Username"] == "bob"
    by_api = sdk.ok(
        "GetTokensFromRefreshToken",
        {"ClientId": app["client_id"], "RefreshToken": signed_in["RefreshToken"]},
        **public,
    )["AuthenticationResult"]
    assert sdk.ok("GetUser", {"AccessToken": by_api["AccessToken"]}, **public)["Username"] == "bob"

    sdk.ok("GlobalSignOut", {"AccessToken": refreshed["AccessToken"]}, **public)
    for access_token in (signed_in["AccessToken"], refreshed["AccessToken"], by_api["AccessToken"]):
        refused = sdk.send("GetUser", {"AccessToken": access_token}, **public)
        assert_refused(refused, "NotAuthorizedException", 400, "Access Token has been revoked")
    again = sdk.send(
        "InitiateAuth",
        {
            "ClientId": app["client_id"],
            "AuthFlow": "REFRESH_TOKEN_AUTH",
            "AuthParameters": {"REFRESH_TOKEN": signed_in["RefreshToken"]},
        },
        **public,
    )
    assert_refused(again, "NotAuthorizedException", 400)

    # That client has no credentials at all: an operation that needs a signature never leaves the SDK.
    local = sdk.send("AdminGetUser", {"UserPoolId": app["pool_id"], "Username": "bob"}, **public)
    assert (local["ok"], local["status"], local["classes"]) == (False, None, [])
    assert "no credentials" in local["message"]


# --- errors ---------------------------------------------------------------------------------------------------


def test_errors_are_the_sdks_exception_classes(sdk: SdkJs, idp: Any, app: dict[str, str]) -> None:
    pool_id = app["pool_id"]
    wrong_password = sdk.send(
        "InitiateAuth",
        {
            "ClientId": app["client_id"],
            "AuthFlow": "USER_PASSWORD_AUTH",
            "AuthParameters": {"USERNAME": "bob", "PASSWORD": "Not-the-password-1"},
        },
        credentials=None,
    )
    assert_refused(wrong_password, "NotAuthorizedException", 400, "Incorrect username or password.")

    nobody = sdk.send("AdminGetUser", {"UserPoolId": pool_id, "Username": "nobody"})
    assert_refused(nobody, "UserNotFoundException", 400, "User does not exist.")
    no_pool = f"{REGION}_000000000"
    missing = sdk.send("AdminGetUser", {"UserPoolId": no_pool, "Username": "bob"})
    assert_refused(missing, "ResourceNotFoundException", 400, f"User pool {no_pool} does not exist.")
    unknown_attribute = sdk.send(
        "AdminUpdateUserAttributes",
        {"UserPoolId": pool_id, "Username": "bob", "UserAttributes": [{"Name": "custom:nope", "Value": "x"}]},
    )
    assert_refused(unknown_attribute, "InvalidParameterException", 400)
    assert unknown_attribute["message"] == "Attribute does not exist in the schema: custom:nope"

    # Hostile signatures: each is refused before the operation runs.
    change = {"UserPoolId": pool_id, "Username": "bob", "UserAttributes": [{"Name": "custom:tier", "Value": "gold"}]}
    wrong_secret = {**ADMIN, "secretAccessKey": "not-" + ADMIN_SECRET}
    unknown_key = {"accessKeyId": "AKIDNOSUCHKEY0000000", "secretAccessKey": ADMIN_SECRET}
    refusals = {
        "InvalidSignatureException": wrong_secret,
        "UnrecognizedClientException": unknown_key,
        "MissingAuthenticationTokenException": "noSignature",
    }
    for name, credentials in refusals.items():
        for command, request in (
            ("AdminUpdateUserAttributes", change),
            ("AdminDeleteUser", {"UserPoolId": pool_id, "Username": "bob"}),
        ):
            refused = sdk.send(command, request, credentials=credentials)
            assert_refused(refused, name, 403, modeled=False)
    assert attributes(idp.admin_get_user(UserPoolId=pool_id, Username="bob"))["custom:tier"] == "silver"
    # Nor did any refusal above touch bob's sign-in.
    assert idp.admin_get_user(UserPoolId=pool_id, Username="bob")["UserStatus"] == "CONFIRMED"


def test_the_sdk_corrects_its_clock_from_gatehouses_answer(sdk: SdkJs, app: dict[str, str]) -> None:
    """A back end whose clock is an hour behind: Gatehouse refuses the stale signature as AWS does ("Signature
    expired", with a Date header), and the SDK corrects its clock offset from that answer and retries."""
    request = {"UserPoolId": app["pool_id"], "Username": "bob"}
    behind = {"systemClockOffset": -3_600_000}
    stale = sdk.send("AdminGetUser", request, options=behind)
    assert_refused(stale, "InvalidSignatureException", 403, modeled=False)
    assert stale["message"].startswith("Signature expired: ")
    corrected = sdk.send("AdminGetUser", request, options={**behind, "maxAttempts": 2})
    assert corrected["ok"] is True, corrected
    assert corrected["result"]["$attempts"] == 2 and abs(corrected["result"]["$clockOffset"]) < 60_000


# --- STS and the web-identity credential providers -------------------------------------------------------------

FILES_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::sdk-js-files/*"}],
}


@pytest.fixture(scope="module")
def role(iam: Any, app: dict[str, str]) -> str:
    """A role that the app client's ID tokens may assume, allowed to read one bucket: its ARN."""
    arn = iam.create_role(
        RoleName="sdk-js-back-end", AssumeRolePolicyDocument=oidc_trust(app["provider"], app["client_id"])
    )["Role"]["Arn"]
    iam.put_role_policy(RoleName="sdk-js-back-end", PolicyName="files", PolicyDocument=json.dumps(FILES_POLICY))
    return str(arn)


def id_token(public_idp: Any, app: dict[str, str]) -> str:
    result = public_idp.initiate_auth(
        ClientId=app["client_id"],
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "bob", "PASSWORD": PASSWORD},
    )["AuthenticationResult"]
    return str(result["IdToken"])


def verify(gatehouse: GatehouseServer, credentials: dict[str, Any], resource: str) -> tuple[int, dict[str, Any]]:
    """What Gatehouse's verifier says of an S3 GET signed with ``credentials`` (the SDK's names) for
    ``resource``: its status and answer."""
    url = "https://files.example/report.pdf"
    request = AWSRequest(method="GET", url=url)
    key = Credentials(credentials["accessKeyId"], credentials["secretAccessKey"], credentials["sessionToken"])
    SigV4Auth(key, "s3", REGION).add_auth(request)
    headers = {"Host": "files.example", **dict(request.headers.items())}
    question = {"method": "GET", "url": url, "headers": headers, "body": "", "action": "s3:GetObject"}
    answer = requests.post(f"{gatehouse.url}/gatehouse/verify", json={**question, "resource": resource}, timeout=10)
    result: dict[str, Any] = answer.json()
    return answer.status_code, result


def check_session(gatehouse: GatehouseServer, got: dict[str, Any], session_name: str) -> None:
    """The provider's credentials are Gatehouse's, for the role, and sign GetCallerIdentity and S3 requests."""
    credentials, caller = got["credentials"], got["caller"]
    assert credentials["accessKeyId"].startswith("ASIA") and credentials["sessionToken"]
    lifetime = js_date(credentials["expiration"]) - datetime.now(UTC)
    assert timedelta(minutes=55) < lifetime <= timedelta(hours=1)
    arn = f"arn:aws:sts::{ACCOUNT}:assumed-role/sdk-js-back-end/{session_name}"
    assert (caller["Arn"], caller["Account"], caller["$status"]) == (arn, ACCOUNT, 200)
    status, allowed = verify(gatehouse, credentials, "arn:aws:s3:::sdk-js-files/report.pdf")
    assert (status, allowed["Allowed"], allowed["Principal"]["Arn"]) == (200, True, arn)
    status, other = verify(gatehouse, credentials, "arn:aws:s3:::other-bucket/report.pdf")
    assert (status, other["Allowed"]) == (200, False)
    forged = {**credentials, "secretAccessKey": "x" * 40}
    status, refused = verify(gatehouse, forged, "arn:aws:s3:::sdk-js-files/report.pdf")
    assert (status, refused["__type"]) == (403, "SignatureDoesNotMatch")


def test_web_identity_token_file(
    sdk: SdkJs, gatehouse: GatehouseServer, public_idp: Any, app: dict[str, str], role: str, tmp_path: pathlib.Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(id_token(public_idp, app))
    env = {
        "AWS_ROLE_ARN": role,
        "AWS_WEB_IDENTITY_TOKEN_FILE": str(token_file),
        "AWS_ROLE_SESSION_NAME": "from-token-file",
        "AWS_REGION": REGION,
    }
    # The STS endpoint from the environment, as a container's settings give it...
    got = sdk.call("webIdentity", provider="fromTokenFile", init={}, env={**env, "AWS_ENDPOINT_URL_STS": sdk.url})
    assert got["ok"] is True, got
    check_session(gatehouse, got["result"], "from-token-file")
    # ... or from the provider's own client configuration.
    init = {"clientConfig": {"endpoint": sdk.url, "region": REGION}, "roleSessionName": "configured"}
    unset: dict[str, str | None] = {"AWS_ENDPOINT_URL_STS": None, "AWS_ENDPOINT_URL": None}
    got = sdk.call("webIdentity", provider="fromTokenFile", init=init, env={**env, **unset})
    assert got["ok"] is True, got
    check_session(gatehouse, got["result"], "configured")

    # The SDK's default credential chain finds the same settings by itself (no other credentials around).
    chain_env: dict[str, str | None] = {
        **env,
        "AWS_ENDPOINT_URL_STS": sdk.url,
        "AWS_ROLE_SESSION_NAME": "default-chain",
        "AWS_ACCESS_KEY_ID": None,
        "AWS_SECRET_ACCESS_KEY": None,
        "AWS_SESSION_TOKEN": None,
        "AWS_PROFILE": None,
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
    }
    got = sdk.call("defaultChain", env=chain_env)
    assert got["ok"] is True, got
    check_session(gatehouse, got["result"], "default-chain")


def test_web_token_and_assume_role_with_web_identity(
    sdk: SdkJs, gatehouse: GatehouseServer, iam: Any, public_idp: Any, app: dict[str, str], role: str
) -> None:
    token = id_token(public_idp, app)
    init = {
        "roleArn": role,
        "webIdentityToken": token,
        "roleSessionName": "from-web-token",
        "clientConfig": {"endpoint": sdk.url, "region": REGION},
    }
    got = sdk.call("webIdentity", provider="fromWebToken", init=init)
    assert got["ok"] is True, got
    check_session(gatehouse, got["result"], "from-web-token")

    # A session policy (JSON in the form body) and a session name with every punctuation mark STS allows.
    narrow = {
        **FILES_POLICY,
        "Statement": [{**FILES_POLICY["Statement"][0], "Resource": "arn:aws:s3:::sdk-js-files/pub/*"}],
    }
    init = {**init, "roleSessionName": "a=b,c.d@e-f_g+h", "policy": json.dumps(narrow), "durationSeconds": 900}
    got = sdk.call("webIdentity", provider="fromWebToken", init=init)
    assert got["ok"] is True, got
    narrowed = got["result"]["credentials"]
    assert got["result"]["caller"]["Arn"].endswith("/sdk-js-back-end/a=b,c.d@e-f_g+h")
    status, answer = verify(gatehouse, narrowed, "arn:aws:s3:::sdk-js-files/pub/report.pdf")
    assert (status, answer["Allowed"]) == (200, True)
    status, answer = verify(gatehouse, narrowed, "arn:aws:s3:::sdk-js-files/report.pdf")
    assert (status, answer["Allowed"]) == (200, False)  # the role allows it; the session policy does not

    # The STS client's own command, sent unsigned as the SDK's model says, and its answer's shapes.
    assumed = sdk.ok(
        "AssumeRoleWithWebIdentity",
        {"RoleArn": role, "RoleSessionName": "direct", "WebIdentityToken": token, "DurationSeconds": 900},
        service="sts",
        credentials=None,
    )
    sub = jwt.decode(token, options={"verify_signature": False})["sub"]
    assert assumed["SubjectFromWebIdentityToken"] == sub and assumed["Audience"] == app["client_id"]
    assert assumed["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/sdk-js-back-end/direct"
    issued = assumed["Credentials"]
    lifetime = js_date(issued["Expiration"]) - datetime.now(UTC)
    assert timedelta(minutes=14) < lifetime <= timedelta(minutes=15)
    session = {
        "accessKeyId": issued["AccessKeyId"],
        "secretAccessKey": issued["SecretAccessKey"],
        "sessionToken": issued["SessionToken"],
    }
    caller = sdk.ok("GetCallerIdentity", {}, service="sts", credentials=session)
    assert caller["Arn"] == assumed["AssumedRoleUser"]["Arn"]
    forged = sdk.send("GetCallerIdentity", {}, service="sts", credentials={**session, "secretAccessKey": "x" * 40})
    assert_refused(forged, "SignatureDoesNotMatch", 403, service="sts", modeled=False)
    # cognito-idp's admin operations take the session for what its role allows: reading files alone, nothing.
    bob = {"UserPoolId": app["pool_id"], "Username": "bob"}
    as_admin = sdk.send("AdminDeleteUser", bob, credentials=session)
    arn = f"arn:aws:cognito-idp:{REGION}:{ACCOUNT}:userpool/{app['pool_id']}"
    denied = (
        f"User: {assumed['AssumedRoleUser']['Arn']} is not authorized to perform: cognito-idp:AdminDeleteUser on "
        f"resource: {arn} because no identity-based policy allows the cognito-idp:AdminDeleteUser action"
    )
    assert_refused(as_admin, "AccessDeniedException", 400, denied, modeled=False)
    assert sdk.ok("AdminGetUser", bob)["Username"] == "bob"
    # Once the role may read the pool's users, the same session may; deleting them stays refused.
    reading = {"Effect": "Allow", "Action": "cognito-idp:AdminGetUser", "Resource": arn}
    iam.put_role_policy(RoleName="sdk-js-back-end", PolicyName="users",
                        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [reading]}))  # fmt: skip
    try:
        assert sdk.ok("AdminGetUser", bob, credentials=session)["Username"] == "bob"
        assert_refused(sdk.send("AdminDeleteUser", bob, credentials=session), "AccessDeniedException", 400,
                       modeled=False)  # fmt: skip
    finally:
        iam.delete_role_policy(RoleName="sdk-js-back-end", PolicyName="users")


def test_sts_refusals_reach_the_sdk(
    sdk: SdkJs, iam: Any, public_idp: Any, app: dict[str, str], role: str, tmp_path: pathlib.Path
) -> None:
    token = id_token(public_idp, app)
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "someone-else"
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    tampered = f"{header}.{forged_payload}.{signature}"
    config = {"endpoint": sdk.url, "region": REGION}

    refused = sdk.call(
        "webIdentity",
        provider="fromWebToken",
        init={"roleArn": role, "webIdentityToken": tampered, "roleSessionName": "s1", "clientConfig": config},
    )
    assert_refused(refused, "InvalidIdentityTokenException", 400, service="nestedSts")
    direct = sdk.send(
        "AssumeRoleWithWebIdentity",
        {"RoleArn": role, "RoleSessionName": "s1", "WebIdentityToken": tampered},
        service="sts",
        credentials=None,
    )
    assert_refused(direct, "InvalidIdentityTokenException", 400, service="sts")

    # A role whose trust policy names another app's audience.
    other = iam.create_role(
        RoleName="sdk-js-other-app", AssumeRolePolicyDocument=oidc_trust(app["provider"], "another-app")
    )["Role"]["Arn"]
    token_file = tmp_path / "token"
    token_file.write_text(token)
    env = {
        "AWS_ROLE_ARN": other,
        "AWS_WEB_IDENTITY_TOKEN_FILE": str(token_file),
        "AWS_ENDPOINT_URL_STS": sdk.url,
        "AWS_REGION": REGION,
    }
    denied = sdk.call("webIdentity", provider="fromTokenFile", init={}, env=env)
    message = "Not authorized to perform sts:AssumeRoleWithWebIdentity"
    assert_refused(denied, "AccessDenied", 403, message, service="nestedSts", modeled=False)
    direct = sdk.send(
        "AssumeRoleWithWebIdentity",
        {"RoleArn": other, "RoleSessionName": "s1", "WebIdentityToken": token},
        service="sts",
        credentials=None,
    )
    assert_refused(direct, "AccessDenied", 403, message, service="sts", modeled=False)
