"""How the hosted UI's MFA_SETUP pages read: which set-ups a person can do here, and the words for each.

A pool that requires MFA sends a user without a factor to ``MFA_SETUP`` (gateway/services/mfa_setup.py). Of
the factors in ``MFAS_CAN_SETUP`` the pages can set up an authenticator app (a QR code, then a code) and email
(an address, then the code sent to it). When both are offered the person chooses first; when only one is, its
page comes straight away. SMS cannot be set up inside the sign-in (Cognito asks for a phone number to be added
to the account, then a new sign-in), so a pool that offers only SMS gets a message saying so.
"""

from __future__ import annotations

import json

from gateway.services.mfa import EMAIL_OTP, SOFTWARE_TOKEN_MFA

# The form's hidden "setup" field: which MFA_SETUP page it is.
CHOOSE = "choose"
EMAIL = "email"
# What a person sees on the choice page's buttons, in the order they are shown.
SETUP_LABELS = {
    SOFTWARE_TOKEN_MFA: "Use an authenticator app",
    EMAIL_OTP: "Get codes by email",
}
NO_SETUP_HERE = (
    "Your account needs a phone number to get sign-in codes by text message. "
    "Ask your administrator to add one, then sign in again."
)


def setup_choices(raw: str | None) -> list[str]:
    """The set-ups this UI can do of ``MFAS_CAN_SETUP`` (a JSON list), in button order."""
    try:
        values = json.loads(raw or "[]")
    except (ValueError, RecursionError):  # the browser's text: thousands of nested brackets exhaust the parser
        return []
    if not isinstance(values, list):
        return []
    return [f for f in SETUP_LABELS if f in values]
