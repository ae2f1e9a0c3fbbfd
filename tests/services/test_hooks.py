"""The PreSignUp hook point in the service core: the registry, hooks loaded from ``package.module:function``, and
the broker running them before a first federated sign-in creates its user (a real store, a fake Google)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from gateway.errors import InvalidParameterException, UserLambdaValidationException
from gateway.services.federation import FederationCallbackError
from gateway.services.hooks import (
    PRE_SIGN_UP_EXTERNAL_PROVIDER,
    HookRegistry,
    PreSignUpContext,
    load_callable,
    pre_sign_up_event,
)
from gateway.storage.base import UserRecord
from tests.fakes.oauth import FakeGoogle
from tests.services.test_federation import Broker, add_google, broker, sign_in_google

__all__ = ["broker"]  # a fixture shared with test_federation


def native_user(pool_id: str, username: str, email: str) -> UserRecord:
    return UserRecord(
        pool_id=pool_id,
        username=username,
        username_key=username,
        sub=f"sub-{username}",
        status="CONFIRMED",
        enabled=True,
        attributes={"email": email, "email_verified": "true"},
        password_hash=None,
        created_at=0.0,
        updated_at=0.0,
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no-colon", "expected package.module:function"),
        ("os.path:join; import os", "expected package.module:function"),
        ("tests.e2e.no_such_module:f", "cannot import"),
        ("tests.e2e.presignup_hooks:NOT_CALLABLE", "is not a callable"),
        ("tests.e2e.presignup_hooks:missing", "is not a callable"),
    ],
)
def test_load_callable_refuses_what_it_cannot_run(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_callable(spec)


async def test_a_plain_function_runs_and_its_response_is_taken(broker: Broker) -> None:
    hook = load_callable("tests.e2e.presignup_hooks:corp_only")
    event = pre_sign_up_event(broker.pool, PRE_SIGN_UP_EXTERNAL_PROVIDER, "Corp_1", {"email": "a@corp.example"})
    await hook(event, PreSignUpContext(pool=broker.pool, store=broker.store))
    assert event["response"]["autoVerifyEmail"] is True
    refused = pre_sign_up_event(broker.pool, PRE_SIGN_UP_EXTERNAL_PROVIDER, "Corp_2", {"email": "a@evil.example"})
    registry = HookRegistry()
    registry.add_pre_sign_up(hook, pool_id=broker.pool.id)
    with pytest.raises(UserLambdaValidationException) as error:
        await registry.run_pre_sign_up(refused, PreSignUpContext(pool=broker.pool, store=broker.store))
    assert error.value.message == "PreSignUp failed with error Only corp.example accounts may sign up."
    # Another pool does not run this pool's hook.
    assert hook in registry.pre_sign_up_hooks(broker.pool.id)
    assert hook not in registry.pre_sign_up_hooks("us-east-1_other")


async def test_an_async_hook_links_the_first_sign_in_to_a_native_user(broker: Broker, google: FakeGoogle) -> None:
    await add_google(broker, google)
    await broker.store.create_user(native_user(broker.pool.id, "ann", "ann@corp.example"))
    seen: list[dict[str, Any]] = []

    async def link_to_ann(event: dict[str, Any], context: PreSignUpContext) -> None:
        seen.append(json.loads(json.dumps(event)))
        await context.link_to_user("ann")

    broker.fed.hooks.add_pre_sign_up(link_to_ann)
    result, _ = await sign_in_google(broker)
    user = result.user  # type: ignore[attr-defined]
    assert user.username == "ann" and user.sub == "sub-ann"
    assert [i["providerName"] for i in json.loads(user.attributes["identities"])] == ["Google"]
    assert [u.username for u in await broker.users()] == ["ann"]
    (event,) = seen
    assert event["triggerSource"] == "PreSignUp_ExternalProvider"
    assert event["userName"] == "Google_110169484474386276334"
    assert event["request"]["userAttributes"]["email"] == "ann@gmail.example"
    # Linked now: the next sign-in is no sign-up and asks no hook.
    await sign_in_google(broker)
    assert len(seen) == 1


async def test_a_refusing_hook_stores_nothing(broker: Broker, google: FakeGoogle) -> None:
    await add_google(broker, google)

    async def refuse(event: dict[str, Any], context: PreSignUpContext) -> None:
        raise RuntimeError("closed for sign-ups")

    broker.fed.hooks.add_pre_sign_up(refuse)
    with pytest.raises(FederationCallbackError) as failed:
        await sign_in_google(broker)
    assert isinstance(failed.value.error, UserLambdaValidationException)
    assert failed.value.error.message == "PreSignUp failed with error closed for sign-ups."
    assert await broker.users() == []


async def test_verified_email_linking_needs_a_pool_that_signs_in_with_email(broker: Broker, google: FakeGoogle) -> None:
    """Without email as a sign-in name, emails are not unique: "the user with this email" is not one user."""
    await add_google(broker, google)
    with pytest.raises(InvalidParameterException, match="signs in with email"):
        await broker.idps.update(broker.pool.id, "Google", {"gatehouse_link_by_verified_email": "true"})
    record = await broker.idps.get(broker.pool.id, "Google")
    assert "link_by_verified_email" not in record.settings


async def test_a_hook_that_hangs_is_cut_off(broker: Broker) -> None:
    async def hang(event: dict[str, Any], context: PreSignUpContext) -> None:
        await asyncio.sleep(10)

    assert HookRegistry().timeout_seconds == 5.0  # as Cognito's trigger timeout
    registry = HookRegistry(timeout_seconds=0.05)
    registry.add_pre_sign_up(hang)
    event = pre_sign_up_event(broker.pool, "PreSignUp_SignUp", "x", {})
    with pytest.raises(UserLambdaValidationException) as error:
        await registry.run_pre_sign_up(event, PreSignUpContext(pool=broker.pool, store=broker.store))
    assert error.value.message == "PreSignUp failed with error the hook did not answer within 0.05 seconds."
