"""User self-service flows against Cognito's documented edge cases.

* Passwordless and MFA ("Authentication flows", passwordless sign-in): "Passwordless authentication flows aren't
  compatible with required multi-factor authentication (MFA) in your user pool. If MFA is optional in your user
  pool, users who have activated MFA can't sign in with a passwordless first factor. Users who don't have an MFA
  preference in an MFA-optional user pool can sign in with passwordless factors."

Real server, real boto3 clients, mail read from the module's SMTP server.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support import MailServer, body_text

PASSWORD = "Flows-pass-123!"


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return str(exc.value.response["Error"]["Code"]), str(exc.value.response["Error"]["Message"])


def make_user(idp: Any, pool_id: str, username: str, attributes: dict[str, str]) -> None:
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username=username,
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": k, "Value": v} for k, v in attributes.items()],
    )
    idp.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True)


def sign_in_code(mail: MailServer, address: str, count: int) -> str:
    """The eight-digit passwordless code of the ``count``-th message to ``address``."""
    match = re.search(r"\b(\d{8})\b", body_text(mail.wait_for(address, count=count)))
    assert match is not None
    return match.group(1)


# --- Passwordless and MFA ----------------------------------------------------------------------------------------


def _otp_pool(idp: Any, name: str, mfa: str) -> tuple[str, str]:
    pool_id = idp.create_user_pool(
        PoolName=name, Policies={"SignInPolicy": {"AllowedFirstAuthFactors": ["PASSWORD", "EMAIL_OTP"]}}
    )["UserPool"]["Id"]
    idp.set_user_pool_mfa_config(
        UserPoolId=pool_id,
        MfaConfiguration=mfa,
        EmailMfaConfiguration={"Subject": "Sign-in code", "Message": "Use {####} to sign in."},
    )
    client_id = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=["ALLOW_USER_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    )["UserPoolClient"]["ClientId"]
    return str(pool_id), str(client_id)


def test_a_user_with_mfa_is_not_offered_a_passwordless_first_factor(
    idp: Any, public_idp: Any, mail: MailServer
) -> None:
    """Without MFA an emailed code signs the user in; once the user activates email MFA the code is no first
    factor for them (no code is sent, the choice is the password), and the password is followed by the MFA
    code -- never two emailed codes in a row, as a passwordless code and email MFA would be."""
    pool_id, client_id = _otp_pool(idp, "otp-and-mfa", "OPTIONAL")
    address = "otto@example.com"
    make_user(idp, pool_id, "otto", {"email": address, "email_verified": "true"})

    def user_auth(**parameters: str) -> dict[str, Any]:
        return dict(
            public_idp.initiate_auth(
                ClientId=client_id, AuthFlow="USER_AUTH", AuthParameters={"USERNAME": "otto", **parameters}
            )
        )

    challenge = user_auth(PREFERRED_CHALLENGE="EMAIL_OTP")
    assert challenge["ChallengeName"] == "EMAIL_OTP"
    done = public_idp.respond_to_auth_challenge(
        ClientId=client_id,
        ChallengeName="EMAIL_OTP",
        Session=challenge["Session"],
        ChallengeResponses={"USERNAME": "otto", "EMAIL_OTP_CODE": sign_in_code(mail, address, 1)},
    )
    token = done["AuthenticationResult"]["AccessToken"]
    assert public_idp.get_user_auth_factors(AccessToken=token)["ConfiguredUserAuthFactors"] == ["PASSWORD", "EMAIL_OTP"]

    idp.admin_set_user_mfa_preference(
        UserPoolId=pool_id, Username="otto", EmailMfaSettings={"Enabled": True, "PreferredMfa": True}
    )
    select = user_auth(PREFERRED_CHALLENGE="EMAIL_OTP")
    assert select["ChallengeName"] == "SELECT_CHALLENGE"
    assert select["AvailableChallenges"] == ["PASSWORD", "PASSWORD_SRP"]
    assert len(mail.messages_to(address)) == 1  # no code went out
    with pytest.raises(ClientError) as exc:
        public_idp.respond_to_auth_challenge(
            ClientId=client_id,
            ChallengeName="SELECT_CHALLENGE",
            Session=select["Session"],
            ChallengeResponses={"USERNAME": "otto", "ANSWER": "EMAIL_OTP"},
        )
    assert error_of(exc)[0] == "InvalidParameterException"
    assert len(mail.messages_to(address)) == 1
    assert public_idp.get_user_auth_factors(AccessToken=token)["ConfiguredUserAuthFactors"] == ["PASSWORD"]

    # The password, then email MFA's six-digit code.
    mfa = user_auth(PREFERRED_CHALLENGE="PASSWORD", PASSWORD=PASSWORD)
    assert mfa["ChallengeName"] == "EMAIL_OTP"
    code = re.search(r"\b(\d{6})\b", body_text(mail.wait_for(address, count=2)))
    assert code is not None
    signed_in = public_idp.respond_to_auth_challenge(
        ClientId=client_id,
        ChallengeName="EMAIL_OTP",
        Session=mfa["Session"],
        ChallengeResponses={"USERNAME": "otto", "EMAIL_OTP_CODE": code.group(1)},
    )
    assert "AccessToken" in signed_in["AuthenticationResult"]


def test_a_pool_that_requires_mfa_offers_no_passwordless_first_factor(
    idp: Any, public_idp: Any, mail: MailServer
) -> None:
    """With MFA required, no user signs in with an emailed code first, MFA set up or not."""
    pool_id, client_id = _otp_pool(idp, "otp-mfa-required", "ON")
    address = "rhea@example.com"
    make_user(idp, pool_id, "rhea", {"email": address, "email_verified": "true"})
    parameters = {"USERNAME": "rhea", "PREFERRED_CHALLENGE": "EMAIL_OTP"}
    select = public_idp.initiate_auth(ClientId=client_id, AuthFlow="USER_AUTH", AuthParameters=parameters)
    assert select["ChallengeName"] == "SELECT_CHALLENGE"
    assert select["AvailableChallenges"] == ["PASSWORD", "PASSWORD_SRP"]
    assert mail.messages_to(address) == []
