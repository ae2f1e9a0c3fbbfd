"""Sign-in security under attack, against one real server behind a trusted proxy (127.0.0.1 is configured as
one, so the tests' X-Forwarded-For headers are believed as a reverse proxy's would be): blocked address ranges
hold for the hosted login page as for the API, and for an IPv4 address written in its IPv4-mapped IPv6 form."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
import requests
from botocore.exceptions import ClientError

from tests.e2e.aws_support import oidc_trust, signed_in_user
from tests.e2e.oauth_support import CALLBACK, Browser, make_pool, make_user, pkce_pair, query_of
from tests.e2e.test_devices import confirm, device_proof
from tests.support import GatehouseServer, MailServer

PASSWORD = "Correct-Horse-9"
SECURITY = ("NotAuthorizedException", "Unable to login because of security reasons.")
BLOCKED = "203.0.113.0/24"
CONFIG_POOL = "us-east-1_ProxyCtx001"
FLOWS = ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]


@pytest.fixture(scope="module")
def gatehouse(tmp_path_factory: pytest.TempPathFactory, mail: MailServer) -> Iterator[GatehouseServer]:
    data_dir: Path = tmp_path_factory.mktemp("sign-in-proxy") / "data"
    config = f"""version: 1
server:
  smtp:
    host: 127.0.0.1
    port: {mail.port}
  rate_limits:
    trusted_proxies: [127.0.0.1/32]
pools:
  - id: {CONFIG_POOL}
    name: propagating
    threat_protection:
      mode: ENFORCED
      risk:
        RiskExceptionConfiguration: {{BlockedIPRangeList: ["{BLOCKED}"]}}
    clients:
      - id: propagatingspa
        name: spa
        explicit_auth_flows: [ALLOW_USER_PASSWORD_AUTH, ALLOW_REFRESH_TOKEN_AUTH]
        cognito:
          EnablePropagateAdditionalUserContextData: true
    users:
      - username: oscar
        password: "{PASSWORD}"
"""
    server = GatehouseServer(data_dir, config=config)
    server.start()
    yield server
    server.stop()


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = exc.value.response["Error"]
    return str(error["Code"]), str(error.get("Message", ""))


def raw_call(server: GatehouseServer, operation: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any]:
    answer = requests.post(
        server.url + "/",
        data=json.dumps(body),
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": f"AWSCognitoIdentityProviderService.{operation}",
            **headers,
        },
        timeout=10,
    )
    return answer.status_code, answer.json()


def sign_in_events(idp: Any, pool_id: str, username: str) -> list[dict[str, Any]]:
    events = idp.admin_list_user_auth_events(UserPoolId=pool_id, Username=username)["AuthEvents"]
    return [e for e in events if e["EventType"] == "SignIn"]


# --- blocked address ranges -----------------------------------------------------------------------------------


def test_hosted_login_believes_a_trusted_proxy_as_the_api_does(gatehouse: GatehouseServer, idp: Any) -> None:
    """A BlockedIPRangeList address behind the trusted proxy is refused on the hosted login page too: the page
    must take the caller's address from X-Forwarded-For exactly as the API does, or the block is a detour away."""
    pool = make_pool(
        idp, gatehouse.url, f"proxy-{uuid.uuid4().hex[:6]}", UserPoolAddOns={"AdvancedSecurityMode": "ENFORCED"}
    )
    idp.update_user_pool_client(
        UserPoolId=pool.pool_id,
        ClientId=pool.public_id,
        ExplicitAuthFlows=FLOWS,
        AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=["openid", "email", "profile"],
        CallbackURLs=[CALLBACK],
        SupportedIdentityProviders=["COGNITO"],
    )
    idp.set_risk_configuration(UserPoolId=pool.pool_id, RiskExceptionConfiguration={"BlockedIPRangeList": [BLOCKED]})
    make_user(idp, pool.pool_id, "mallory")
    forwarded = {"X-Forwarded-For": "203.0.113.5"}

    # The API: refused with Cognito's security error.
    status, body = raw_call(
        gatehouse,
        "InitiateAuth",
        {
            "ClientId": pool.public_id,
            "AuthFlow": "USER_PASSWORD_AUTH",
            "AuthParameters": {"USERNAME": "mallory", "PASSWORD": PASSWORD},
        },
        forwarded,
    )
    assert (status, body["__type"], body["message"]) == (400, *SECURITY)

    # The hosted page, from the same address through the same proxy: no code for the app either.
    browser = Browser(gatehouse.url)
    _, challenge = pkce_pair()
    browser.http.headers.update(forwarded)
    answer = browser.sign_in(
        browser.authorize_url(pool.public_id, scope="openid", code_challenge=challenge, code_challenge_method="S256"),
        "mallory",
    )
    assert not answer.headers.get("Location", "").startswith(CALLBACK), answer.headers
    # The page words it as any refused password (it names only lockouts and disabled users).
    assert answer.status_code == 400 and "Incorrect username or password." in answer.text

    # From another address the same browser signs in: only the address was refused.
    browser.http.headers["X-Forwarded-For"] = "198.51.100.7"
    answer = browser.sign_in(
        browser.authorize_url(pool.public_id, scope="openid", code_challenge=challenge, code_challenge_method="S256"),
        "mallory",
    )
    assert answer.headers["Location"].startswith(CALLBACK) and "code" in query_of(answer.headers["Location"])
    events = sign_in_events(idp, pool.pool_id, "mallory")
    addresses = [e["EventContextData"].get("IpAddress") for e in events]
    assert addresses == ["198.51.100.7", "203.0.113.5", "203.0.113.5"]
    assert [e["EventResponse"] for e in events] == ["Pass", "Fail", "Fail"]


def test_an_ipv4_mapped_ipv6_address_is_in_its_ipv4_range(gatehouse: GatehouseServer, idp: Any) -> None:
    """``::ffff:203.0.113.5`` is 203.0.113.5 (RFC 4291 §2.5.5.2), the form a dual-stack socket (Node.js's
    ``req.ip``, many proxies) reports IPv4 callers in: BlockedIPRangeList must block it, whether it comes as
    ContextData.IpAddress or through the trusted proxy's X-Forwarded-For."""
    pool_id = idp.create_user_pool(
        PoolName=f"mapped-{uuid.uuid4().hex[:6]}", UserPoolAddOns={"AdvancedSecurityMode": "ENFORCED"}
    )["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=FLOWS)[
        "UserPoolClient"
    ]["ClientId"]
    idp.set_risk_configuration(UserPoolId=pool_id, RiskExceptionConfiguration={"BlockedIPRangeList": [BLOCKED]})
    make_user(idp, pool_id, "trent")
    for ip in ("::ffff:203.0.113.5", "::FFFF:cb00:7105"):
        with pytest.raises(ClientError) as error:
            idp.admin_initiate_auth(
                UserPoolId=pool_id,
                ClientId=client_id,
                AuthFlow="ADMIN_USER_PASSWORD_AUTH",
                AuthParameters={"USERNAME": "trent", "PASSWORD": PASSWORD},
                ContextData={"IpAddress": ip, "ServerName": "app.example.com", "ServerPath": "/", "HttpHeaders": []},
            )
        assert error_of(error) == SECURITY
    status, body = raw_call(
        gatehouse,
        "InitiateAuth",
        {
            "ClientId": client_id,
            "AuthFlow": "USER_PASSWORD_AUTH",
            "AuthParameters": {"USERNAME": "trent", "PASSWORD": PASSWORD},
        },
        {"X-Forwarded-For": "::ffff:203.0.113.9"},
    )
    assert (status, body["__type"], body["message"]) == (400, *SECURITY)
    # Nothing was issued; the user still signs in from elsewhere.
    status, body = raw_call(
        gatehouse,
        "InitiateAuth",
        {
            "ClientId": client_id,
            "AuthFlow": "USER_PASSWORD_AUTH",
            "AuthParameters": {"USERNAME": "trent", "PASSWORD": PASSWORD},
        },
        {"X-Forwarded-For": "::ffff:198.51.100.9"},
    )
    assert status == 200 and "AccessToken" in body["AuthenticationResult"]
    # A range written in the mapped form holds for the plain IPv4 spelling too.
    idp.set_risk_configuration(
        UserPoolId=pool_id, RiskExceptionConfiguration={"BlockedIPRangeList": ["::ffff:198.51.100.0/120"]}
    )
    for ip in ("198.51.100.9", "::ffff:198.51.100.9"):
        with pytest.raises(ClientError) as error:
            idp.admin_initiate_auth(
                UserPoolId=pool_id,
                ClientId=client_id,
                AuthFlow="ADMIN_USER_PASSWORD_AUTH",
                AuthParameters={"USERNAME": "trent", "PASSWORD": PASSWORD},
                ContextData={"IpAddress": ip, "ServerName": "app.example.com", "ServerPath": "/", "HttpHeaders": []},
            )
        assert error_of(error) == SECURITY


def test_only_a_client_with_a_secret_may_propagate_user_context_data(idp: Any, public_idp: Any) -> None:
    """EnablePropagateAdditionalUserContextData lets the caller name the end user's IP address
    (UserContextData.IpAddress), which threat protection then believes: botocore's model allows it only "in an
    app client that has a client secret" -- from a public client anyone could claim a SkippedIPRangeList address
    or step around a blocked range."""
    pool_id = idp.create_user_pool(
        PoolName=f"propagate-{uuid.uuid4().hex[:6]}", UserPoolAddOns={"AdvancedSecurityMode": "ENFORCED"}
    )["UserPool"]["Id"]
    with pytest.raises(ClientError) as error:
        idp.create_user_pool_client(
            UserPoolId=pool_id, ClientName="spa", ExplicitAuthFlows=FLOWS, EnablePropagateAdditionalUserContextData=True
        )
    assert error_of(error)[0] == "InvalidParameterException"
    public = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="spa", ExplicitAuthFlows=FLOWS)[
        "UserPoolClient"
    ]
    with pytest.raises(ClientError) as error:
        idp.update_user_pool_client(
            UserPoolId=pool_id,
            ClientId=public["ClientId"],
            ExplicitAuthFlows=FLOWS,
            EnablePropagateAdditionalUserContextData=True,
        )
    assert error_of(error)[0] == "InvalidParameterException"
    described = idp.describe_user_pool_client(UserPoolId=pool_id, ClientId=public["ClientId"])["UserPoolClient"]
    assert described["EnablePropagateAdditionalUserContextData"] is False
    # A public client's UserContextData.IpAddress is still not believed: the block holds on the real address only.
    idp.set_risk_configuration(UserPoolId=pool_id, RiskExceptionConfiguration={"SkippedIPRangeList": ["0.0.0.0/0"]})
    make_user(idp, pool_id, "peggy")
    answer = public_idp.initiate_auth(
        ClientId=public["ClientId"],
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "peggy", "PASSWORD": PASSWORD},
        UserContextData={"IpAddress": "203.0.113.5"},
    )
    assert "AuthenticationResult" in answer
    (event,) = sign_in_events(idp, pool_id, "peggy")
    assert event["EventContextData"]["IpAddress"] == "127.0.0.1"

    # With a secret, the app server (which alone can compute SECRET_HASH) may propagate it.
    confidential = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="web",
        GenerateSecret=True,
        ExplicitAuthFlows=FLOWS,
        EnablePropagateAdditionalUserContextData=True,
    )["UserPoolClient"]
    assert confidential["EnablePropagateAdditionalUserContextData"] is True


# --- lockout and remembered devices ---------------------------------------------------------------------------

DEVICE_PASSWORD = "Device-password-1"
ALWAYS_REMEMBERED = {"ChallengeRequiredOnNewDevice": True, "DeviceOnlyRememberedOnUserPrompt": False}


def _wrong_code(secret: str) -> str:
    """A six-digit code that no step of the acceptance window (now, one either side) produces."""
    totp = pyotp.TOTP(secret)
    now = time.time()
    valid = {totp.at(now + offset) for offset in (-60, -30, 0, 30, 60)}
    return next(c for c in ("000000", "111111", "222222", "333333", "444444", "555555") if c not in valid)


def _password_step(public_idp: Any, client_id: str, username: str, device_key: str | None = None) -> dict[str, Any]:
    parameters = {"USERNAME": username, "PASSWORD": DEVICE_PASSWORD}
    if device_key:
        parameters["DEVICE_KEY"] = device_key
    return dict(public_idp.initiate_auth(ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters=parameters))


def _wrong_totp(public_idp: Any, client_id: str, username: str, secret: str) -> None:
    step = _password_step(public_idp, client_id, username)
    assert step["ChallengeName"] == "SOFTWARE_TOKEN_MFA", step
    with pytest.raises(ClientError) as error:
        public_idp.respond_to_auth_challenge(
            ClientId=client_id,
            ChallengeName="SOFTWARE_TOKEN_MFA",
            Session=step["Session"],
            ChallengeResponses={"USERNAME": username, "SOFTWARE_TOKEN_MFA_CODE": _wrong_code(secret)},
        )
    assert error_of(error)[0] == "CodeMismatchException"


def test_naming_a_remembered_device_does_not_reset_the_lockout(idp: Any, public_idp: Any) -> None:
    """Failed sign-ins are forgotten after a *successful* sign-in ("Lockout behavior for failed sign-in
    attempts"). With the password alone and a remembered device's key (no secret: it travels in every access
    token's ``device_key`` claim), a sign-in has proven nothing of the second factor nor of the device; if that
    reset the count, wrong TOTP codes could be tried without end, a few between each reset."""
    pool_id = idp.create_user_pool(PoolName=f"lockdev-{uuid.uuid4().hex[:6]}", DeviceConfiguration=ALWAYS_REMEMBERED)[
        "UserPool"
    ]["Id"]
    idp.set_user_pool_mfa_config(
        UserPoolId=pool_id, MfaConfiguration="OPTIONAL", SoftwareTokenMfaConfiguration={"Enabled": True}
    )
    client_id = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=FLOWS)[
        "UserPoolClient"
    ]["ClientId"]
    idp.admin_create_user(UserPoolId=pool_id, Username="victor", MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool_id, Username="victor", Password=DEVICE_PASSWORD, Permanent=True)

    # The user signs in on their laptop, which is remembered, then turns TOTP on.
    first = _password_step(public_idp, client_id, "victor")["AuthenticationResult"]
    device, necessary = confirm(public_idp, {"AuthenticationResult": first})
    assert necessary is False
    secret = str(public_idp.associate_software_token(AccessToken=first["AccessToken"])["SecretCode"])
    public_idp.verify_software_token(AccessToken=first["AccessToken"], UserCode=pyotp.TOTP(secret).now())
    public_idp.set_user_mfa_preference(
        AccessToken=first["AccessToken"], SoftwareTokenMfaSettings={"Enabled": True, "PreferredMfa": True}
    )

    # An attacker with the password guesses codes: five failures lock the account for a second.
    for _ in range(5):
        _wrong_totp(public_idp, client_id, "victor", secret)
    with pytest.raises(ClientError) as error:
        _password_step(public_idp, client_id, "victor")
    assert error_of(error) == ("NotAuthorizedException", "Password attempts exceeded")
    time.sleep(1.2)
    # The password and the laptop's key: the device challenge, which the attacker cannot answer.
    assert _password_step(public_idp, client_id, "victor", device.key)["ChallengeName"] == "DEVICE_SRP_AUTH"
    # The count was kept: the sixth wrong code locks the account again at once (2 s).
    _wrong_totp(public_idp, client_id, "victor", secret)
    with pytest.raises(ClientError) as error:
        _password_step(public_idp, client_id, "victor")
    assert error_of(error) == ("NotAuthorizedException", "Password attempts exceeded")

    # The user's own full sign-in from the laptop (password, then the device's proof) does reset it.
    time.sleep(2.2)
    step = _password_step(public_idp, client_id, "victor", device.key)
    assert "AccessToken" in device_proof(public_idp, pool_id, client_id, step, "victor", device)["AuthenticationResult"]
    _wrong_totp(public_idp, client_id, "victor", secret)
    assert _password_step(public_idp, client_id, "victor")["ChallengeName"] == "SOFTWARE_TOKEN_MFA"


def test_a_secretless_client_from_the_config_file_does_not_propagate_context_data(public_idp: Any) -> None:
    """The config file sets client members without the API's checks: a public client stored with
    EnablePropagateAdditionalUserContextData still has its callers' UserContextData.IpAddress ignored, so the
    blocked range is judged on the real address (127.0.0.1 here), not on one the caller typed."""
    answer = public_idp.initiate_auth(
        ClientId="propagatingspa",
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "oscar", "PASSWORD": PASSWORD},
        UserContextData={"IpAddress": "203.0.113.5"},
    )
    assert "AccessToken" in answer["AuthenticationResult"]


def test_a_public_callers_user_context_data_carries_no_headers(gatehouse: GatehouseServer, idp: Any) -> None:
    """UserContextDataType has IpAddress and EncodedData only (botocore's model); HttpHeaders belong to the admin
    API's ContextData, sent by the app's server. Headers a public caller adds to UserContextData must not
    become the event's device name and location (what the user is shown in a notification and an
    administrator in AdminListUserAuthEvents), nor feed the risk score."""
    pool_id = idp.create_user_pool(
        PoolName=f"headers-{uuid.uuid4().hex[:6]}", UserPoolAddOns={"AdvancedSecurityMode": "AUDIT"}
    )["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="spa", ExplicitAuthFlows=FLOWS)[
        "UserPoolClient"
    ]["ClientId"]
    make_user(idp, pool_id, "sybil")
    forged = [
        {"headerName": "User-Agent", "headerValue": "Your usual laptop"},
        {"headerName": "CloudFront-Viewer-Country", "headerValue": "ZZ"},
        {"headerName": "CloudFront-Viewer-City", "headerValue": "Hometown"},
    ]
    status, body = raw_call(
        gatehouse,
        "InitiateAuth",
        {
            "ClientId": client_id,
            "AuthFlow": "USER_PASSWORD_AUTH",
            "AuthParameters": {"USERNAME": "sybil", "PASSWORD": PASSWORD},
            "UserContextData": {"EncodedData": "opaque", "HttpHeaders": forged},
        },
        {},
    )
    assert status == 200 and "AccessToken" in body["AuthenticationResult"]
    (event,) = sign_in_events(idp, pool_id, "sybil")
    context = event["EventContextData"]
    assert context["IpAddress"] == "127.0.0.1"
    assert context.get("DeviceName") != "Your usual laptop"
    assert "Country" not in context and "City" not in context
    # The admin API's ContextData does carry them: the app's server saw the request.
    idp.admin_initiate_auth(
        UserPoolId=pool_id,
        ClientId=client_id,
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "sybil", "PASSWORD": PASSWORD},
        ContextData={"IpAddress": "198.51.100.4", "ServerName": "app", "ServerPath": "/", "HttpHeaders": forged},
    )
    latest = sign_in_events(idp, pool_id, "sybil")[0]["EventContextData"]
    assert (latest["DeviceName"], latest["Country"], latest["City"]) == ("Your usual laptop", "ZZ", "Hometown")


# --- the query wire's source address ----------------------------------------------------------------------------


def test_sts_condition_on_source_ip_sees_the_trusted_proxys_forwarded_address(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, iam: Any
) -> None:
    """aws:SourceIp in a trust policy is the caller's address as the JSON wires and the hosted pages take it:
    behind a trusted proxy (127.0.0.1 here), the address in its X-Forwarded-For, not the proxy's own."""
    pool_id, client_id, token = signed_in_user(idp, "sts-source-ip", "alice", PASSWORD)
    provider = f"127.0.0.1:{gatehouse.port}/{pool_id}"
    trust = json.loads(oidc_trust(provider, client_id))
    trust["Statement"][0]["Condition"]["IpAddress"] = {"aws:SourceIp": "203.0.113.0/24"}
    role_arn = iam.create_role(RoleName="office-only", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    form = {
        "Action": "AssumeRoleWithWebIdentity",
        "Version": "2011-06-15",
        "RoleArn": role_arn,
        "RoleSessionName": "alice",
        "WebIdentityToken": token,
    }

    def assume(forwarded_for: str) -> requests.Response:
        return requests.post(gatehouse.url + "/", data=form, headers={"X-Forwarded-For": forwarded_for}, timeout=10)

    inside = assume("203.0.113.9")
    assert inside.status_code == 200, inside.text
    assert "<AccessKeyId>ASIA" in inside.text
    outside = assume("198.51.100.9")
    assert outside.status_code == 403 and "<Code>AccessDenied</Code>" in outside.text
