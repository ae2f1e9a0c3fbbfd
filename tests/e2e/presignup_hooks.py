"""PreSignUp hooks that tests/e2e/test_federation_hooks.py names in its config file (loaded by the server).

``corp_only`` is a plain function, as a Lambda handler is: it runs in a worker thread, writes each event it gets
to ``$GATEHOUSE_TEST_HOOK_EVENTS`` (one JSON line each, so the test can check the event's shape), refuses
anyone whose email is not at corp.example, auto-verifies the email of the others and auto-confirms self
sign-ups."""

from __future__ import annotations

import json
import os
from typing import Any


def corp_only(event: dict[str, Any], context: Any) -> dict[str, Any]:
    path = os.environ.get("GATEHOUSE_TEST_HOOK_EVENTS")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(event) + "\n")
    email = event["request"]["userAttributes"].get("email", "")
    if not email.endswith("@corp.example"):
        raise ValueError("Only corp.example accounts may sign up")
    event["response"]["autoVerifyEmail"] = True
    if event["triggerSource"] == "PreSignUp_SignUp":
        event["response"]["autoConfirmUser"] = True
    return event


NOT_CALLABLE = 42
