"""Python handlers that tests/e2e/test_lambda_local_functions.py names in its config file's
``server.lambda.functions``: run in Gatehouse's own process as the Lambda Python runtime would run them."""

from __future__ import annotations

import asyncio
import threading
import time
import warnings
from typing import Any


def pre_token(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Adds the function's own name and remaining time (the runtime's context object) to the ID token."""
    event["response"]["claimsOverrideDetails"] = {
        "claimsToAddOrOverride": {
            "handled_by": context.function_name,
            "time_left": str(context.get_remaining_time_in_millis() > 0),
            "source": event["triggerSource"],
        }
    }
    return event


def warns(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Answers as asked, with a Python warning on the way (as a library it uses may give one)."""
    warnings.warn("this trigger's library is out of date", UserWarning, stacklevel=1)
    return event


async def pre_authentication(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """An async handler: refuses the user named "blocked"."""
    await asyncio.sleep(0)
    if event["userName"] == "blocked":
        raise PermissionError("Blocked by the local handler")
    return event


def unmarshallable(event: dict[str, Any], context: Any) -> Any:
    return {"response": {}, "when": object()}


def sleepy(event: dict[str, Any], context: Any) -> dict[str, Any]:
    time.sleep(6)
    return event


def blocks_for_ever(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A handler whose thread never ends: given up at its deadline, and no reason for a stop to hang."""
    threading.Event().wait()
    return event


NOT_CALLABLE = 7


def exits(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A handler that ends its own process, as a script would: here it must end only its invocation."""
    raise SystemExit("handler gave up")


def cancels(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Raises what asyncio uses to cancel: from a handler it is only the handler's own failure."""
    raise asyncio.CancelledError("handler cancelled itself")


async def never_answers(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """An async handler that will not be cancelled: given up at its deadline all the same."""
    while True:
        try:
            await asyncio.sleep(1)
        except asyncio.CancelledError:
            continue


def too_deep(event: dict[str, Any], context: Any) -> Any:
    nested: Any = {}
    for _ in range(100_000):
        nested = {"n": nested}
    return nested
