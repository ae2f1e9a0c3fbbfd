"""SetUserSettings and AdminSetUserSettings on the JSON wire: the legacy ``MFAOptions`` of a user
(see :mod:`gateway.services.mfa_legacy`), registered in the user pools API's operation table."""

from __future__ import annotations

from typing import Any

from gateway.api.awsjson import Call
from gateway.api.cognito_idp import admin_user, operation, token_user
from gateway.services.mfa_legacy import set_user_settings


@operation
async def SetUserSettings(call: Call) -> dict[str, Any]:
    pool, user, _ = await token_user(call)
    await set_user_settings(call.services.auth.mfa, pool, user, call.params.get("MFAOptions") or [])
    return {}


@operation
async def AdminSetUserSettings(call: Call) -> dict[str, Any]:
    pool, user = await admin_user(call)
    await set_user_settings(call.services.auth.mfa, pool, user, call.params.get("MFAOptions") or [])
    return {}
