"""A pool's sign-in security declared in the config file, end to end: `gatehouse serve --config` with a pool
whose MFA is ON with the email factor, device tracking, first factors, passkeys and threat protection; boto3
sees each setting, a seed user signs in answering the configured EMAIL_OTP challenge with the code mailed to
them, and a restart with the same file changes nothing."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support import GatehouseServer, MailServer, body_text

POOL_ID = "us-east-1_Secured01"
PASSWORD = "Configured-Pass-1"


def config(mail: MailServer) -> str:
    return f"""version: 1
server:
  smtp: {{host: 127.0.0.1, port: {mail.port}}}
pools:
  - id: {POOL_ID}
    name: secured
    mfa:
      mode: ON
      email:
        subject: Your Gatehouse code
        message: "Sign in with {{####}}."
    devices:
      challenge_required_on_new_device: true
      remembered_on_user_prompt: true
    sign_in:
      first_factors: [PASSWORD, EMAIL_OTP]
      passkeys: {{relying_party_id: localhost, user_verification: required}}
    threat_protection:
      mode: AUDIT
      risk:
        AccountTakeoverRiskConfiguration:
          Actions:
            HighAction: {{EventAction: MFA_REQUIRED, Notify: false}}
    clients:
      - id: securedapp
        name: app
        explicit_auth_flows: [ALLOW_USER_PASSWORD_AUTH, ALLOW_REFRESH_TOKEN_AUTH]
    users:
      - username: erin
        password: "{PASSWORD}"
        attributes: {{email: erin@example.com, email_verified: true}}
"""


@pytest.fixture(scope="module")
def gatehouse(tmp_path_factory: pytest.TempPathFactory, mail: MailServer) -> Iterator[GatehouseServer]:
    data_dir: Path = tmp_path_factory.mktemp("sign-in-config") / "data"
    server = GatehouseServer(data_dir, config=config(mail))
    server.start()
    yield server
    server.stop()


def sign_in(public_idp: Any, password: str = PASSWORD) -> dict[str, Any]:
    return dict(
        public_idp.initiate_auth(
            ClientId="securedapp",
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": "erin", "PASSWORD": password},
        )
    )


def mailed_code(mail: MailServer, count: int) -> str:
    message = mail.wait_for("erin@example.com", count=count)
    assert message["Subject"] == "Your Gatehouse code"
    match = re.search(r"Sign in with (\d{6})\.", body_text(message))
    assert match, body_text(message)
    return match.group(1)


def test_the_pool_has_the_configured_settings(idp: Any) -> None:
    mfa = idp.get_user_pool_mfa_config(UserPoolId=POOL_ID)
    assert mfa["MfaConfiguration"] == "ON"
    assert mfa["EmailMfaConfiguration"] == {"Message": "Sign in with {####}.", "Subject": "Your Gatehouse code"}
    assert "SmsMfaConfiguration" not in mfa
    assert mfa["SoftwareTokenMfaConfiguration"] == {"Enabled": False}
    assert mfa["WebAuthnConfiguration"]["RelyingPartyId"] == "localhost"
    assert mfa["WebAuthnConfiguration"]["UserVerification"] == "required"
    pool = idp.describe_user_pool(UserPoolId=POOL_ID)["UserPool"]
    assert pool["DeviceConfiguration"] == {
        "ChallengeRequiredOnNewDevice": True,
        "DeviceOnlyRememberedOnUserPrompt": True,
    }
    assert pool["Policies"]["SignInPolicy"] == {"AllowedFirstAuthFactors": ["PASSWORD", "EMAIL_OTP"]}
    assert pool["UserPoolAddOns"] == {"AdvancedSecurityMode": "AUDIT"}
    risk = idp.describe_risk_configuration(UserPoolId=POOL_ID)["RiskConfiguration"]
    assert risk["AccountTakeoverRiskConfiguration"]["Actions"]["HighAction"]["EventAction"] == "MFA_REQUIRED"


def test_a_seed_user_signs_in_with_the_configured_factor(public_idp: Any, mail: MailServer) -> None:
    challenge = sign_in(public_idp)
    assert challenge["ChallengeName"] == "EMAIL_OTP"
    assert challenge["ChallengeParameters"]["CODE_DELIVERY_DELIVERY_MEDIUM"] == "EMAIL"
    code = mailed_code(mail, 1)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    with pytest.raises(ClientError) as exc:
        public_idp.respond_to_auth_challenge(
            ClientId="securedapp",
            ChallengeName="EMAIL_OTP",
            Session=challenge["Session"],
            ChallengeResponses={"USERNAME": "erin", "EMAIL_OTP_CODE": wrong},
        )
    assert exc.value.response["Error"]["Code"] == "CodeMismatchException"
    result = public_idp.respond_to_auth_challenge(
        ClientId="securedapp",
        ChallengeName="EMAIL_OTP",
        Session=exc.value.response.get("Session") or challenge["Session"],
        ChallengeResponses={"USERNAME": "erin", "EMAIL_OTP_CODE": code},
    )
    tokens = result["AuthenticationResult"]
    assert public_idp.get_user(AccessToken=tokens["AccessToken"])["Username"] == "erin"


def test_a_wrong_password_never_reaches_the_second_factor(public_idp: Any, mail: MailServer) -> None:
    sent = len(mail.messages_to("erin@example.com"))
    with pytest.raises(ClientError) as exc:
        sign_in(public_idp, "Wrong-Pass-123")
    assert exc.value.response["Error"]["Code"] == "NotAuthorizedException"
    assert len(mail.messages_to("erin@example.com")) == sent


def test_a_restart_with_the_same_file_changes_nothing(gatehouse: GatehouseServer, idp: Any) -> None:
    before = idp.describe_user_pool(UserPoolId=POOL_ID)["UserPool"]
    risk_before = idp.describe_risk_configuration(UserPoolId=POOL_ID)["RiskConfiguration"]
    gatehouse.stop()
    gatehouse.start()
    idp = gatehouse.client()
    after = idp.describe_user_pool(UserPoolId=POOL_ID)["UserPool"]
    assert after["LastModifiedDate"] == before["LastModifiedDate"]
    assert after == before
    assert idp.describe_risk_configuration(UserPoolId=POOL_ID)["RiskConfiguration"] == risk_before


@pytest.mark.parametrize(("declared", "mode_after"), [("", "OFF"), ("    mfa_configuration: OPTIONAL\n", "OPTIONAL")])
def test_without_mfa_the_factors_set_through_the_api_stay_and_the_mode_is_the_files(
    tmp_path: Path, declared: str, mode_after: str
) -> None:
    """docs/sign-in-security.md: a pool without `mfa` keeps the factors SetUserPoolMfaConfig set, but its mode is
    the file's at each start, as every pool setting is (`mfa_configuration`, else OFF)."""
    pool_id = "us-east-1_ApiFactors1"
    server = GatehouseServer(
        tmp_path / "data", config=f"version: 1\npools:\n  - id: {pool_id}\n    name: api\n{declared}"
    )
    server.start()
    try:
        server.client().set_user_pool_mfa_config(
            UserPoolId=pool_id,
            MfaConfiguration="OPTIONAL",
            SoftwareTokenMfaConfiguration={"Enabled": True},
            EmailMfaConfiguration={"Message": "Code {####}", "Subject": "Your code"},
        )
        server.stop()
        server.start()
        after = server.client().get_user_pool_mfa_config(UserPoolId=pool_id)
        assert after["SoftwareTokenMfaConfiguration"] == {"Enabled": True}
        assert after["EmailMfaConfiguration"] == {"Message": "Code {####}", "Subject": "Your code"}
        assert after["MfaConfiguration"] == mode_after
        assert server.client().describe_user_pool(UserPoolId=pool_id)["UserPool"]["MfaConfiguration"] == mode_after
    finally:
        server.stop()
