"""AdminGetUserAuthFactors and AdminDeleteSoftwareToken through boto3 against a real server.

AdminGetUserAuthFactors answers as GetUserAuthFactors does, for a user the admin names. AdminDeleteSoftwareToken
takes a user's TOTP factor away (the secret, TOTP in their MFA settings and preference): with MFA OPTIONAL the
next sign-in asks no code, with MFA ON it asks for MFA_SETUP, and the user can enrol a new token whose codes
are the only ones accepted.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.e2e.test_mfa_totp import (
    answer_totp,
    code_at,
    enrol,
    error_of,
    make_pool,
    make_user,
    password_sign_in,
    settled_step,
    tokens_of,
)


def _factors(idp: Any, pool_id: str, username: str) -> dict[str, Any]:
    answer = dict(idp.admin_get_user_auth_factors(UserPoolId=pool_id, Username=username))
    answer.pop("ResponseMetadata")
    return answer


def _enrolled(idp: Any, public_idp: Any, pool_id: str, client_id: str, username: str) -> tuple[str, int]:
    """A user with a verified, preferred software token (signed in with only a password to enrol it)."""
    make_user(idp, pool_id, username)
    step = settled_step()
    first = tokens_of(password_sign_in(public_idp, client_id, username))
    return enrol(public_idp, first["AccessToken"], step), step


def test_admin_get_user_auth_factors_matches_the_users_own_view(idp: Any, public_idp: Any) -> None:
    pool_id, client_id = make_pool(idp, "admin-factors", "OPTIONAL")
    make_user(idp, pool_id, "plain")
    plain = _factors(idp, pool_id, "plain")
    assert plain["Username"] == "plain"
    assert "PreferredMfaSetting" not in plain and "UserMFASettingList" not in plain
    assert isinstance(plain["ConfiguredUserAuthFactors"], list)

    _enrolled(idp, public_idp, pool_id, client_id, "tina")
    admin_view = _factors(idp, pool_id, "tina")
    assert admin_view["PreferredMfaSetting"] == "SOFTWARE_TOKEN_MFA"
    assert admin_view["UserMFASettingList"] == ["SOFTWARE_TOKEN_MFA"]
    # The same answer the user gets with their own access token.
    challenge = password_sign_in(public_idp, client_id, "tina")
    assert challenge["ChallengeName"] == "SOFTWARE_TOKEN_MFA"
    secret_user = idp.admin_get_user(UserPoolId=pool_id, Username="tina")
    assert secret_user["PreferredMfaSetting"] == "SOFTWARE_TOKEN_MFA"


def test_admin_get_user_auth_factors_equals_get_user_auth_factors(idp: Any, public_idp: Any) -> None:
    pool_id, client_id = make_pool(idp, "admin-factors-same", None)
    make_user(idp, pool_id, "una")
    tokens = tokens_of(password_sign_in(public_idp, client_id, "una"))
    own = dict(public_idp.get_user_auth_factors(AccessToken=tokens["AccessToken"]))
    own.pop("ResponseMetadata")
    assert _factors(idp, pool_id, "una") == own


def test_delete_software_token_then_sign_in_asks_no_code_and_the_user_can_enrol_again(
    idp: Any, public_idp: Any
) -> None:
    pool_id, client_id = make_pool(idp, "admin-delete-totp", "OPTIONAL")
    old_secret, step = _enrolled(idp, public_idp, pool_id, client_id, "vera")
    assert password_sign_in(public_idp, client_id, "vera")["ChallengeName"] == "SOFTWARE_TOKEN_MFA"

    assert (
        idp.admin_delete_software_token(UserPoolId=pool_id, Username="vera")["ResponseMetadata"]["HTTPStatusCode"]
        == 200
    )
    after = _factors(idp, pool_id, "vera")
    assert "PreferredMfaSetting" not in after and "SOFTWARE_TOKEN_MFA" not in after.get("UserMFASettingList", [])
    user = idp.admin_get_user(UserPoolId=pool_id, Username="vera")
    assert "PreferredMfaSetting" not in user and not user.get("UserMFASettingList")

    # MFA is OPTIONAL and the user has no factor left: the password alone signs in.
    tokens = tokens_of(password_sign_in(public_idp, client_id, "vera"))
    # TOTP can't be turned on again without a new verified token.
    with pytest.raises(ClientError) as no_token:
        public_idp.set_user_mfa_preference(
            AccessToken=tokens["AccessToken"], SoftwareTokenMfaSettings={"Enabled": True, "PreferredMfa": True}
        )
    assert error_of(no_token)[0] == "InvalidParameterException"

    # A new token: a new secret, and only its codes are accepted from now on.
    new_secret = enrol(public_idp, tokens["AccessToken"], step)
    assert new_secret != old_secret
    challenge = password_sign_in(public_idp, client_id, "vera")
    assert challenge["ChallengeName"] == "SOFTWARE_TOKEN_MFA"
    with pytest.raises(ClientError) as old_code:
        answer_totp(public_idp, client_id, challenge["Session"], "vera", code_at(old_secret, step + 1))
    assert error_of(old_code)[0] == "CodeMismatchException"
    challenge = password_sign_in(public_idp, client_id, "vera")
    tokens_of(answer_totp(public_idp, client_id, challenge["Session"], "vera", code_at(new_secret, step + 1)))


def test_delete_software_token_in_a_pool_that_requires_mfa_asks_for_setup(idp: Any, public_idp: Any) -> None:
    pool_id, client_id = make_pool(idp, "admin-delete-totp-on", "OPTIONAL")
    _enrolled(idp, public_idp, pool_id, client_id, "wes")
    idp.set_user_pool_mfa_config(
        UserPoolId=pool_id, MfaConfiguration="ON", SoftwareTokenMfaConfiguration={"Enabled": True}
    )
    idp.admin_delete_software_token(UserPoolId=pool_id, Username="wes")
    answer = password_sign_in(public_idp, client_id, "wes")
    assert answer["ChallengeName"] == "MFA_SETUP" and "AuthenticationResult" not in answer


def test_a_sign_in_waiting_for_the_code_fails_once_the_token_is_deleted(idp: Any, public_idp: Any) -> None:
    pool_id, client_id = make_pool(idp, "admin-delete-totp-race", "OPTIONAL")
    secret, step = _enrolled(idp, public_idp, pool_id, client_id, "xia")
    challenge = password_sign_in(public_idp, client_id, "xia")
    assert challenge["ChallengeName"] == "SOFTWARE_TOKEN_MFA"
    idp.admin_delete_software_token(UserPoolId=pool_id, Username="xia")
    with pytest.raises(ClientError) as refused:
        answer_totp(public_idp, client_id, challenge["Session"], "xia", code_at(secret, step + 1))
    assert error_of(refused)[0] == "SoftwareTokenMFANotFoundException"
    # The refused answer signed nobody in; the password alone now does (MFA is OPTIONAL).
    tokens_of(password_sign_in(public_idp, client_id, "xia"))


def test_a_pending_token_is_deleted_too(idp: Any, public_idp: Any) -> None:
    pool_id, client_id = make_pool(idp, "admin-delete-pending", "OPTIONAL")
    make_user(idp, pool_id, "yan")
    step = settled_step()
    tokens = tokens_of(password_sign_in(public_idp, client_id, "yan"))
    pending = str(public_idp.associate_software_token(AccessToken=tokens["AccessToken"])["SecretCode"])
    # A user without a verified token: deleting succeeds and changes nothing else.
    idp.admin_delete_software_token(UserPoolId=pool_id, Username="yan")
    with pytest.raises(ClientError) as nothing_pending:
        public_idp.verify_software_token(AccessToken=tokens["AccessToken"], UserCode=code_at(pending, step))
    assert error_of(nothing_pending)[0] == "InvalidParameterException"
    assert "PreferredMfaSetting" not in _factors(idp, pool_id, "yan")
    tokens_of(password_sign_in(public_idp, client_id, "yan"))


def test_errors_and_unsigned_calls(idp: Any, public_idp: Any) -> None:
    pool_id, client_id = make_pool(idp, "admin-delete-errors", "OPTIONAL")
    secret, step = _enrolled(idp, public_idp, pool_id, client_id, "zed")
    for call in (idp.admin_delete_software_token, idp.admin_get_user_auth_factors):
        with pytest.raises(ClientError) as no_user:
            call(UserPoolId=pool_id, Username="nobody")
        assert error_of(no_user)[0] == "UserNotFoundException"
        with pytest.raises(ClientError) as no_pool:
            call(UserPoolId="us-east-1_NoSuchPol", Username="zed")
        assert error_of(no_pool)[0] == "ResourceNotFoundException"
        with pytest.raises(ClientError) as malformed:
            call(UserPoolId="not a pool id", Username="zed")
        assert error_of(malformed)[0] == "InvalidParameterException"
        with pytest.raises(ClientError) as unsigned:
            getattr(public_idp, call.__name__)(UserPoolId=pool_id, Username="zed")
        assert unsigned.value.response["ResponseMetadata"]["HTTPStatusCode"] in (400, 403)
    # None of the refused calls took the token away.
    assert _factors(idp, pool_id, "zed")["PreferredMfaSetting"] == "SOFTWARE_TOKEN_MFA"
    challenge = password_sign_in(public_idp, client_id, "zed")
    tokens_of(answer_totp(public_idp, client_id, challenge["Session"], "zed", code_at(secret, step + 1)))
