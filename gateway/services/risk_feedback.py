"""Links in threat protection's notification emails that let a user say whether a sign-in was theirs.

A NotifyConfiguration email may carry ``{one-click-link-valid}`` and ``{one-click-link-invalid}``, as
Cognito's adaptive authentication messages do. Each is a link to Gatehouse's feedback page
(``/gatehouse/feedback``, :mod:`gateway.ui.feedback`) naming the pool, the user, the auth event, the answer and
the event's feedback token -- the same token ``{feedback-token}`` gives and UpdateAuthEventFeedback takes. The
page asks the user to confirm with a button (a POST), so mail scanners that fetch links record nothing.
"""

from __future__ import annotations

from urllib.parse import urlencode

FEEDBACK_PATH = "/gatehouse/feedback"
# The page's answers and UpdateAuthEventFeedback's FeedbackValue for each.
FEEDBACK_VALUES = {"valid": "Valid", "invalid": "Invalid"}


def feedback_link(public_url: str, pool_id: str, username: str, event_id: str, token: str, answer: str) -> str:
    """The feedback page's URL for one answer (``valid`` or ``invalid``)."""
    query = urlencode({"pool": pool_id, "user": username, "event": event_id, "token": token, "answer": answer})
    return f"{public_url.rstrip('/')}{FEEDBACK_PATH}?{query}"
