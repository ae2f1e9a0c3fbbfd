"""The front door's endpoints, all under ``/_gatehouse/`` (:data:`gateway.services.front_door.PREFIX`).

Asked by a reverse proxy for every request to an app (the app named by ``?app=``, else by the request's
``X-Forwarded-Host`` or ``Host``):

- ``/_gatehouse/auth-request``: nginx's ``auth_request``. 200 with the identity headers, 401 without a session
  (nginx's ``error_page 401`` then sends the browser to ``/_gatehouse/start``), 403 for a user not allowed in.
  nginx takes no other answer (anything else is its 500), so a request for no known app is a 403 too.
- ``/_gatehouse/forward-auth``: Traefik's ``forwardAuth`` and Caddy's ``forward_auth``, which hand any non-2xx
  answer to the browser: 200 with the identity headers, a 302 to the sign-in for a GET or HEAD without a
  session (to come back to ``X-Forwarded-Uri``), 401 for other methods, a 403 page for a user not allowed in.

Reached by the browser on the app's own host (the proxy routes ``/_gatehouse/`` there to Gatehouse):
``/_gatehouse/start?rd=<path>`` (to the hosted UI), ``/_gatehouse/callback`` (back from it, the session cookie
set), ``/_gatehouse/sign_out`` (GET or POST), ``/_gatehouse/userinfo`` (the session's user as JSON, for a
page's script) and the pages' stylesheet. On the host of an app Gatehouse proxies itself (``upstream``) only
these are served: no proxy asks the two above there, and a page's script must not read their answer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import quote

import orjson
from aiohttp import web
from multidict import CIMultiDict

from gateway.logging import with_request_id
from gateway.oauth.wellknown import SERVICES
from gateway.services.front_door import (
    CALLBACK_PATH,
    PREFIX,
    SIGN_IN_SECONDS,
    FrontDoorApp,
    FrontDoorRefusal,
    FrontDoorUser,
    SignInFailed,
    safe_next_path,
)
from gateway.ui.pages import stylesheet
from gateway.ui.render import SECURITY_HEADERS, render_parts

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# The request's app, when the route is an app's own (the reverse proxy's domain sub-application).
BOUND_APP = web.AppKey("front_door_app", FrontDoorApp)

_NO_STORE = {"Cache-Control": "no-store"}


def app_of(request: web.Request) -> FrontDoorApp | None:
    """The app a request is for: the sub-application's own, else ``?app=``, else the forwarded or own host.

    ``?app=`` may be the browser's own word rather than the proxy's: Caddy's ``forward_auth`` keeps the query of
    the request it asks about (its ``uri`` sets the path alone), so ``https://wiki.example.com/x?app=blog`` would
    have the check judge a request to the wiki by the blog's sessions and public paths. So a name that the host
    may contradict (:meth:`gateway.services.front_door.FrontDoorService.app_named`), or given more than once,
    names no app."""
    bound = request.config_dict.get(BOUND_APP)
    if bound is not None:
        return bound
    front_door = request.config_dict[SERVICES].front_door
    # Named twice, on two lines or in a list (a proxy that adds the host it was asked for to the browser's own),
    # the forwarded host is no one host to go by.
    forwarded = {h.strip().lower() for line in request.headers.getall("X-Forwarded-Host", ()) for h in line.split(",")}
    if len(forwarded) > 1:
        return None
    host = forwarded.pop() if forwarded else request.host
    names = request.query.getall("app", ())
    if not names:
        return front_door.app_for_host(host)
    return front_door.app_named(names[0], host=host) if len(names) == 1 else None


def message_page(
    title: str, message: str, *, status: int, link: str | None = None, link_text: str = ""
) -> web.Response:
    """One of the front door's pages: no form, so no CSRF cookie is set on the app's host."""
    parts = render_parts(
        "front_door.html",
        {"title": title, "message": message, "link": link, "link_text": link_text, "base": PREFIX},
    )
    return web.Response(
        body=b"".join(parts),
        status=status,
        headers={"Content-Type": "text/html; charset=utf-8", **SECURITY_HEADERS},
    )


def _no_app() -> web.Response:
    return message_page("Not found", "No app behind this front door is served here.", status=404)


def start_url(app: FrontDoorApp, next_path: str) -> str:
    return f"{app.url}{PREFIX}/start?rd={quote(safe_next_path(next_path), safe='/')}"


# The query of nginx's second question about a request its auth_request already asked about (the documented
# `@front_door` location): the answer is the same, and the request was counted the first time.
_ASKED_AGAIN = "auth-request"


async def check(
    request: web.Request, app: FrontDoorApp, *, counted: bool = True, with_tokens: bool = True
) -> FrontDoorUser:
    """The request's session checked for ``app`` (and counted in the metrics unless ``counted`` is False), with
    the session's tokens when the app has pass_tokens, unless ``with_tokens`` is False; or, for an app with
    bearer_clients, the access token the request presents; raises :class:`FrontDoorRefusal`."""
    services = request.config_dict[SERVICES]
    try:
        # A request presenting a token is judged by the token alone, whatever session cookie it also sends: the app
        # is told the identity of the Authorization header it is handed, never a cookie's beside another's token.
        token = bearer_token(request) if app.bearer_clients else None
        if token is not None:
            user = await services.front_door.check_bearer(app, token)
        else:
            cookie = request.cookies.get(app.session_cookie)
            user = await services.front_door.check(app, cookie, with_tokens=with_tokens)
    except FrontDoorRefusal as refusal:
        if counted:
            outcome = "forbidden" if refusal.status == 403 else "unauthenticated"
            services.metrics.inc(services.metrics.front_door_requests, app=app.name, outcome=outcome)
        raise
    if counted:
        services.metrics.inc(services.metrics.front_door_requests, app=app.name, outcome="allowed")
    return user


def bearer_token(request: web.Request) -> str | None:
    """The access token of ``Authorization: Bearer <token>`` (RFC 6750 §2.1; the scheme's name in any case), or
    None when the request presents none. Only the header is read: a token in the query or a form body (§2.3, §2.2)
    ends up in logs and histories, and is not taken. Authorization sent twice is malformed (RFC 9110 §5.3: it is
    no list), refused with invalid_request: the app, handed both, could read another than the one checked.

    The header is read as loosely as the app may read it: its bytes as latin-1 text (as WSGI and Node hand them
    over), split at any whitespace (Django REST framework's and Flask-HTTPAuth's ``split()``), so that a tab or a
    no-break space after ``Bearer`` cannot make the front door judge a session cookie while the app reads the
    token. ``Bearer`` followed by several tokens is malformed (invalid_request)."""
    fields = request.headers.getall("Authorization", ())
    if len(fields) > 1:
        raise FrontDoorRefusal(400, "Authorization sent more than once", bearer=True)
    # aiohttp keeps bytes that are not UTF-8 as surrogates: back to the bytes, then each byte one character.
    words = (fields[0] if fields else "").encode("utf-8", "surrogateescape").decode("latin-1").split()
    if len(words) < 2 or words[0].lower() != "bearer":
        return None  # no token an app could read either
    if len(words) > 2:
        raise FrontDoorRefusal(400, "more than one bearer token", bearer=True)
    return words[1]


def bearer_refused(refusal: FrontDoorRefusal, *, status: int | None = None) -> web.Response:
    """A refused bearer request's answer (RFC 6750 §3): its status (or ``status``) with the challenge, no page and
    no redirect."""
    text = {400: "Malformed request.", 401: "Invalid access token."}.get(refusal.status, "Not allowed.")
    return web.Response(
        status=status or refusal.status, text=text, headers={"WWW-Authenticate": refusal.challenge(), **_NO_STORE}
    )


def forbidden_page(app: FrontDoorApp) -> web.Response:
    groups = ", ".join(app.allowed_groups)
    return message_page(
        "Not allowed",
        f"You are signed in, but this app is only for members of: {groups}.",
        status=403,
        link=f"{PREFIX}/sign_out",
        link_text="Sign in as someone else",
    )


def _public(request: web.Request, app: FrontDoorApp, *, counted: bool = True) -> bool:
    """Whether the request a proxy in front asks about (its ``X-Forwarded-Uri``) is to one of the app's public
    paths, counted in the metrics if so (unless ``counted`` is False). Sent more than once, it is no proxy's
    own: a proxy that adds its value after the browser's must not have the browser's taken for it."""
    uris = request.headers.getall("X-Forwarded-Uri", ())
    if len(uris) != 1 or not app.is_public(uris[0].split("?", 1)[0]):
        return False
    if counted:
        services = request.config_dict[SERVICES]
        services.metrics.inc(services.metrics.front_door_requests, app=app.name, outcome="public")
    return True


async def auth_request(request: web.Request) -> web.Response:
    app = app_of(request)
    if app is None:
        return web.Response(status=403, text="No front door app for this host.", headers=_NO_STORE)
    if _public(request, app):
        return web.Response(status=200, headers=_NO_STORE)
    try:
        user = await check(request, app)
    except FrontDoorRefusal as refusal:
        if refusal.bearer:
            # nginx takes 401 and 403 alone (anything else is its 500): a malformed request's 400 is the answer of
            # the second question, @front_door's.
            return bearer_refused(refusal, status=403 if refusal.status == 403 else 401)
        return web.Response(status=refusal.status, headers=_NO_STORE)
    return web.Response(status=200, headers={**user.headers(), **_NO_STORE})


async def forward_auth(request: web.Request) -> web.Response:
    app = app_of(request)
    if app is None:
        return _no_app()
    counted = request.query.get("after") != _ASKED_AGAIN
    if _public(request, app, counted=counted):
        return web.Response(status=200, headers=_NO_STORE)
    try:
        # nginx's second question is answered to the browser itself: never with the session's tokens.
        user = await check(request, app, counted=counted, with_tokens=counted)
    except FrontDoorRefusal as refusal:
        if refusal.bearer:
            answer = bearer_refused(refusal)
            if not counted and refusal.status != 403:
                # nginx hands the browser the challenge of auth_request's 401 itself (ngx_http_auth_request_module
                # copies it): with this answer's, it would be there twice.
                del answer.headers["WWW-Authenticate"]
            return answer
        if refusal.status == 403:
            return forbidden_page(app)
        method = request.headers.get("X-Forwarded-Method", "GET").upper()
        if method in ("GET", "HEAD"):
            target = start_url(app, request.headers.get("X-Forwarded-Uri", "/"))
            return web.Response(status=302, headers={"Location": target, **_NO_STORE})
        return web.Response(status=401, text="Sign-in required.", headers=_NO_STORE)
    return web.Response(status=200, headers={**user.headers(), **_NO_STORE})


def _cookie(name: str, value: str, app: FrontDoorApp, *, max_age: int) -> str:
    attributes = [f"{name}={value}", "Path=/", f"Max-Age={max_age}", "HttpOnly", "SameSite=Lax"]
    if app.secure:
        attributes.append("Secure")
    return "; ".join(attributes)


def _redirect(location: str, cookies: list[str], *, status: int = 302) -> web.Response:
    """A redirect with the pages' security headers, setting (or clearing) ``cookies``."""
    headers = CIMultiDict({"Location": location, **SECURITY_HEADERS})
    for cookie in cookies:
        headers.add("Set-Cookie", cookie)
    return web.Response(status=status, headers=headers)


async def start(request: web.Request) -> web.Response:
    app = app_of(request)
    if app is None:
        return _no_app()
    services = request.config_dict[SERVICES]
    stale = services.front_door.stale_sign_ins(app, request.cookies)
    location, name, pending = services.front_door.start(app, request.query.get("rd"))
    cleared = [_cookie(old, "", app, max_age=0) for old in stale]
    return _redirect(location, [*cleared, _cookie(name, pending, app, max_age=SIGN_IN_SECONDS)])


async def callback(request: web.Request) -> web.Response:
    app = app_of(request)
    if app is None:
        return _no_app()
    services = request.config_dict[SERVICES]
    # The cookie of the sign-in the state names (one per sign-in under way); finish checks it holds that state.
    name = app.sign_in_cookie(request.query.get("state", ""))
    done = [_cookie(name, "", app, max_age=0)] if name is not None else []
    try:
        signed_in = await services.front_door.finish(app, request.query, request.cookies.get(name) if name else None)
    except SignInFailed as failed:
        services.metrics.inc(services.metrics.front_door_sign_ins, app=app.name, outcome="failed")
        page = message_page(
            "Sign-in did not finish", failed.message, status=400, link=f"{PREFIX}/start", link_text="Sign in again"
        )
        for cookie in done:
            page.headers.add("Set-Cookie", cookie)
        return page
    services.metrics.inc(services.metrics.front_door_sign_ins, app=app.name, outcome="signed_in")
    session = _cookie(app.session_cookie, signed_in.cookie, app, max_age=signed_in.max_age)
    return _redirect(signed_in.next_path, [session, *done])


def from_another_site(request: web.Request, app: FrontDoorApp) -> bool:
    """Whether the browser says another origin's page made the request: ``Sec-Fetch-Site`` (Fetch Metadata, sent by
    every current browser) other than ``same-origin`` or ``none`` (typed or bookmarked), else an ``Origin`` that is
    not the app's (RFC 6454). A request that says neither (a script, an old browser) is not taken for one."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site.strip().lower() not in ("same-origin", "none")
    origin = request.headers.get("Origin")
    return origin is not None and origin.strip().lower() != app.url


def fetched_ahead(request: web.Request) -> bool:
    """Whether the browser fetches the page ahead of a click that may never come: ``Sec-Purpose: prefetch``
    (speculation rules, Fetch's "prefetch" purpose; with ``;prerender``) or the older ``Purpose: prefetch``."""
    purpose = request.headers.get("Sec-Purpose") or request.headers.get("Purpose") or ""
    return purpose.split(";", 1)[0].strip().lower() == "prefetch"


async def sign_out(request: web.Request) -> web.Response:
    app = app_of(request)
    if app is None:
        return _no_app()
    if from_another_site(request, app) or fetched_ahead(request):
        # A page of another site (or a sibling subdomain, which SameSite=Lax does not keep out) must not sign the
        # user out by sending the browser here, nor a prefetch of the app's own link: the user is asked, and the
        # link on this page is the app's own.
        return message_page(
            "Sign out?", "Do you want to sign out of this app?", status=200, link=f"{PREFIX}/sign_out",
            link_text="Sign out",
        )  # fmt: skip
    services = request.config_dict[SERVICES]
    location = await services.front_door.sign_out(app, request.cookies.get(app.session_cookie))
    # 303: a POST's answer is fetched with GET (RFC 9110 §15.4.4).
    status = 303 if request.method == "POST" else 302
    return _redirect(location, [_cookie(app.session_cookie, "", app, max_age=0)], status=status)


async def userinfo(request: web.Request) -> web.Response:
    app = app_of(request)
    if app is None:
        return _no_app()
    try:
        # (A page's script is never handed the tokens: an injected script could take them elsewhere.)
        user = await check(request, app, with_tokens=False)
    except FrontDoorRefusal as refusal:
        if refusal.bearer:
            return bearer_refused(refusal)
        error = "not_signed_in" if refusal.status == 401 else "forbidden"
        return web.Response(
            status=refusal.status, body=orjson.dumps({"error": error}), content_type="application/json",
            headers=_NO_STORE,
        )  # fmt: skip
    body = {
        "sub": user.sub,
        "username": user.username,
        "email": user.email,
        "groups": list(user.groups),
        "pool": user.pool_id,
    }
    return web.Response(body=orjson.dumps(body), content_type="application/json", headers=_NO_STORE)


async def _not_for_browsers(request: web.Request) -> web.Response:
    return message_page("Not found", "This address is for a proxy in front of the app, not for browsers.", status=404)


def add_routes(app: web.Application, *, checks: bool = True) -> None:
    """The endpoints, on Gatehouse's own app or on an app's reverse-proxy sub-application. ``checks``: whether the
    endpoints a proxy in front asks are served; on an app's own host (``checks=False``) they are 404 pages, as no
    proxy asks there and their answer, the identity with the session's tokens, is not for a page's script."""
    for path, handler in (("auth-request", auth_request), ("forward-auth", forward_auth)):
        # Whatever method the request being checked had (nginx's subrequest keeps it).
        app.router.add_route("*", f"{PREFIX}/{path}", with_request_id(handler if checks else _not_for_browsers))
    app.router.add_get(f"{PREFIX}/start", with_request_id(start))
    app.router.add_get(CALLBACK_PATH, with_request_id(callback))
    app.router.add_get(f"{PREFIX}/sign_out", with_request_id(sign_out))
    app.router.add_post(f"{PREFIX}/sign_out", with_request_id(sign_out))
    app.router.add_get(f"{PREFIX}/userinfo", with_request_id(userinfo))
    app.router.add_get(f"{PREFIX}/static/gatehouse.css", with_request_id(stylesheet))
