"""Hook points in the service core, shaped like Cognito's Lambda triggers (so the triggers work can dispatch the
same events to Lambda-style functions).

PreSignUp ("Pre sign-up Lambda trigger" in the Cognito developer guide): called immediately before a new user
is created -- for federation, before the first sign-in of an upstream identity creates ``<Provider>_<subject>``
(``triggerSource`` ``PreSignUp_ExternalProvider``); for the pool's own users, before SignUp
(``PreSignUp_SignUp``) and AdminCreateUser (``PreSignUp_AdminCreateUser``) store one. The event is Cognito's::

    {"version": "1", "triggerSource": ..., "region": ..., "userPoolId": ..., "userName": ...,
     "callerContext": {"awsSdkVersion": ..., "clientId": ...},
     "request": {"userAttributes": {...}, "validationData": {}, "clientMetadata": {}},
     "response": {"autoConfirmUser": false, "autoVerifyEmail": false, "autoVerifyPhone": false}}

A hook may set the response flags, raise to refuse the sign-up (the caller gets
``UserLambdaValidationException: PreSignUp failed with error <message>.``, and the hosted UI sends that as the
``error_description``), or link the new identity to an existing user -- as a Cognito PreSignUp Lambda does by
calling AdminLinkProviderForUser -- with :meth:`PreSignUpContext.link_to_user` (or through the API itself: the
broker looks for a link again after the hooks ran).

Hooks come from three places, run in this order: the built-in :func:`link_by_verified_email` policy (acts only
for providers that turn it on), hooks registered in code with :meth:`HookRegistry.add_pre_sign_up`, and the
Python callables a pool names in the config file (``hooks: {pre_sign_up: "package.module:function"}``, loaded by
:func:`load_callable` when the config is applied -- never from the API).
"""

from __future__ import annotations

import asyncio
import copy
import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from gateway.errors import GatehouseError, InvalidLambdaResponseException, UserLambdaValidationException
from gateway.services.pools import PoolView
from gateway.services.triggers import SDK_UNKNOWN, TriggerService, load_handler
from gateway.storage.base import IdentityProviderRecord, Store
from providers.base import Identity

log = structlog.get_logger("gateway.hooks")

PRE_SIGN_UP_EXTERNAL_PROVIDER = "PreSignUp_ExternalProvider"
PRE_SIGN_UP_SIGN_UP = "PreSignUp_SignUp"
PRE_SIGN_UP_ADMIN_CREATE_USER = "PreSignUp_AdminCreateUser"
EXTERNAL_PROVIDER_STATUS = "EXTERNAL_PROVIDER"
UNCONFIRMED_STATUS = "UNCONFIRMED"
HOOK_SECONDS = 5.0


@dataclass(frozen=True)
class PreSignUpContext:
    """What a PreSignUp hook may use besides the event: the pool, the store (read it; write through services),
    and, for an external provider's sign-up, the provider, the verified upstream identity and a way to link it."""

    pool: PoolView
    store: Store
    provider: IdentityProviderRecord | None = None
    identity: Identity | None = None
    linker: Callable[[str], Awaitable[None]] | None = None

    async def link_to_user(self, username: str) -> None:
        """AdminLinkProviderForUser for the identity signing up: its sign-in lands on ``username`` instead of
        creating a new user (DestinationUser Cognito/``username``, SourceUser this provider's Cognito_Subject)."""
        if self.linker is None:
            raise ValueError("only an external provider's sign-up can be linked to a user")
        await self.linker(username)


class PreSignUpHook(Protocol):
    """A PreSignUp handler: reads the event, may change ``event["response"]``, may raise to refuse."""

    async def __call__(self, event: dict[str, Any], context: PreSignUpContext) -> None: ...


def pre_sign_up_event(
    pool: PoolView,
    trigger_source: str,
    username: str,
    attributes: Mapping[str, str],
    *,
    client_id: str | None = None,
    client_metadata: Mapping[str, str] | None = None,
    validation_data: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Cognito's PreSignUp event (common trigger parameters + request + response with its defaults)."""
    return {
        "version": "1",
        "triggerSource": trigger_source,
        "region": pool.id.split("_", 1)[0],
        "userPoolId": pool.id,
        "userName": username,
        "callerContext": {"awsSdkVersion": SDK_UNKNOWN, "clientId": client_id or "CLIENT_ID_NOT_APPLICABLE"},
        "request": {
            "userAttributes": dict(attributes),
            "validationData": dict(validation_data or {}),
            "clientMetadata": dict(client_metadata or {}),
        },
        "response": {"autoConfirmUser": False, "autoVerifyEmail": False, "autoVerifyPhone": False},
    }


@dataclass(frozen=True)
class PreSignUpOutcome:
    auto_confirm_user: bool
    auto_verify_email: bool
    auto_verify_phone: bool


class HookRegistry:
    """The hooks of a running Gatehouse: built once per process (the config file is applied in every process,
    so every process holds the same hooks)."""

    def __init__(self, *, timeout_seconds: float = HOOK_SECONDS, triggers: TriggerService | None = None) -> None:
        self.timeout_seconds = timeout_seconds
        # The pool's PreSignUp Lambda function (LambdaConfig.PreSignUp), invoked after the hooks.
        self.triggers = triggers
        self._pre_sign_up: list[PreSignUpHook] = [link_by_verified_email]
        self._pool_pre_sign_up: dict[str, list[PreSignUpHook]] = {}

    def add_pre_sign_up(self, hook: PreSignUpHook, *, pool_id: str | None = None) -> None:
        """Register a hook for every pool, or for one."""
        if pool_id is None:
            self._pre_sign_up.append(hook)
        else:
            self._pool_pre_sign_up.setdefault(pool_id, []).append(hook)

    def set_pool_pre_sign_up(self, pool_id: str, hooks: list[PreSignUpHook]) -> None:
        """The pool's configured hooks (the config file's, replacing any set before)."""
        self._pool_pre_sign_up[pool_id] = list(hooks)

    def pre_sign_up_hooks(self, pool_id: str) -> list[PreSignUpHook]:
        return [*self._pre_sign_up, *self._pool_pre_sign_up.get(pool_id, [])]

    async def run_pre_sign_up(self, event: dict[str, Any], context: PreSignUpContext) -> PreSignUpOutcome:
        """Run the pool's PreSignUp hooks in order. A hook that raises refuses the sign-up with Cognito's
        ``PreSignUp failed with error <message>.``"""
        for hook in self.pre_sign_up_hooks(context.pool.id):
            try:
                # Cognito gives a trigger 5 seconds; a sign-in must not hang on a hook either.
                async with asyncio.timeout(self.timeout_seconds):
                    await hook(event, context)
            except Exception as exc:
                if isinstance(exc, TimeoutError):
                    message = f"the hook did not answer within {self.timeout_seconds:g} seconds"
                else:
                    message = exc.message if isinstance(exc, GatehouseError) else str(exc)
                log.warning(
                    "hooks.pre_sign_up_refused",
                    pool=context.pool.id,
                    trigger=event.get("triggerSource"),
                    username=event.get("userName"),
                    hook=getattr(hook, "__qualname__", type(hook).__name__),
                    error=message,
                    error_type=type(exc).__name__,
                )
                raise UserLambdaValidationException(f"PreSignUp failed with error {message}.") from exc
        if self.triggers is not None and self.triggers.function(context.pool, "PreSignUp") is not None:
            # The function sees the event as the hooks left it, and its response is the one taken.
            event["response"] = {**event["response"], **await self.triggers.invoke(context.pool, "PreSignUp", event)}
        response = event.get("response")
        if not isinstance(response, Mapping):
            raise UserLambdaValidationException("PreSignUp failed with error the response is not an object.")
        flags = [response.get(name) for name in ("autoConfirmUser", "autoVerifyEmail", "autoVerifyPhone")]
        if any(flag is not None and not isinstance(flag, bool) for flag in flags):
            # The response's flags are booleans ("Pre sign-up Lambda trigger parameters"): "yes" or 1 is no answer.
            raise InvalidLambdaResponseException("Unrecognizable lambda output")
        return PreSignUpOutcome(
            auto_confirm_user=flags[0] is True, auto_verify_email=flags[1] is True, auto_verify_phone=flags[2] is True
        )

    async def native_pre_sign_up(
        self,
        pool: PoolView,
        store: Store,
        trigger_source: str,
        username: str,
        attributes: Mapping[str, str],
        *,
        client_id: str | None = None,
        client_metadata: Mapping[str, str] | None = None,
        validation_data: Mapping[str, str] | None = None,
    ) -> tuple[dict[str, str], bool]:
        """PreSignUp for SignUp (``PreSignUp_SignUp``) and AdminCreateUser (``PreSignUp_AdminCreateUser``): the
        attributes to create the user with (``email_verified`` / ``phone_number_verified`` set when the hooks
        auto-verify them) and whether they auto-confirm the user."""
        event = pre_sign_up_event(
            pool,
            trigger_source,
            username,
            attributes,
            client_id=client_id,
            client_metadata=client_metadata,
            validation_data=validation_data,
        )
        outcome = await self.run_pre_sign_up(event, PreSignUpContext(pool=pool, store=store))
        checked = dict(attributes)
        if outcome.auto_verify_email and checked.get("email"):
            checked["email_verified"] = "true"
        if outcome.auto_verify_phone and checked.get("phone_number"):
            checked["phone_number_verified"] = "true"
        return checked, outcome.auto_confirm_user


# --- the built-in policy ------------------------------------------------------------------------------------


async def link_by_verified_email(event: dict[str, Any], context: PreSignUpContext) -> None:
    """Link a first federated sign-in to the native user with the same email, for providers that turn it on
    (``link_by_verified_email``): only when the upstream asserts the email as verified, and only to a user whose
    own email is verified. Otherwise anyone who can get an upstream account showing a victim's address -- an
    unverified one, or one the victim never proved was theirs here -- would sign in as the victim.

    Both addresses must be plain ASCII and equal but for ASCII case: Unicode case folding maps other characters
    onto ASCII letters (the Kelvin sign, U+212A, lower-cases to "k"), so an upstream account for a look-alike
    address must never match. A disabled or unconfirmed native user is never linked: the sign-in goes on as a
    user of its own, and nothing is stored on a user that could not sign in."""
    provider, identity = context.provider, context.identity
    if event.get("triggerSource") != PRE_SIGN_UP_EXTERNAL_PROVIDER or provider is None or identity is None:
        return
    if not provider.settings.get("link_by_verified_email"):
        return
    pool = context.pool
    fields = {"pool": pool.id, "provider": provider.name}
    if not identity.email:
        log.info("hooks.link_by_email_skipped", reason="no_email", **fields)
        return
    if identity.email_verified is not True:
        log.warning("hooks.link_by_email_skipped", reason="upstream_email_unverified", **fields)
        return
    email = _plain_email(identity.email)
    if email is None:
        log.warning("hooks.link_by_email_skipped", reason="upstream_email_not_plain_ascii", **fields)
        return
    # The pool signs in with email (checked when the setting is made), so verified emails name one user.
    user = await context.store.get_user_by_alias(pool.id, "email", email)
    if user is None or user.status == EXTERNAL_PROVIDER_STATUS:
        log.info("hooks.link_by_email_skipped", reason="no_native_user", **fields)
        return
    if user.attributes.get("email_verified") != "true" or _plain_email(user.attributes.get("email") or "") != email:
        log.warning("hooks.link_by_email_skipped", reason="native_email_unverified", username=user.username, **fields)
        return
    if not user.enabled or user.status == UNCONFIRMED_STATUS:
        log.warning("hooks.link_by_email_skipped", reason="native_user_inactive", username=user.username, **fields)
        return
    await context.link_to_user(user.username)
    log.info("hooks.linked_by_email", username=user.username, **fields)


def _plain_email(address: str) -> str | None:
    """``address`` lower-cased when it is plain printable ASCII with no surrounding space, else None."""
    if not address.isascii() or not address.isprintable() or address != address.strip():
        return None
    return address.lower()


# --- hooks named in the config file --------------------------------------------------------------------------


def load_callable(spec: str) -> PreSignUpHook:
    """``"package.module:function"`` as a PreSignUp hook. The function takes ``(event, context)`` Lambda-style and
    may be ``async``; a plain function runs in a worker thread (it may block, e.g. call an HTTP service, and may
    link with boto3's AdminLinkProviderForUser as a Lambda would; ``context.link_to_user`` is for ``async`` ones).
    It may change the event in place or return the event (its ``response`` is taken). Raises ValueError."""
    function = load_handler(spec)

    async def hook(event: dict[str, Any], context: PreSignUpContext) -> None:
        if inspect.iscoroutinefunction(function):
            returned = await function(event, context)
        else:
            # A copy: a thread must not share the event the loop holds; what it did to the copy is taken after.
            copied = copy.deepcopy(event)
            returned = await asyncio.to_thread(function, copied, context)
            if returned is None:
                returned = copied
        if isinstance(returned, Mapping) and isinstance(returned.get("response"), Mapping):
            event["response"] = {**event["response"], **returned["response"]}

    hook.__qualname__ = spec
    return hook
