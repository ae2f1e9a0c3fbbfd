"""Sign-in edge cases under attack, against one real server (reached as http://localhost:<port>, a secure context
for WebAuthn):

* a Session started through the admin API (AdminInitiateAuth, which a trusted server signs and which may skip
  checks only such a server may skip) is not answered through the public RespondToAuthChallenge, and the
  MFA set-up that an admin-started sign-in does through the public AssociateSoftwareToken /
  VerifySoftwareToken still ends with AdminRespondToAuthChallenge;
* odd spellings of ContextData.IpAddress (an IPv6 zone index, brackets, a port, a list of addresses, an unreadable
  value) do not get round threat protection's BlockedIPRangeList;
* an answer to a challenge from a blocked address is refused as the first step would be;
* what a sign-in's requester controls (its User-Agent, its location headers) is escaped in the HTML of threat
  protection's notification emails;
* a passkey sign-in that counts as multi-factor (MULTI_FACTOR_WITH_USER_VERIFICATION) gets the same new-device
  metadata and the same risk assessment as any other sign-in.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import pyotp
import pytest
from botocore.exceptions import ClientError

from tests.e2e.test_passkeys import Device, add_authenticator, origin_of
from tests.support import GatehouseServer, MailServer, body_text, smtp_config

PASSWORD = "Correct-Horse-9x"
TEMPORARY = "Temporary-Horse-9x"
SECURITY = ("NotAuthorizedException", "Unable to login because of security reasons.")
INVALID_SESSION = ("NotAuthorizedException", "Invalid session for the user.")
FLOWS = [
    "ALLOW_USER_PASSWORD_AUTH",
    "ALLOW_ADMIN_USER_PASSWORD_AUTH",
    "ALLOW_USER_SRP_AUTH",
    "ALLOW_REFRESH_TOKEN_AUTH",
    "ALLOW_USER_AUTH",
]


@pytest.fixture(scope="module")
def gatehouse(tmp_path_factory: pytest.TempPathFactory, mail: MailServer) -> Iterator[GatehouseServer]:
    data_dir: Path = tmp_path_factory.mktemp("sign-in-edges") / "data"
    server = GatehouseServer(data_dir, config=smtp_config(mail))
    server.extra_args = ["--public-url", origin_of(server)]
    server.start()
    yield server
    server.stop()


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = exc.value.response["Error"]
    return str(error["Code"]), str(error.get("Message", ""))


def new_pool(idp: Any, **request: Any) -> tuple[str, str]:
    pool_id = str(idp.create_user_pool(PoolName=f"{uuid.uuid4().hex[:8]}", **request)["UserPool"]["Id"])
    client = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=FLOWS)
    return pool_id, str(client["UserPoolClient"]["ClientId"])


def make_user(idp: Any, pool_id: str, username: str, *, permanent: bool = True) -> None:
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username=username,
        MessageAction="SUPPRESS",
        TemporaryPassword=TEMPORARY,
        UserAttributes=[{"Name": "email", "Value": f"{username}@example.com"}],
    )
    if permanent:
        idp.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True)


def admin_password(idp: Any, pool_id: str, client_id: str, username: str, password: str, **extra: Any) -> Any:
    return idp.admin_initiate_auth(
        UserPoolId=pool_id,
        ClientId=client_id,
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": password},
        **extra,
    )


# --- 1. a Session answers through the kind of call that started it ------------------------------------------------


def test_an_admin_started_new_password_challenge_is_not_answered_publicly(idp: Any, public_idp: Any) -> None:
    pool_id, client_id = new_pool(idp)
    make_user(idp, pool_id, "ada", permanent=False)
    started = admin_password(idp, pool_id, client_id, "ada", TEMPORARY)
    assert started["ChallengeName"] == "NEW_PASSWORD_REQUIRED"
    with pytest.raises(ClientError) as error:
        public_idp.respond_to_auth_challenge(
            ClientId=client_id,
            ChallengeName="NEW_PASSWORD_REQUIRED",
            Session=started["Session"],
            ChallengeResponses={"USERNAME": "ada", "NEW_PASSWORD": PASSWORD},
        )
    assert error_of(error) == INVALID_SESSION
    # Nothing changed: the user still owes a new password, and the new one does not sign in.
    assert idp.admin_get_user(UserPoolId=pool_id, Username="ada")["UserStatus"] == "FORCE_CHANGE_PASSWORD"
    with pytest.raises(ClientError) as error:
        admin_password(idp, pool_id, client_id, "ada", PASSWORD)
    assert error_of(error)[0] == "NotAuthorizedException"
    # The trusted server finishes its own flow as before.
    again = admin_password(idp, pool_id, client_id, "ada", TEMPORARY)
    done = idp.admin_respond_to_auth_challenge(
        UserPoolId=pool_id,
        ClientId=client_id,
        ChallengeName="NEW_PASSWORD_REQUIRED",
        Session=again["Session"],
        ChallengeResponses={"USERNAME": "ada", "NEW_PASSWORD": PASSWORD},
    )
    assert done["AuthenticationResult"]["AccessToken"]


def test_an_admin_started_mfa_challenge_is_not_answered_publicly(idp: Any, public_idp: Any) -> None:
    pool_id, client_id = new_pool(idp)
    idp.set_user_pool_mfa_config(
        UserPoolId=pool_id, MfaConfiguration="ON", SoftwareTokenMfaConfiguration={"Enabled": True}
    )
    make_user(idp, pool_id, "bea")
    # MFA set-up inside an admin-started sign-in goes through the public AssociateSoftwareToken and
    # VerifySoftwareToken (they have no admin twin); the last step is the admin API's again.
    setup = admin_password(idp, pool_id, client_id, "bea", PASSWORD)
    assert setup["ChallengeName"] == "MFA_SETUP"
    associated = public_idp.associate_software_token(Session=setup["Session"])
    totp = pyotp.TOTP(associated["SecretCode"])
    verified = public_idp.verify_software_token(Session=associated["Session"], UserCode=totp.now())
    assert verified["Status"] == "SUCCESS"
    with pytest.raises(ClientError) as error:
        public_idp.respond_to_auth_challenge(
            ClientId=client_id,
            ChallengeName="MFA_SETUP",
            Session=verified["Session"],
            ChallengeResponses={"USERNAME": "bea"},
        )
    assert error_of(error) == INVALID_SESSION

    setup = admin_password(idp, pool_id, client_id, "bea", PASSWORD)
    assert setup["ChallengeName"] == "SOFTWARE_TOKEN_MFA"  # TOTP was turned on by the verified set-up
    with pytest.raises(ClientError) as error:
        public_idp.respond_to_auth_challenge(
            ClientId=client_id,
            ChallengeName="SOFTWARE_TOKEN_MFA",
            Session=setup["Session"],
            ChallengeResponses={"USERNAME": "bea", "SOFTWARE_TOKEN_MFA_CODE": totp.now()},
        )
    assert error_of(error) == INVALID_SESSION

    # An MFA_SETUP flow started by the admin API ends there, through the public set-up calls in between.
    user2 = "cleo"
    make_user(idp, pool_id, user2)
    setup = admin_password(idp, pool_id, client_id, user2, PASSWORD)
    associated = public_idp.associate_software_token(Session=setup["Session"])
    totp2 = pyotp.TOTP(associated["SecretCode"])
    verified = public_idp.verify_software_token(Session=associated["Session"], UserCode=totp2.now())
    done = idp.admin_respond_to_auth_challenge(
        UserPoolId=pool_id,
        ClientId=client_id,
        ChallengeName="MFA_SETUP",
        Session=verified["Session"],
        ChallengeResponses={"USERNAME": user2},
    )
    assert done["AuthenticationResult"]["AccessToken"]


# --- 2. odd spellings of an address do not get round a blocked range -------------------------------------------


BLOCKED_RANGES = ["203.0.113.0/24", "2001:db8::/32", "fe80::/10"]
ODD_BLOCKED_ADDRESSES = [
    "203.0.113.7%eth0",  # an IPv4 address with a zone index
    "fe80::1%eth0",  # a link-local address with its zone (RFC 4007 §11)
    "2001:db8::1%25eth0",  # the zone percent-encoded, as in a URI (RFC 6874)
    "[2001:db8::1]",  # bracketed, as in a URI's host
    "[2001:db8::1]:443",  # with a port
    "203.0.113.7:8443",  # an IPv4 address with a port
    "::ffff:203.0.113.7%1",  # IPv4-mapped, with a zone
    " 203.0.113.7\t",
    "203.0.113.7, 198.51.100.1",  # an X-Forwarded-For list passed through
    "203.000.113.007",  # zero-padded octets (ambiguous: octal to some parsers)
    "not-an-address",
]


@pytest.mark.parametrize("address", ODD_BLOCKED_ADDRESSES)
def test_an_odd_spelling_of_an_address_does_not_bypass_a_blocked_range(idp: Any, address: str) -> None:
    pool_id, client_id = new_pool(idp, UserPoolAddOns={"AdvancedSecurityMode": "ENFORCED"})
    idp.set_risk_configuration(UserPoolId=pool_id, RiskExceptionConfiguration={"BlockedIPRangeList": BLOCKED_RANGES})
    make_user(idp, pool_id, "dan")
    with pytest.raises(ClientError) as error:
        admin_password(idp, pool_id, client_id, "dan", PASSWORD, ContextData=_context(address))
    assert error_of(error) == SECURITY
    # An ordinary address is not blocked, and the refused attempt was no failed password.
    answer = admin_password(idp, pool_id, client_id, "dan", PASSWORD, ContextData=_context("198.51.100.9"))
    assert answer["AuthenticationResult"]["AccessToken"]


def test_an_odd_spelling_of_an_allowed_address_still_signs_in(idp: Any) -> None:
    pool_id, client_id = new_pool(idp, UserPoolAddOns={"AdvancedSecurityMode": "ENFORCED"})
    idp.set_risk_configuration(UserPoolId=pool_id, RiskExceptionConfiguration={"BlockedIPRangeList": BLOCKED_RANGES})
    make_user(idp, pool_id, "eve")
    for address in ("[2001:db9::1]:443", "198.51.100.9:80", "fd00::1%eth0"):
        answer = admin_password(idp, pool_id, client_id, "eve", PASSWORD, ContextData=_context(address))
        assert answer["AuthenticationResult"]["AccessToken"], address


def test_audit_mode_records_an_unreadable_address_as_blocked_without_refusing(idp: Any) -> None:
    pool_id, client_id = new_pool(idp, UserPoolAddOns={"AdvancedSecurityMode": "AUDIT"})
    idp.set_risk_configuration(
        UserPoolId=pool_id, RiskExceptionConfiguration={"BlockedIPRangeList": ["203.0.113.0/24"]}
    )
    make_user(idp, pool_id, "fay")
    # AUDIT never changes the outcome: the sign-in passes, and its event records the block it would have had.
    answer = admin_password(idp, pool_id, client_id, "fay", PASSWORD, ContextData=_context("not-an-address"))
    assert answer["AuthenticationResult"]["AccessToken"]
    [event] = [
        e
        for e in idp.admin_list_user_auth_events(UserPoolId=pool_id, Username="fay")["AuthEvents"]
        if e["EventType"] == "SignIn"
    ]
    assert (event["EventResponse"], event["EventRisk"]["RiskDecision"]) == ("Pass", "Block")


def _context(address: str) -> dict[str, Any]:
    return {
        "IpAddress": address,
        "ServerName": "app.example.com",
        "ServerPath": "/login",
        "HttpHeaders": [{"headerName": "User-Agent", "headerValue": "Mozilla/5.0 (X11; Linux x86_64)"}],
    }


# --- 3. a multi-factor passkey sign-in is a sign-in like the others -------------------------------------------


@pytest.fixture
def device(browser: Any, gatehouse: GatehouseServer) -> Iterator[Device]:
    context = browser.new_context()
    try:
        page = context.new_page()
        response = page.goto(f"{origin_of(gatehouse)}/health")
        assert response is not None and response.status == 200
        cdp, authenticator_id = add_authenticator(context, page)
        yield Device(page, cdp, authenticator_id)
    finally:
        context.close()


def _passkey_pool(idp: Any, **request: Any) -> tuple[str, str]:
    pool_id, client_id = new_pool(
        idp,
        Policies={"SignInPolicy": {"AllowedFirstAuthFactors": ["PASSWORD", "WEB_AUTHN"]}},
        DeviceConfiguration={"ChallengeRequiredOnNewDevice": True, "DeviceOnlyRememberedOnUserPrompt": False},
        **request,
    )
    idp.set_user_pool_mfa_config(
        UserPoolId=pool_id,
        MfaConfiguration="OFF",
        WebAuthnConfiguration={
            "UserVerification": "required",
            "FactorConfiguration": "MULTI_FACTOR_WITH_USER_VERIFICATION",
        },
    )
    return pool_id, client_id


def _with_passkey(public_idp: Any, idp: Any, pool_id: str, client_id: str, username: str, device: Device) -> None:
    make_user(idp, pool_id, username)
    signed = public_idp.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_AUTH",
        AuthParameters={"USERNAME": username, "PREFERRED_CHALLENGE": "PASSWORD", "PASSWORD": PASSWORD},
        UserContextData={"EncodedData": "first-device"},
    )
    access = signed["AuthenticationResult"]["AccessToken"]
    options = public_idp.start_web_authn_registration(AccessToken=access)["CredentialCreationOptions"]
    public_idp.complete_web_authn_registration(AccessToken=access, Credential=device.create(options))


def _passkey_sign_in(public_idp: Any, client_id: str, username: str, device: Device, encoded: str) -> Any:
    challenge = public_idp.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_AUTH",
        AuthParameters={"USERNAME": username, "PREFERRED_CHALLENGE": "WEB_AUTHN"},
        UserContextData={"EncodedData": encoded},
    )
    assert challenge["ChallengeName"] == "WEB_AUTHN"
    assertion = device.get(challenge["ChallengeParameters"]["CREDENTIAL_REQUEST_OPTIONS"])
    return public_idp.respond_to_auth_challenge(
        ClientId=client_id,
        ChallengeName="WEB_AUTHN",
        Session=challenge["Session"],
        ChallengeResponses={"USERNAME": username, "CREDENTIAL": assertion},
        UserContextData={"EncodedData": encoded},
    )


def test_a_multi_factor_passkey_sign_in_gets_new_device_metadata(public_idp: Any, idp: Any, device: Device) -> None:
    pool_id, client_id = _passkey_pool(idp)
    _with_passkey(public_idp, idp, pool_id, client_id, "gil", device)
    answer = _passkey_sign_in(public_idp, client_id, "gil", device, "first-device")
    result = answer["AuthenticationResult"]
    metadata = result["NewDeviceMetadata"]
    assert metadata["DeviceKey"].startswith(pool_id.split("_")[0] + "_")
    assert metadata["DeviceGroupKey"]
    # The access token names the device, so that ConfirmDevice can remember it.
    payload = result["AccessToken"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["device_key"] == metadata["DeviceKey"]


def test_a_multi_factor_passkey_sign_in_is_assessed_by_threat_protection(
    public_idp: Any, idp: Any, device: Device
) -> None:
    pool_id, client_id = _passkey_pool(idp, UserPoolAddOns={"AdvancedSecurityMode": "ENFORCED"})
    _with_passkey(public_idp, idp, pool_id, client_id, "hal", device)
    # The same device as the password sign-in: low risk, signed in, and recorded as a sign-in.
    assert _passkey_sign_in(public_idp, client_id, "hal", device, "first-device")["AuthenticationResult"]
    events = idp.admin_list_user_auth_events(UserPoolId=pool_id, Username="hal")["AuthEvents"]
    assert [e["EventResponse"] for e in events if e["EventType"] == "SignIn"] == ["Pass", "Pass"]
    # A device never seen before is Medium risk (the address is the same): this configuration blocks it.
    idp.set_risk_configuration(
        UserPoolId=pool_id,
        AccountTakeoverRiskConfiguration={
            "Actions": {
                "LowAction": {"Notify": False, "EventAction": "NO_ACTION"},
                "MediumAction": {"Notify": False, "EventAction": "BLOCK"},
                "HighAction": {"Notify": False, "EventAction": "BLOCK"},
            }
        },
    )
    with pytest.raises(ClientError) as error:
        _passkey_sign_in(public_idp, client_id, "hal", device, "stolen-laptop")
    assert error_of(error) == SECURITY
    events = idp.admin_list_user_auth_events(UserPoolId=pool_id, Username="hal")["AuthEvents"]
    latest = next(e for e in events if e["EventType"] == "SignIn")
    assert (latest["EventResponse"], latest["EventRisk"]["RiskLevel"]) == ("Fail", "Medium")
    # MFA_REQUIRED is met by the passkey itself (user verification makes it multi-factor): signed in.
    idp.set_risk_configuration(
        UserPoolId=pool_id,
        AccountTakeoverRiskConfiguration={
            "Actions": {
                "LowAction": {"Notify": False, "EventAction": "NO_ACTION"},
                "MediumAction": {"Notify": False, "EventAction": "MFA_REQUIRED"},
                "HighAction": {"Notify": False, "EventAction": "MFA_REQUIRED"},
            }
        },
    )
    answer = _passkey_sign_in(public_idp, client_id, "hal", device, "stolen-laptop-2")
    assert answer["AuthenticationResult"]["AccessToken"]


# --- 4. a blocked address is refused at every step, not only the first -------------------------------------------


def test_a_challenge_answer_from_a_blocked_address_is_refused(idp: Any) -> None:
    pool_id, client_id = new_pool(idp, UserPoolAddOns={"AdvancedSecurityMode": "ENFORCED"})
    idp.set_risk_configuration(UserPoolId=pool_id, RiskExceptionConfiguration={"BlockedIPRangeList": BLOCKED_RANGES})
    make_user(idp, pool_id, "ivy", permanent=False)
    # Started from an allowed address, answered from a blocked one (the admin API's ContextData of each call).
    started = admin_password(idp, pool_id, client_id, "ivy", TEMPORARY, ContextData=_context("198.51.100.9"))
    assert started["ChallengeName"] == "NEW_PASSWORD_REQUIRED"
    with pytest.raises(ClientError) as error:
        idp.admin_respond_to_auth_challenge(
            UserPoolId=pool_id,
            ClientId=client_id,
            ChallengeName="NEW_PASSWORD_REQUIRED",
            Session=started["Session"],
            ChallengeResponses={"USERNAME": "ivy", "NEW_PASSWORD": PASSWORD},
            ContextData=_context("203.0.113.9"),
        )
    assert error_of(error) == SECURITY
    # Nothing changed: the password is still the temporary one, and the user still owes a new one.
    assert idp.admin_get_user(UserPoolId=pool_id, Username="ivy")["UserStatus"] == "FORCE_CHANGE_PASSWORD"
    again = admin_password(idp, pool_id, client_id, "ivy", TEMPORARY, ContextData=_context("198.51.100.9"))
    done = idp.admin_respond_to_auth_challenge(
        UserPoolId=pool_id,
        ClientId=client_id,
        ChallengeName="NEW_PASSWORD_REQUIRED",
        Session=again["Session"],
        ChallengeResponses={"USERNAME": "ivy", "NEW_PASSWORD": PASSWORD},
        ContextData=_context("198.51.100.9"),
    )
    assert done["AuthenticationResult"]["AccessToken"]


# --- 5. the requester's own words in a notification email are text, not HTML ------------------------------------


INJECTED = '<a href="https://evil.example/reset">Reset your password here</a>'


def _html_of(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/html":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode()
    raise AssertionError("no HTML part")


def test_a_notification_email_escapes_what_the_requester_sent(idp: Any, mail: MailServer) -> None:
    pool_id, client_id = new_pool(idp, UserPoolAddOns={"AdvancedSecurityMode": "ENFORCED"})
    idp.set_risk_configuration(
        UserPoolId=pool_id,
        AccountTakeoverRiskConfiguration={
            "NotifyConfiguration": {
                "SourceArn": "arn:aws:ses:us-east-1:000000000000:identity/security@example.com",
                "From": "security@example.com",
                "BlockEmail": {
                    "Subject": "Blocked sign-in",
                    "HtmlBody": "<p>We blocked a sign-in from {device-name} in {city}, {country} ({ip-address}).</p>",
                    "TextBody": "We blocked a sign-in from {device-name}.",
                },
            },
            "Actions": {
                "LowAction": {"Notify": False, "EventAction": "NO_ACTION"},
                "MediumAction": {"Notify": True, "EventAction": "BLOCK"},
                "HighAction": {"Notify": True, "EventAction": "BLOCK"},
            },
        },
    )
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username="jon",
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": "email", "Value": "jon@example.com"}, {"Name": "email_verified", "Value": "true"}],
    )
    idp.admin_set_user_password(UserPoolId=pool_id, Username="jon", Password=PASSWORD, Permanent=True)
    assert admin_password(idp, pool_id, client_id, "jon", PASSWORD, ContextData=_context("198.51.100.9"))
    # A sign-in with the right (stolen) password from a new device and network: blocked, and the user told.
    hostile = _context("192.0.2.44")
    hostile["HttpHeaders"] = [
        {"headerName": "User-Agent", "headerValue": INJECTED},
        {"headerName": "CloudFront-Viewer-City", "headerValue": "<img src=https://evil.example/pixel>"},
        {"headerName": "CloudFront-Viewer-Country", "headerValue": "&lt;b&gt;"},
    ]
    with pytest.raises(ClientError) as error:
        admin_password(idp, pool_id, client_id, "jon", PASSWORD, ContextData=hostile)
    assert error_of(error) == SECURITY
    html = _html_of(mail.wait_for("jon@example.com"))
    assert "<a href" not in html and "<img" not in html
    assert "&lt;a href=&quot;https://evil.example/reset&quot;&gt;" in html
    assert "&amp;lt;b&amp;gt;" in html  # escaped once more: shown as typed, never as markup
    assert html.startswith("<p>We blocked a sign-in from ")  # the pool's own template is HTML as written
    assert INJECTED in body_text(mail.wait_for("jon@example.com"))  # plain text stays as sent
