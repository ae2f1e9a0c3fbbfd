"""What an unknown name is told under PreventUserExistenceErrors, against a running Gatehouse over boto3: USER_AUTH
offers it a selection of the pool's challenges that is the same at every try and shaped like a user's ("Amazon
Cognito responds with a random selection from the challenge types that the user pool allows", Managing user
existence error responses), and the masked destination of its codes is one, whichever operation shows it, as a
user's address is."""

from __future__ import annotations

import re
from typing import Any

import pytest
from botocore.exceptions import ClientError

PASSWORD = "Correct-horse-battery-1"
FLOWS = ["ALLOW_USER_AUTH", "ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
UNKNOWN = [f"stranger{i:02d}" for i in range(40)]


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = exc.value.response["Error"]
    return str(error["Code"]), str(error.get("Message", ""))


def hiding_pool(idp: Any, name: str, factors: list[str], **extra: Any) -> tuple[str, str]:
    """A pool allowing ``factors`` first, and a client that prevents user existence errors."""
    policies = {"SignInPolicy": {"AllowedFirstAuthFactors": factors}}
    pool_id = str(idp.create_user_pool(PoolName=name, Policies=policies, **extra)["UserPool"]["Id"])
    client = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=FLOWS, PreventUserExistenceErrors="ENABLED"
    )
    return pool_id, str(client["UserPoolClient"]["ClientId"])


def make_user(idp: Any, pool_id: str, username: str, attributes: dict[str, str] | None = None) -> None:
    listed = [{"Name": k, "Value": v} for k, v in (attributes or {}).items()]
    idp.admin_create_user(UserPoolId=pool_id, Username=username, UserAttributes=listed, MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True)


def user_auth(public_idp: Any, client_id: str, **parameters: str) -> dict[str, Any]:
    return dict(public_idp.initiate_auth(ClientId=client_id, AuthFlow="USER_AUTH", AuthParameters=parameters))


def offered(public_idp: Any, client_id: str, name: str) -> tuple[str, ...]:
    answer = user_auth(public_idp, client_id, USERNAME=name)
    assert answer["ChallengeName"] == "SELECT_CHALLENGE"
    return tuple(answer["AvailableChallenges"])


def test_an_unknown_name_is_offered_a_stable_selection_shaped_like_a_users(idp: Any, public_idp: Any) -> None:
    pool_id, client_id = hiding_pool(
        idp, "decoy-choices", ["PASSWORD", "EMAIL_OTP", "WEB_AUTHN"], AutoVerifiedAttributes=["email"]
    )
    make_user(idp, pool_id, "plain", {"email": "plain@example.com", "email_verified": "true"})
    make_user(idp, pool_id, "noaddr")
    users = {name: offered(public_idp, client_id, name) for name in ("plain", "noaddr")}
    assert users == {"plain": ("PASSWORD", "PASSWORD_SRP", "EMAIL_OTP"), "noaddr": ("PASSWORD", "PASSWORD_SRP")}

    decoys = {name: offered(public_idp, client_id, name) for name in UNKNOWN}
    for name, choices in decoys.items():
        # The same at every try, as a user's list is; a password always comes as PASSWORD and PASSWORD_SRP.
        assert offered(public_idp, client_id, name) == choices
        assert choices[:2] == ("PASSWORD", "PASSWORD_SRP")
    seen = set(decoys.values())
    assert set(users.values()) <= seen
    assert len(seen) == 4, seen  # every selection of EMAIL_OTP and WEB_AUTHN turns up among forty names

    # A factor missing from an unknown name's list is refused as for a user who lacks it.
    lacking = next(name for name, choices in decoys.items() if choices == users["noaddr"])
    for name in ("noaddr", lacking):
        preferred = user_auth(public_idp, client_id, USERNAME=name, PREFERRED_CHALLENGE="EMAIL_OTP")
        assert (preferred["ChallengeName"], preferred["AvailableChallenges"]) == (
            "SELECT_CHALLENGE",
            ["PASSWORD", "PASSWORD_SRP"],
        )
        for answer in ("EMAIL_OTP", "WEB_AUTHN"):
            select = user_auth(public_idp, client_id, USERNAME=name)
            with pytest.raises(ClientError) as exc:
                public_idp.respond_to_auth_challenge(
                    ClientId=client_id,
                    ChallengeName="SELECT_CHALLENGE",
                    Session=select["Session"],
                    ChallengeResponses={"USERNAME": name, "ANSWER": answer},
                )
            refused = ("InvalidParameterException", f"{answer} is not an available challenge for this user.")
            assert error_of(exc) == refused
    # ... and one in it starts, as a user's does.
    having = next(name for name, choices in decoys.items() if "EMAIL_OTP" in choices)
    started = user_auth(public_idp, client_id, USERNAME=having, PREFERRED_CHALLENGE="EMAIL_OTP")
    assert started["ChallengeName"] == "EMAIL_OTP"

    # A name that is an email address is offered that address's code, as a user found by it would be.
    for i in range(8):
        assert "EMAIL_OTP" in offered(public_idp, client_id, f"stranger{i}@example.com")


def test_an_unknown_name_in_a_pool_that_requires_mfa_is_offered_what_users_are(idp: Any, public_idp: Any) -> None:
    """No passwordless first factor goes with required MFA: a user is offered passwords only, and so is every
    unknown name."""
    pool_id, client_id = hiding_pool(idp, "decoy-mfa", ["PASSWORD", "EMAIL_OTP"], AutoVerifiedAttributes=["email"])
    idp.set_user_pool_mfa_config(
        UserPoolId=pool_id, MfaConfiguration="ON", SoftwareTokenMfaConfiguration={"Enabled": True}
    )
    make_user(idp, pool_id, "plain", {"email": "plain@example.com", "email_verified": "true"})
    assert offered(public_idp, client_id, "plain") == ("PASSWORD", "PASSWORD_SRP")
    for name in [*UNKNOWN[:12], "stranger@example.com"]:
        assert offered(public_idp, client_id, name) == ("PASSWORD", "PASSWORD_SRP")


def test_an_unknown_name_has_one_destination_everywhere(idp: Any, public_idp: Any) -> None:
    """ForgotPassword, ResendConfirmationCode and USER_AUTH's EMAIL_OTP and SMS_OTP show an unknown name the same
    masked address, as they show a user's own; the spellings of a name in a pool that ignores case share it."""
    pool_id, client_id = hiding_pool(
        idp,
        "decoy-email",
        ["PASSWORD", "EMAIL_OTP"],
        AutoVerifiedAttributes=["email"],
        UsernameConfiguration={"CaseSensitive": False},
    )
    make_user(idp, pool_id, "una", {"email": "una@example.com", "email_verified": "true"})
    names = [name for name in UNKNOWN if "EMAIL_OTP" in offered(public_idp, client_id, name)][:6]
    assert len(names) >= 3
    for name in ["una", *names]:
        forgot = public_idp.forgot_password(ClientId=client_id, Username=name)["CodeDeliveryDetails"]
        otp = user_auth(public_idp, client_id, USERNAME=name, PREFERRED_CHALLENGE="EMAIL_OTP")["ChallengeParameters"]
        assert re.fullmatch(r"[a-z]\*\*\*@[a-z]\*\*\*", forgot["Destination"])
        assert otp == {"CODE_DELIVERY_DELIVERY_MEDIUM": "EMAIL", "CODE_DELIVERY_DESTINATION": forgot["Destination"]}
        if name != "una":
            resent = public_idp.resend_confirmation_code(ClientId=client_id, Username=name)["CodeDeliveryDetails"]
            assert resent == forgot
            upper = public_idp.forgot_password(ClientId=client_id, Username=name.upper())["CodeDeliveryDetails"]
            assert upper == forgot

    pool_id, client_id = hiding_pool(
        idp, "decoy-phone", ["PASSWORD", "SMS_OTP"], AutoVerifiedAttributes=["phone_number"]
    )
    names = [name for name in UNKNOWN if "SMS_OTP" in offered(public_idp, client_id, name)][:6]
    assert len(names) >= 3
    for name in names:
        forgot = public_idp.forgot_password(ClientId=client_id, Username=name)["CodeDeliveryDetails"]
        resent = public_idp.resend_confirmation_code(ClientId=client_id, Username=name)["CodeDeliveryDetails"]
        otp = user_auth(public_idp, client_id, USERNAME=name, PREFERRED_CHALLENGE="SMS_OTP")["ChallengeParameters"]
        assert forgot == resent and forgot["DeliveryMedium"] == "SMS"
        assert re.fullmatch(r"\+\*{7}\d{4}", forgot["Destination"])
        assert otp == {"CODE_DELIVERY_DELIVERY_MEDIUM": "SMS", "CODE_DELIVERY_DESTINATION": forgot["Destination"]}


def test_an_unknown_names_codes_and_its_reset_medium_agree(idp: Any, public_idp: Any) -> None:
    """The addresses an unknown name stands for are one profile: offered SMS_OTP, its password reset goes by SMS
    as a user's with a verified phone does (SMS before email when the pool sets no AccountRecoverySetting);
    offered no SMS_OTP, by email, as for a user without a phone."""
    pool_id, client_id = hiding_pool(
        idp, "decoy-profile", ["PASSWORD", "EMAIL_OTP", "SMS_OTP"], AutoVerifiedAttributes=["email"]
    )
    make_user(idp, pool_id, "both", {"email": "both@example.com", "email_verified": "true",
                                     "phone_number": "+15555551111", "phone_number_verified": "true"})  # fmt: skip
    make_user(idp, pool_id, "mailonly", {"email": "mailonly@example.com", "email_verified": "true"})

    def medium(name: str) -> str:
        return str(
            public_idp.forgot_password(ClientId=client_id, Username=name)["CodeDeliveryDetails"]["DeliveryMedium"]
        )

    assert (offered(public_idp, client_id, "both")[-1], medium("both")) == ("SMS_OTP", "SMS")
    assert ("SMS_OTP" in offered(public_idp, client_id, "mailonly"), medium("mailonly")) == (False, "EMAIL")
    kinds = set()
    for name in UNKNOWN:
        texted = "SMS_OTP" in offered(public_idp, client_id, name)
        assert medium(name) == ("SMS" if texted else "EMAIL"), name
        kinds.add(texted)
    assert kinds == {True, False}
