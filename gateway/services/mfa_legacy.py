"""Cognito's legacy MFA settings: ``MFAOptions`` (SetUserSettings, AdminSetUserSettings, GetUser, AdminGetUser).

Before SetUserMFAPreference, SDKs turned SMS MFA on for a user with SetUserSettings and a list of
``MFAOptionType`` (``{"DeliveryMedium": "SMS", "AttributeName": "phone_number"}``); older clients still do, and
GetUser / AdminGetUser still report the list. Here the list is another view of the same MFA preferences
(:mod:`gateway.services.mfa`): an ``SMS``/``phone_number`` option is SMS_MFA, an ``EMAIL``/``email`` option
EMAIL_OTP (Cognito's email MFA). The list a call sends is the whole legacy set: a factor it names is turned on,
an SMS or email factor it leaves out is turned off (an empty list turns both off, as in Cognito). Software
tokens are not part of the legacy settings and are never touched. The same checks as SetUserMFAPreference
apply: the pool must offer the factor, the user must have the attribute, and a pool that requires MFA keeps
its factors on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gateway.errors import InvalidParameterException
from gateway.services.mfa import EMAIL_OTP, PREFERENCE_MEMBERS, SMS_MFA, MfaService, mfa_settings
from gateway.services.pools import PoolView
from gateway.storage.base import UserRecord

# (DeliveryMedium, AttributeName) of each legacy option, and the factor it stands for.
LEGACY_OPTIONS: dict[tuple[str, str], str] = {("SMS", "phone_number"): SMS_MFA, ("EMAIL", "email"): EMAIL_OTP}
_OPTION_OF = {factor: option for option, factor in LEGACY_OPTIONS.items()}


def mfa_options(user: UserRecord) -> dict[str, Any]:
    """GetUser / AdminGetUser's ``MFAOptions``: one entry per SMS or email factor the user has on; absent when
    there is none, as Cognito leaves it out."""
    enabled = mfa_settings(user)["enabled"]
    options = [
        {"DeliveryMedium": _OPTION_OF[f][0], "AttributeName": _OPTION_OF[f][1]} for f in enabled if f in _OPTION_OF
    ]
    return {"MFAOptions": options} if options else {}


def _factors(options: Sequence[Mapping[str, Any]]) -> set[str]:
    factors: set[str] = set()
    for option in options:
        medium, attribute = option.get("DeliveryMedium"), option.get("AttributeName")
        factor = LEGACY_OPTIONS.get((str(medium), str(attribute)))
        if factor is None:
            raise InvalidParameterException(
                "Invalid MFAOptions: DeliveryMedium SMS goes with AttributeName phone_number, EMAIL with email."
            )
        factors.add(factor)
    return factors


async def set_user_settings(
    mfa: MfaService, pool: PoolView, user: UserRecord, options: Sequence[Mapping[str, Any]]
) -> UserRecord:
    """SetUserSettings / AdminSetUserSettings: the legacy options as SetUserMFAPreference settings."""
    wanted = _factors(options)
    current = set(mfa_settings(user)["enabled"])
    request: dict[str, Any] = {}
    for factor in (SMS_MFA, EMAIL_OTP):
        if factor in wanted:
            request[PREFERENCE_MEMBERS[factor]] = {"Enabled": True}
        elif factor in current:
            # Only factors that are on are turned off, so a pool that requires MFA refuses only a real change.
            request[PREFERENCE_MEMBERS[factor]] = {"Enabled": False}
    return await mfa.set_preference(pool, user, request)
