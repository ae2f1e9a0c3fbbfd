"""A per-user limit on one-time codes sent by SMS and email, against message flooding and SMS pumping.

Every code a user can make Gatehouse send on request -- ResendConfirmationCode, ForgotPassword,
GetUserAttributeVerificationCode, passwordless EMAIL_OTP / SMS_OTP sign-in codes, SMS_MFA and EMAIL_OTP MFA
codes -- first takes one send from the user's budget: at most ``max_codes`` codes per ``window_seconds``, all
kinds together, counted in the store (:meth:`Store.take_code_send`) so the limit holds across every gateway
process. Cognito keeps per-user quotas of this kind ("Quotas in Amazon Cognito": per-user limits such as five
ChangePassword calls an hour) and refuses past them with ``LimitExceededException`` "Attempt limit exceeded,
please try after some time."; here the default is 5 codes per 15 minutes.

The refusal is LimitExceededException where botocore's model lets the operation raise it (ForgotPassword,
ResendConfirmationCode, GetUserAttributeVerificationCode, SignUp), and TooManyRequestsException for the sign-in
operations (InitiateAuth, RespondToAuthChallenge and their admin forms) and UpdateUserAttributes, whose models
have no LimitExceededException. A refused request sends nothing and leaves the code already sent valid. A code
sent while the caller waits is counted before it goes and given back if its delivery fails
(:meth:`CodeSendLimiter.give_back`): a failed delivery spends nothing of the budget, and the user may try again
once the mail server or SMS gateway is back. A user's
own UpdateUserAttributes that sends a code to a new email or phone number takes from the same budget, before the
attribute changes (so a refusal changes nothing): the user picks the destination, and without the limit could
make Gatehouse mail or text any address without end. Codes that an administrator's call sends (AdminCreateUser's
invitation, AdminResetUserPassword, AdminUpdateUserAttributes) are not limited: they are the admin's to make.

For an unknown user whose app client hides user existence, the name asked for is limited alike
(:func:`unknown_user_key`), so the limit does not tell known names from unknown ones.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

import structlog

from gateway.errors import LimitExceededException, TooManyRequestsException
from gateway.storage.base import Store

if TYPE_CHECKING:
    from gateway.metrics import Metrics

__all__ = ["CodeSendLimitSettings", "CodeSendLimiter", "unknown_user_key"]

log = structlog.get_logger("gateway.code_limits")

# Purposes whose operations can answer LimitExceededException (botocore's model); others get TooManyRequests.
_LIMIT_EXCEEDED_PURPOSES = ("sign_up", "forgot_password", "attribute:")
LIMIT_MESSAGE = "Attempt limit exceeded, please try after some time."


@dataclass(frozen=True)
class CodeSendLimitSettings:
    """At most ``max_codes`` codes sent to one user per ``window_seconds``; 0 turns the limit off."""

    max_codes: int = 5
    window_seconds: float = 900.0


def unknown_user_key(name: str) -> str:
    """The key an unknown user name is counted under: never a real username key (those have no ``#``)."""
    return "#unknown#" + hashlib.sha256(name.strip().lower().encode()).hexdigest()[:32]


class CodeSendLimiter:
    """Takes one send from a user's budget, or refuses."""

    def __init__(
        self, store: Store, settings: CodeSendLimitSettings, metrics: Metrics, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock
        self._refused = metrics.counter(
            "gatehouse_code_sends_refused",
            "One-time codes not sent because the user reached the per-user send limit, by purpose.",
            ["purpose"],
        )
        self._metrics = metrics

    @property
    def settings(self) -> CodeSendLimitSettings:
        return self._settings

    async def take(self, pool_id: str, key: str, purpose: str) -> float | None:
        """Count one code for ``purpose`` to the user ``key``, or raise the operation's limit error. The send's
        ticket (for :meth:`give_back`), or None when no limit is kept."""
        limit = self._settings.max_codes
        if limit <= 0:
            return None
        now = self._clock()
        if not await self._store.take_code_send(pool_id, key, now, now + self._settings.window_seconds, limit):
            self._refuse(pool_id, purpose, limit)
        return now

    async def give_back(self, pool_id: str, key: str, ticket: float | None) -> None:
        """Uncount the send :meth:`take` counted under ``ticket``: its code was never delivered. Taken first and
        given back on failure, the limit stays exact under concurrent requests (of racing ones at most the limit
        send), and a failed delivery spends nothing."""
        if ticket is not None:
            await self._store.return_code_send(pool_id, key, ticket)

    def _refuse(self, pool_id: str, purpose: str, limit: int) -> NoReturn:
        kind = purpose.split(":", 1)[0]
        self._metrics.inc(self._refused, purpose=kind)
        log.warning("code.send_limited", pool=pool_id, purpose=purpose, limit=limit)
        if purpose.startswith(_LIMIT_EXCEEDED_PURPOSES):
            raise LimitExceededException(LIMIT_MESSAGE)
        raise TooManyRequestsException(LIMIT_MESSAGE)
