"""Federated sign-in on the OAuth wire: ``/oauth2/authorize?identity_provider=X`` (or ``idp_identifier``) sends
the browser upstream; ``/oauth2/idpresponse`` (query, or form_post as Sign in with Apple answers) and
``/saml2/idpresponse`` (SAML HTTP-POST binding) bring it back, and the authorization request is answered with a
code, as Cognito's endpoints do ("Authorize endpoint", "IdP response endpoint", "SAML IdP response endpoint").

The broker (gateway/services/federation.py) does the work; here a failure is shown to the right party: a bad
or replayed state gets an HTML page (there is no request to answer), a refused upstream answer goes back to
the client as an OAuth error redirect (RFC 6749 §4.1.2.1).

A sign-in started on a pool domain (its Host names one) sends the upstream back to that domain, where the
browser cookie was set; the callback is taken there only.
"""

from __future__ import annotations

import html
import secrets
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode

import structlog
from aiohttp import web

from gateway.errors import (
    AccessDeniedError,
    AuthorizationPageError,
    GatehouseError,
    InvalidRequestError,
    UpstreamIdentityError,
)
from gateway.ids import sha256_hex
from gateway.logging import with_request_id
from gateway.oauth import saml_logout
from gateway.oauth.endpoints import request_host, routed_pool, set_sso_cookie
from gateway.oauth.forms import oversized_form_page, read_form
from gateway.oauth.wellknown import SERVICES
from gateway.services.federation import (
    REQUEST_SECONDS,
    FederatedSignIn,
    FederationCallbackError,
    UpstreamRedirect,
)
from gateway.services.oauth import AuthorizationRedirectError, AuthorizationRequest
from gateway.services.pools import ClientView
from gateway.services.saml_logout import upstream_of
from gateway.ui.render import cookie_name, error_page, finish, found, secure_cookies, see_other
from gateway.uris import iri_to_uri

log = structlog.get_logger("gateway.oauth.federation")

AMR_FEDERATED = ("fed",)
# A random id of the browser that starts a federated sign-in; the callback must come from the same browser.
BROWSER_COOKIE = "gatehouse_federation"
# How the sign-in page names the social providers whose Cognito name is not what people call them.
_LABELS = {"SignInWithApple": "Apple", "LoginWithAmazon": "Amazon"}


def upstream_response(request: web.Request, redirect: UpstreamRedirect) -> web.Response:
    """A 302 to the upstream, or (SAML HTTP-POST binding) a page that posts the AuthnRequest there."""
    settings = request.app[SERVICES].settings
    if redirect.method == "GET":
        # The provider's URL is as configured or discovered: sent as a URI (RFC 3987 §3.1).
        return found(request, settings, iri_to_uri(redirect.url))
    inputs = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in redirect.form.items()
    )
    # Its language, and a phone's viewport, as on every hosted page (WCAG 3.1.1); what is happening, in words,
    # for the moment before the form is sent (or for good, without scripts: the button sends it).
    body = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><title>Signing in</title></head>'
        '<body onload="document.forms[0].submit()"><main>'
        f'<form method="post" action="{html.escape(redirect.url)}">{inputs}'
        "<h1>Signing in</h1><p>Taking you to your organization's sign-in page.</p>"
        "<noscript><button type=submit>Continue</button></noscript></form></main></body></html>"
    )
    response = web.Response(text=body, content_type="text/html")
    finish(request, response, settings)
    # The page's only script is the inline onload; allow it and nothing else. form-action * admits network
    # schemes only: an IdP's metadata naming a javascript: URL as its endpoint is blocked, not run. Framing
    # and <base> are refused as on every other page (RFC 9700 §4.16).
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; script-src 'unsafe-inline'; form-action *; frame-ancestors 'none'; base-uri 'none'"
    )
    return response


def _browser_id(request: web.Request) -> str | None:
    value = request.cookies.get(cookie_name(BROWSER_COOKIE, request.app[SERVICES].settings))
    return value if value and 20 <= len(value) <= 100 else None


async def pool_domain(request: web.Request) -> str | None:
    """The pool domain the request's host (:func:`request_host`, as the authorization endpoint routes by it)
    names, as Gatehouse names it in the URLs it gives an upstream (DomainService.served_domain: a registered
    name, never a suffix or port the request chose); None on Gatehouse's own host or any other."""
    services = request.app[SERVICES]
    return await services.domains.served_domain(request_host(request), services.settings.region)


def _check_browser(request: web.Request) -> bool:
    """Whether the callback can be held to the browser cookie. A cross-site POST (Apple's form_post, SAML's
    HTTP-POST binding) carries only a SameSite=None cookie, which browsers accept only with Secure: over plain
    HTTP (local development) such callbacks cannot be bound, and are not."""
    return request.method == "GET" or secure_cookies(request.app[SERVICES].settings)


async def begin(request: web.Request, auth_request: AuthorizationRequest) -> web.Response:
    """The authorization endpoint's federated branch (``auth_request.identity_provider`` is resolved)."""
    services = request.app[SERVICES]
    browser = _browser_id(request) or secrets.token_urlsafe(32)
    try:
        redirect = await services.federation.begin(
            auth_request.pool_id,
            str(auth_request.identity_provider),
            resume={"request_id": auth_request.id, "client_id": auth_request.client_id},
            browser=browser,
            prompt=auth_request.prompt,
            login_hint=auth_request.login_hint,
            domain=await pool_domain(request),
        )
    except GatehouseError as exc:
        await services.oauth.discard_request(auth_request)
        return found(request, services.settings, services.oauth.error_redirect(auth_request, exc))
    response = upstream_response(request, redirect)
    secure = secure_cookies(services.settings)
    response.set_cookie(
        cookie_name(BROWSER_COOKIE, services.settings),
        browser,
        max_age=REQUEST_SECONDS,
        httponly=True,
        secure=secure,
        # None (with Secure) so that form_post and SAML POST callbacks, which are cross-site, still carry it.
        samesite="None" if secure else "Lax",
        path="/",
    )
    return response


async def _params(request: web.Request) -> dict[str, str]:
    if request.method == "POST":
        return dict(await read_form(request))
    return dict(request.query)


async def _answer(request: web.Request, outcome: FederatedSignIn) -> web.Response:
    services = request.app[SERVICES]
    auth_request = await services.oauth.load_request(outcome.resume.get("request_id"))
    identity = outcome.identity
    upstream = upstream_of(outcome.provider_name, identity.provider_type, identity.issuer, identity.claims)
    token = await services.oauth.start_sso(
        outcome.pool.id,
        outcome.user,
        outcome.auth_time,
        AMR_FEDERATED,
        upstream=upstream or None,
        provider=outcome.provider_name,
        client_id=auth_request.client_id,
        user_agent=request.headers.get("User-Agent"),
        ip=services.rate_limits.address_of(request.remote, request.headers),
    )
    location = await services.oauth.issue_authorization_code(
        auth_request,
        outcome.user,
        outcome.auth_time,
        AMR_FEDERATED,
        provider=outcome.provider_name,
        sso_key=sha256_hex(token),
    )
    # After a form_post callback the browser must GET the client's redirect URI (303, never a re-POST).
    response = see_other(request, services.settings, location)
    set_sso_cookie(response, services, outcome.pool.id, token)
    return response


async def _failed(request: web.Request, failure: FederationCallbackError) -> web.Response:
    services = request.app[SERVICES]
    settings = services.settings
    try:
        auth_request = await services.oauth.load_request(failure.resume.get("request_id"))
    except AuthorizationPageError as exc:
        return error_page(request, settings, exc.message)
    error = failure.error
    if isinstance(error, UpstreamIdentityError) and error.reason == "upstream_error":
        # The person declined (or the IdP refused them) at the upstream.
        error = AccessDeniedError("The identity provider did not sign the user in.")
    await services.oauth.discard_request(auth_request)
    return see_other(request, settings, services.oauth.error_redirect(auth_request, error))


async def _complete(request: web.Request, params: Mapping[str, str], *, saml: bool) -> web.Response:
    services = request.app[SERVICES]
    try:
        browser, check_browser, domain = _browser_id(request), _check_browser(request), await pool_domain(request)
        if saml:
            outcome = await services.federation.complete_saml(
                params, browser=browser, check_browser=check_browser, domain=domain
            )
        else:
            outcome = await services.federation.complete_redirect(
                params, browser=browser, check_browser=check_browser, domain=domain
            )
        return await _answer(request, outcome)
    except FederationCallbackError as failure:
        return await _failed(request, failure)
    except UpstreamIdentityError as exc:
        log.warning("federation.callback_refused", reason=exc.reason)
        return error_page(request, services.settings, exc.message)
    except AuthorizationPageError as exc:
        return error_page(request, services.settings, exc.message)


async def idpresponse(request: web.Request) -> web.Response:
    """``/oauth2/idpresponse``: the OAuth 2.0 / OIDC providers' redirect URI (GET, or POST for form_post)."""
    return await _complete(request, await _params(request), saml=False)


async def saml2_idpresponse(request: web.Request) -> web.Response:
    """``/saml2/idpresponse``: the SAML assertion consumer service (HTTP-POST binding). A RelayState that holds
    authorization request parameters (client_id, redirect_uri, ...) rather than our state is IdP-initiated
    sign-in, as Cognito takes it ("The IdP SAML assertion endpoint")."""
    params = await _params(request)
    relay = dict(parse_qsl(params.get("RelayState", ""), keep_blank_values=True))
    if "client_id" in relay:
        return await _idp_initiated(request, params.get("SAMLResponse", ""), relay)
    return await _complete(request, params, saml=True)


async def _idp_initiated(request: web.Request, saml_response: str, relay: dict[str, str]) -> web.Response:
    services = request.app[SERVICES]
    settings = services.settings
    oauth = services.oauth
    try:
        auth_request = await oauth.start_authorization(relay, pool_id=await routed_pool(request))
    except AuthorizationPageError as exc:
        return error_page(request, settings, exc.message)
    except AuthorizationRedirectError as exc:
        return see_other(request, settings, oauth.error_redirect(exc.request, exc.error))
    if not auth_request.identity_provider or auth_request.identity_provider == "COGNITO":
        await oauth.discard_request(auth_request)
        error = InvalidRequestError("IdP-initiated sign-in must name its identity provider.")
        return see_other(request, settings, oauth.error_redirect(auth_request, error))
    try:
        outcome = await services.federation.complete_idp_initiated(
            auth_request.pool_id,
            auth_request.identity_provider,
            saml_response,
            resume={"request_id": auth_request.id, "client_id": auth_request.client_id},
            domain=await pool_domain(request),
        )
        return await _answer(request, outcome)
    except FederationCallbackError as failure:
        return await _failed(request, failure)


def add_routes(app: web.Application) -> None:
    saml_logout.add_routes(app)
    for prefix in ("", "/{pool_id}"):
        app.router.add_get(f"{prefix}/oauth2/idpresponse", with_request_id(idpresponse))
        app.router.add_post(f"{prefix}/oauth2/idpresponse", with_request_id(idpresponse, oversized_form_page))
        app.router.add_post(f"{prefix}/saml2/idpresponse", with_request_id(saml2_idpresponse, oversized_form_page))


def provider_buttons(base: str, auth_request: AuthorizationRequest, client: ClientView) -> list[dict[str, str]]:
    """The hosted sign-in page's "Sign in with ..." links: one per external provider the client supports, each
    the same authorization request sent again with ``identity_provider`` (as Cognito's hosted UI does)."""
    return [
        {"name": _LABELS.get(name, str(name)), "url": provider_sign_in_url(base, auth_request, name)}
        for name in client.settings.get("SupportedIdentityProviders") or []
        if name != "COGNITO"
    ]


def provider_sign_in_url(base: str, auth_request: AuthorizationRequest, provider: str) -> str:
    """The authorization request sent again with ``identity_provider=provider``."""
    params = {
        "response_type": auth_request.response_type,
        "client_id": auth_request.client_id,
        "redirect_uri": auth_request.redirect_uri,
        "scope": " ".join(auth_request.scopes),
        "state": auth_request.state,
        "nonce": auth_request.nonce,
        "code_challenge": auth_request.code_challenge,
        "code_challenge_method": auth_request.code_challenge_method,
        "identity_provider": provider,
        "response_mode": auth_request.response_mode,
        # Cognito forwards prompt to the IdP a button on the sign-in page leads to, as when the client names it.
        "prompt": " ".join(auth_request.prompt) or None,
        "login_hint": auth_request.login_hint,
    }
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f"{base}/oauth2/authorize?{query}"


# The social providers' names: what is left of a client's SupportedIdentityProviders is OIDC and SAML.
_SOCIAL_NAMES = frozenset({"COGNITO", "Google", "Facebook", "SignInWithApple", "LoginWithAmazon"})


def offers_corporate_sign_in(client: ClientView) -> bool:
    """Whether the sign-in page asks for a corporate email: the client supports an OIDC or SAML provider,
    which an email domain can name through the provider's IdpIdentifiers (Cognito's managed login)."""
    return any(name not in _SOCIAL_NAMES for name in client.settings.get("SupportedIdentityProviders") or [])
