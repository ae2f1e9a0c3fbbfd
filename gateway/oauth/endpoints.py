"""The OAuth 2.0 / OpenID Connect wire: Cognito's user pool endpoints.

``GET /oauth2/authorize`` (RFC 6749 §4.1.1, OpenID Connect Core §3.1.2), ``POST /oauth2/token`` (§3.2),
``GET|POST /oauth2/userInfo`` (OpenID Connect Core §5.3), ``POST /oauth2/revoke`` (RFC 7009) and
``GET|POST /logout`` (Cognito's logout endpoint, and the end_session_endpoint of OpenID Connect RP-Initiated
Logout 1.0, whose §2 has the OP take both methods). Each is also served under ``/{UserPoolId}/...`` (the paths the
pool's discovery document names) and on a pool's domain (the Host header, or an absolute-form target's
authority), which serves that pool only. Handlers are thin: the work is in
``gateway/services/oauth.py``; errors become a redirect with ``error`` (authorization endpoint, once the
redirect URI is proven), a JSON body with ``error`` and ``error_description`` (RFC 6749 §5.2; 401 with
``WWW-Authenticate`` for client and bearer-token failures), or an HTML page (never a redirect to an
unproven URI).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

import orjson
from aiohttp import web
from multidict import CIMultiDict, MultiMapping

from gateway.errors import (
    AuthorizationPageError,
    GatehouseError,
    InvalidClientError,
    InvalidRequestError,
    InvalidTargetError,
    InvalidTokenError,
    LoginRequiredError,
    ResourceNotFoundException,
    TemporarilyUnavailableError,
    TooManyRequestsException,
)
from gateway.logging import with_request_id
from gateway.oauth.cors import allow_any_origin, preflight
from gateway.oauth.forms import oversized_form_page, read_form
from gateway.oauth.wellknown import SERVICES
from gateway.services.cimd import app_client_id
from gateway.services.container import Services
from gateway.services.oauth import (
    SSO_SECONDS,
    AuthorizationRedirectError,
    AuthorizationRequest,
    SsoSession,
    end_session_request,
    error_description,
)
from gateway.services.tokens import MAX_HEADER_BYTES
from gateway.settings import Settings
from gateway.ui.render import cookie_name, csrf_ok, error_page, finish, found, page, secure_cookies, see_other
from gateway.uris import iri_to_uri

# Parameters that must not repeat (RFC 6749 §3.1, §3.2), with OpenID Connect Core §3.1.2.1's and
# RP-Initiated Logout 1.0 §2's: each is one value, and taking the first of two would answer a request other
# than the one every party to it read.
_SINGLE = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "response_mode",
    "request",
    "request_uri",
    "claims",
    "display",
    "ui_locales",
    "acr_values",
    "prompt",
    "max_age",
    "identity_provider",
    "idp_identifier",
    "login_hint",
    "grant_type",
    "code",
    "code_verifier",
    "refresh_token",
    "client_secret",
    "token",
    "token_type_hint",
    "logout_uri",
    "post_logout_redirect_uri",
    "id_token_hint",
)


# The token endpoint's too: RFC 8693 §2.1's. Cognito takes one audience or one resource (GetDerivedToken's lists
# hold at most one), so a repeated one is a target it will not issue for (invalid_target).
_TOKEN_SINGLE = (
    *_SINGLE,
    "subject_token",
    "subject_token_type",
    "actor_token",
    "actor_token_type",
    "requested_token_type",
    "audience",
    "resource",
)


def sso_cookie_name(pool_id: str, settings: Settings) -> str:
    """The pool's SSO cookie: ``__Host-`` prefixed behind https (see gateway.ui.render.HOST_PREFIX)."""
    return cookie_name(f"gatehouse_sso_{pool_id}", settings)


def base_path(request: web.Request) -> str:
    """The path prefix the request came in under: ``/{UserPoolId}`` or nothing."""
    pool_id = request.match_info.get("pool_id")
    return f"/{pool_id}" if pool_id else ""


def request_host(request: web.Request) -> str | None:
    """The host and port a request is addressed to: an absolute-form target's authority, for which RFC 9112
    §3.2.2 has an origin server ignore the Host header, else the Host header (RFC 9110 §7.2)."""
    target = request.raw_path
    if not target.startswith("/"):
        # Origin-form starts with "/"; what aiohttp routes otherwise is absolute-form (scheme "://" authority).
        return urlsplit(target).netloc or None
    return request.headers.get("Host")


async def _path_and_host_pools(request: web.Request) -> tuple[str | None, str | None]:
    """The pool of the path's ``/{UserPoolId}`` and the pool whose domain the request's host names."""
    host_pool = await request.app[SERVICES].domains.pool_for_host(request_host(request))
    return request.match_info.get("pool_id"), host_pool


async def routed_pool(request: web.Request) -> str | None:
    """The pool the request is addressed to by its path or its host (a pool domain); None when neither. A
    pool's domain serves that pool only (a Cognito domain belongs to one pool): a path naming another pool
    there is a page error, so no other pool's sign-in form, session cookie or code is served on it."""
    path_pool, host_pool = await _path_and_host_pools(request)
    if path_pool:
        if host_pool is not None and host_pool != path_pool:
            raise AuthorizationPageError("This user pool is not served on this domain.")
        try:
            await request.app[SERVICES].pools.get_pool(path_pool)
        except ResourceNotFoundException as exc:
            raise AuthorizationPageError("This user pool does not exist.") from exc
    return path_pool or host_pool


async def addressed_pool(request: web.Request, refusal: GatehouseError) -> str | None:
    """The pool a JSON endpoint (token, userInfo, revoke) was called for: the ``/{UserPoolId}`` of its path
    (whether or not that pool exists: no client or token belongs to a pool that does not), or the pool whose
    domain the host names; None on the server's own host. A pool's endpoints answer only for its own clients
    and tokens, as each Cognito pool's domain does; a path naming another pool than the domain is answered
    ``refusal``, what the endpoint answers a client or token of another pool. The common call (the server's
    own host) costs no store read."""
    path_pool, host_pool = await _path_and_host_pools(request)
    if path_pool and host_pool is not None and host_pool != path_pool:
        raise refusal
    return path_pool or host_pool


def flatten(values: MultiMapping[Any], single: tuple[str, ...] = _SINGLE) -> tuple[dict[str, str], list[str]]:
    """The first value of each parameter, and the names of single-valued ones that were repeated (in
    ``_SINGLE``'s order), in one pass over the parameters. Only text values count: a form's file fields are
    dropped, as :func:`read_form` drops them. A parameter sent without a value is treated as omitted
    (RFC 6749 §3.1, §3.2)."""
    flat: dict[str, str] = {}
    twice: set[str] = set()
    for key, value in values.items():
        if not value or not isinstance(value, str):
            continue
        if key in flat:
            twice.add(key)
        else:
            flat[key] = value
    return flat, [key for key in single if key in twice] if twice else []


async def current_session(request: web.Request, pool_id: str) -> SsoSession | None:
    services = request.app[SERVICES]
    return await services.oauth.sso_session(pool_id, request.cookies.get(sso_cookie_name(pool_id, services.settings)))


def set_sso_cookie(response: web.StreamResponse, services: Services, pool_id: str, token: str) -> None:
    response.set_cookie(
        sso_cookie_name(pool_id, services.settings),
        token,
        max_age=SSO_SECONDS,
        httponly=True,
        samesite="Lax",
        secure=secure_cookies(services.settings),
        path="/",
    )


# --- /oauth2/authorize ------------------------------------------------------------------------------------


async def authorize(request: web.Request) -> web.Response:
    """GET, or POST with a form body (OpenID Connect Core §3.1.2.1 asks for both)."""
    services = request.app[SERVICES]
    settings = services.settings
    oauth = services.oauth
    if request.method == "POST":
        query, repeated = flatten(await read_form(request))
    else:
        query, repeated = flatten(request.query)
    try:
        pool_id = await routed_pool(request)
        # Checked only: a request answered at once (single sign-on, prompt=none) is never stored.
        auth_request = await oauth.start_authorization(query, repeated=repeated, pool_id=pool_id, save=False)
    except AuthorizationPageError as exc:
        return error_page(request, settings, exc.message)
    except AuthorizationRedirectError as exc:
        return found(request, settings, oauth.error_redirect(exc.request, exc.error))
    federated = auth_request.identity_provider not in (None, "", "COGNITO")
    silent = "none" in auth_request.prompt
    if federated and not silent:
        from gateway.oauth import federation  # here: that module builds on this one

        if not await _may_store(request, auth_request):
            return found(request, settings, oauth.error_redirect(auth_request, _BUSY))
        await oauth.save_request(auth_request)
        return await federation.begin(request, auth_request)
    session = await current_session(request, auth_request.pool_id)
    if session is not None and oauth.hint_names_another_user(auth_request.pool_id, query.get("id_token_hint"), session):
        session = None  # the client expects another user (OpenID Connect Core §3.1.2.1)
    if federated and session is not None and session.provider not in (None, auth_request.identity_provider):
        # prompt=none names a provider: only a session from that provider answers (OpenID Connect Core
        # §3.1.2.1: no sign-in page of ours or the provider's is shown); otherwise login_required.
        session = None
    try:
        if (
            session is not None
            and not oauth.needs_login(auth_request, session)
            and await oauth.session_fits_client(auth_request, session)
            and await oauth.sso_reuse_allowed(auth_request, session)
        ):
            location = await oauth.issue_authorization_code(
                auth_request, session.user, session.auth_time, session.amr, stored=False, sso_key=session.key_hash
            )
            return found(request, settings, location)
        if "none" in auth_request.prompt:
            error = LoginRequiredError("The user is not signed in.")
            return found(request, settings, oauth.error_redirect(auth_request, error))
    except AuthorizationPageError as exc:
        return error_page(request, settings, exc.message)
    if not await _may_store(request, auth_request):
        return found(request, settings, oauth.error_redirect(auth_request, _BUSY))
    await oauth.save_request(auth_request)
    return found(request, settings, f"{base_path(request)}/login?rid={auth_request.id}")


_BUSY = TemporarilyUnavailableError("Too many requests. Wait a moment and try again.")


async def _may_store(request: web.Request, auth_request: AuthorizationRequest) -> bool:
    """Whether an authorization request may be kept for its sign-in page (an hour in the store): within the
    rate limits of its address and app client, as the API's unsigned calls and the hosted forms are, so that
    nobody can fill the store with requests no one signs in to. Past them the client is told
    ``temporarily_unavailable`` (RFC 6749 §4.1.2.1: its redirect URI is proven by now)."""
    services = request.app[SERVICES]
    address = services.rate_limits.address_of(request.remote, request.headers)
    # A client ID metadata document client takes from its policy's app client's bucket, as on the pages.
    _, client = await services.oauth.client(auth_request.client_id, pool_id=auth_request.pool_id)
    try:
        services.rate_limits.check("Authorize", {"ClientId": app_client_id(client)}, address)
    except TooManyRequestsException:
        return False
    return True


# --- JSON endpoints ---------------------------------------------------------------------------------------


_JSON_HEADERS = CIMultiDict({"Content-Type": "application/json", "Cache-Control": "no-store", "Pragma": "no-cache"})


def json_response(body: object, *, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    """RFC 6749 §5.1: JSON, never cached."""
    response = web.Response(body=orjson.dumps(body), status=status, headers=_JSON_HEADERS)  # copied by the response
    if headers:
        response.headers.update(headers)
    return response


def oauth_error_response(error: GatehouseError, *, bearer: bool = False) -> web.Response:
    """RFC 6749 §5.2 (and RFC 6750 §3 for bearer-token failures)."""
    headers: dict[str, str] = {}
    description = error_description(error.message)
    if bearer and error.status in (401, 403):
        headers["WWW-Authenticate"] = f'Bearer error="{error.oauth_error}", error_description="{description}"'
    elif error.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="gatehouse", charset="UTF-8"'
    return json_response(
        {"error": error.oauth_error, "error_description": description}, status=error.status, headers=headers
    )


class _FormTooLargeError(InvalidRequestError):
    """A token or revocation request past the server's body limit, or with more fields than aiohttp reads:
    RFC 6749 §5.2's invalid_request, with HTTP's 413 (RFC 9110 §15.5.14), in JSON like every other error."""

    status = 413


async def _form(request: web.Request, single: tuple[str, ...] = _SINGLE) -> tuple[dict[str, str], list[str]]:
    if request.content_type != "application/x-www-form-urlencoded":
        raise InvalidRequestError("The body must be application/x-www-form-urlencoded.")
    try:
        form = await request.post()
    except (ValueError, LookupError, web.RequestPayloadError):  # not the form it claims: empty (see read_form)
        return {}, []
    except web.HTTPRequestEntityTooLarge as exc:  # aiohttp's would be a plain-text 413
        raise _FormTooLargeError("The request body is too large.") from exc
    return flatten(form, single)


async def token(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    try:
        form, repeated = await _form(request, _TOKEN_SINGLE)
        if "audience" in repeated or "resource" in repeated:
            raise InvalidTargetError("Only one audience or resource can be requested.")
        if repeated:
            raise InvalidRequestError(f"Parameter {repeated[0]} was given more than once.")
        body = await services.oauth.token(
            form,
            request.headers.get("Authorization"),
            pool_id=await addressed_pool(request, InvalidClientError("Client authentication failed.")),
            user_agent=request.headers.get("User-Agent"),
            source_ip=services.rate_limits.address_of(request.remote, request.headers),
        )
    except GatehouseError as exc:
        return oauth_error_response(exc)
    return json_response(body)


async def userinfo(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    access_token = value.strip() if scheme.lower() == "bearer" else None
    try:
        if not access_token:
            # RFC 6750 §3.1: no credentials (or another scheme): a challenge without an error code.
            raise InvalidTokenError("A bearer access token is required.")
        pool_id = await addressed_pool(request, InvalidTokenError("Invalid Access Token"))
        claims = await services.oauth.userinfo(access_token, pool_id=pool_id)
    except GatehouseError as exc:
        response = oauth_error_response(exc, bearer=True)
        if not access_token:
            response.headers["WWW-Authenticate"] = 'Bearer realm="gatehouse"'
        return response
    return json_response(claims)


async def revoke(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    try:
        form, repeated = await _form(request)
        if repeated:
            raise InvalidRequestError(f"Parameter {repeated[0]} was given more than once.")
        pool_id = await addressed_pool(request, InvalidClientError("Client authentication failed."))
        await services.oauth.revoke(form, request.headers.get("Authorization"), pool_id=pool_id)
    except GatehouseError as exc:
        return oauth_error_response(exc)
    return json_response({})


# --- /logout ----------------------------------------------------------------------------------------------


# The sign-out question's answer (sign_out.html's buttons), and what its form carries back: the RP-Initiated
# Logout parameters, checked again as they were the first time.
_ANSWER = "sign_out"
_END_SESSION_FIELDS = ("client_id", "id_token_hint", "post_logout_redirect_uri", "state")
# A request line's "GET " and " HTTP/1.1", and the room a proxy's longer path prefix may take.
_REQUEST_LINE_SLACK = 1024


async def logout(request: web.Request) -> web.Response:
    """Cognito's logout endpoint: ends the hosted UI session, then sends the browser to a registered
    ``logout_uri``, or (``redirect_uri`` + ``response_type``) to a new sign-in; as the end_session_endpoint,
    to a ``post_logout_redirect_uri`` or, without one, to a signed-out page. GET, or POST with a form body
    (RP-Initiated Logout 1.0 §2: "OPs MUST support the use of the HTTP GET and POST methods").

    An RP-Initiated Logout request that does not show it comes from the signed-in user's own application (no
    ``id_token_hint``, or one naming another user) first asks the user (§2: "the OP MUST ask the End-User this
    question"); anyone can send a browser here, and would otherwise sign its user out. Cognito's two forms
    sign out at once, as Cognito does."""
    services = request.app[SERVICES]
    settings = services.settings
    values: MultiMapping[str] = await read_form(request) if request.method == "POST" else request.query
    query, repeated = flatten(values)
    try:
        if repeated or len(values.getall("logout_uri", [])) > 1:
            raise AuthorizationPageError("Each parameter may be given only once.")
        pool, target = await services.oauth.logout_target(query, pool_id=await routed_pool(request))
    except AuthorizationPageError as exc:
        return error_page(request, settings, exc.message)
    name = sso_cookie_name(pool.id, settings)
    if request.method == "POST" and name not in request.cookies and _ANSWER not in values:
        # A POST from an app on another site carries no SameSite=Lax cookie: the session it was sent to end is
        # not in sight, and removing the browser's cookie would leave it alive in the store. The same request
        # again as a GET (303, RFC 9110 §15.4.4) is a top-level navigation, which carries the cookie.
        again = f"{base_path(request)}/logout?{urlencode(query)}"
        if len(again) <= MAX_HEADER_BYTES - _REQUEST_LINE_SLACK:
            return see_other(request, settings, again)
    session = await current_session(request, pool.id)
    if session is not None and end_session_request(query):
        if request.method == "POST" and _ANSWER in values:
            # The question's form: the user's answer, if the form is this site's own (double-submit CSRF).
            if not csrf_ok(request, values):
                message = "This form has expired or was not sent from this site. Go back and try again."
                return error_page(request, settings, message, status=403)
            if query.get(_ANSWER) != "yes":
                if target is None:
                    return page(request, settings, "sign_out.html", {"base": "", "kept": True})
                return found(request, settings, iri_to_uri(target))
        elif not query.get("id_token_hint") or services.oauth.hint_names_another_user(
            pool.id, query.get("id_token_hint"), session
        ):
            # Not shown to come from this user's application (a hint that did was checked by logout_target).
            fields = [(key, query[key]) for key in _END_SESSION_FIELDS if key in query]
            context = {"base": "", "action": f"{base_path(request)}/logout", "fields": fields}
            return page(request, settings, "sign_out.html", context)
    await services.oauth.end_sso(request.cookies.get(name))
    response: web.Response
    if target is None:
        # RP-Initiated Logout 1.0 §3 without post_logout_redirect_uri: nowhere to send the browser (nor to
        # come back to from a SAML IdP's single logout, which is therefore not started): a page says it is done.
        response = page(request, settings, "signed_out.html", {"base": ""})
        response.del_cookie(name, path="/", secure=secure_cookies(settings))
        return response
    if target == "authorize":
        passed = {k: v for k, v in query.items() if k != "logout_uri"}
        target = f"{base_path(request)}/oauth2/authorize?{urlencode(passed)}"
    # A session from a SAML IdP with IDPSignout: sign out there too, then come back to the target.
    from gateway.oauth import saml_logout

    target = await saml_logout.begin(request, session, target) or target
    # The IdP's logout URL is as its metadata names it: sent as a URI (RFC 3987 §3.1), as every redirect is.
    response = web.Response(status=302, headers={"Location": iri_to_uri(target)})
    # A browser takes the removal of a __Host- cookie only with Secure, as it took the cookie.
    response.del_cookie(name, path="/", secure=secure_cookies(settings))
    finish(request, response, settings)
    return response


def add_routes(app: web.Application) -> None:
    """Every endpoint at Cognito's path and under ``/{UserPoolId}``."""
    for prefix in ("", "/{pool_id}"):
        app.router.add_get(f"{prefix}/oauth2/authorize", with_request_id(authorize))
        app.router.add_post(f"{prefix}/oauth2/authorize", with_request_id(authorize, oversized_form_page))
        # The endpoints a browser app fetches from its own origin (gateway/oauth/cors.py).
        app.router.add_post(f"{prefix}/oauth2/token", with_request_id(allow_any_origin(token)))
        app.router.add_options(f"{prefix}/oauth2/token", with_request_id(preflight("POST")))
        app.router.add_get(f"{prefix}/oauth2/userInfo", with_request_id(allow_any_origin(userinfo)))
        app.router.add_post(f"{prefix}/oauth2/userInfo", with_request_id(allow_any_origin(userinfo)))
        app.router.add_options(f"{prefix}/oauth2/userInfo", with_request_id(preflight("GET, POST")))
        app.router.add_post(f"{prefix}/oauth2/revoke", with_request_id(allow_any_origin(revoke)))
        app.router.add_options(f"{prefix}/oauth2/revoke", with_request_id(preflight("POST")))
        app.router.add_get(f"{prefix}/logout", with_request_id(logout))
        app.router.add_post(f"{prefix}/logout", with_request_id(logout, oversized_form_page))
