"""The page behind threat protection's emailed feedback links (``GET``/``POST /gatehouse/feedback``).

A notification email's ``{one-click-link-valid}`` / ``{one-click-link-invalid}`` (see
:mod:`gateway.services.risk_feedback`) opens this page with the pool, user, event, feedback token and the
answer the link stands for. ``GET`` only shows the question, with the linked answer highlighted, and records
nothing: mail scanners and link previews fetch links unasked. The user's button sends a ``POST`` (with the
hosted pages' CSRF double-submit token), which records the answer exactly as UpdateAuthEventFeedback does --
the feedback token must be the one sent for that event -- and says so. Any failure (a wrong or reused-for-
another-event token, an unknown user or event, threat protection off) is one generic error page, so the
page tells nothing about users or events to someone without a real link.
"""

from __future__ import annotations

import re

import structlog
from aiohttp import web

from gateway.errors import GatehouseError
from gateway.logging import with_request_id
from gateway.oauth.forms import oversized_form_page, read_form
from gateway.oauth.wellknown import SERVICES
from gateway.services.risk_feedback import FEEDBACK_PATH, FEEDBACK_VALUES
from gateway.ui.render import csrf_ok, error_page, page

log = structlog.get_logger("gateway.ui.feedback")

_POOL_ID = re.compile(r"[\w-]+_[0-9a-zA-Z]+")
_EVENT_ID = re.compile(r"[0-9a-fA-F-]{1,64}")
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
INVALID_LINK = "This link is not valid. Open the link from the email again, or sign in and check your account."


def _fields(values: dict[str, str]) -> dict[str, str] | None:
    """The link's members, each of the right form, or None."""
    pool, user, event = values.get("pool", ""), values.get("user", ""), values.get("event", "")
    token, answer = values.get("token", ""), values.get("answer", "")
    if not (
        _POOL_ID.fullmatch(pool)
        and 0 < len(user) <= 128
        and _EVENT_ID.fullmatch(event)
        and _TOKEN.fullmatch(token)
        and answer in FEEDBACK_VALUES
    ):
        return None
    return {"pool": pool, "username": user, "event": event, "token": token, "answer": answer}


async def feedback_get(request: web.Request) -> web.Response:
    settings = request.app[SERVICES].settings
    fields = _fields(dict(request.query))
    if fields is None:
        return error_page(request, settings, INVALID_LINK)
    return page(request, settings, "feedback.html", {"base": "", "done": None, **fields})


async def feedback_post(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    form = dict(await read_form(request))
    if not csrf_ok(request, form):
        message = "This form has expired or was not sent from this site. Open the link from the email again."
        return error_page(request, services.settings, message, status=403)
    fields = _fields(form)
    if fields is None:
        return error_page(request, services.settings, INVALID_LINK)
    try:
        pool = await services.pools.get_pool(fields["pool"])
        user = await services.users.find(pool, fields["username"])
        value = FEEDBACK_VALUES[fields["answer"]]
        await services.risk.set_feedback(pool, user, fields["event"], value, token=fields["token"])
    except GatehouseError as exc:
        log.info("risk.feedback_refused", pool=fields["pool"], error=exc.type_name)
        return error_page(request, services.settings, INVALID_LINK)
    done = (
        "Thank you: this sign-in is marked as yours."
        if value == "Valid"
        else "Thank you: this sign-in is marked as not yours. Change your password now if you still can."
    )
    return page(request, services.settings, "feedback.html", {"base": "", "done": done, **fields})


def add_routes(app: web.Application) -> None:
    app.router.add_get(FEEDBACK_PATH, with_request_id(feedback_get))
    app.router.add_post(FEEDBACK_PATH, with_request_id(feedback_post, oversized_form_page))
