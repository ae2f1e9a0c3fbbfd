"""User pool trigger functions for examples/triggers: plain Lambda-style Python handlers.

The same code runs as an AWS Lambda function (Python runtime, handler ``handlers.pre_sign_up`` and so on) or, as
here, inside Gatehouse's own process, named by the config file's ``server.lambda.functions``. Each takes
Cognito's event and returns it with its ``response`` filled in.
"""

from __future__ import annotations

from typing import Any

ALLOWED_DOMAIN = "example.com"
# Which tenant each email domain belongs to; a real function would read a database.
TENANTS = {"example.com": "acme"}


def pre_sign_up(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Only addresses at example.com may sign up; those are confirmed and verified at once."""
    email = event["request"]["userAttributes"].get("email", "")
    if not email.endswith("@" + ALLOWED_DOMAIN):
        raise ValueError(f"Sign-up is open to {ALLOWED_DOMAIN} addresses only")
    event["response"]["autoConfirmUser"] = True
    event["response"]["autoVerifyEmail"] = True
    return event


def pre_token_generation(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A version 2 event: the user's tenant in both tokens, a roles list in the access token."""
    email = event["request"]["userAttributes"].get("email", "")
    tenant = TENANTS.get(email.rpartition("@")[2], "none")
    event["response"]["claimsAndScopeOverrideDetails"] = {
        "idTokenGeneration": {"claimsToAddOrOverride": {"tenant": tenant}},
        "accessTokenGeneration": {
            "claimsToAddOrOverride": {"tenant": tenant, "roles": ["reader"]},
        },
    }
    return event
