"""``/saml2/logout``: Cognito's SAML single logout endpoint (HTTP-POST or HTTP-Redirect binding). A
``SAMLResponse`` is the IdP's answer to the LogoutRequest ``/logout`` sent; a ``SAMLRequest`` is an
IdP-initiated logout. The work is done by gateway/services/saml_logout.py; failures are HTML pages (there is no
client request to answer)."""

from __future__ import annotations

import html
from collections.abc import Mapping

from aiohttp import web

from gateway.errors import AuthorizationPageError
from gateway.logging import with_request_id
from gateway.oauth.endpoints import request_host, routed_pool
from gateway.oauth.forms import oversized_form_page, read_form
from gateway.oauth.wellknown import SERVICES
from gateway.services.oauth import SsoSession
from gateway.services.saml_logout import SamlLogoutService
from gateway.ui.render import cookie_name, error_page, finish, secure_cookies
from gateway.uris import iri_to_uri
from providers.saml import Binding

SSO_COOKIE_PREFIX = "gatehouse_sso_"


def saml_logout_service(request: web.Request) -> SamlLogoutService:
    return request.app[SERVICES].saml_logout


async def _acs_url(request: web.Request) -> str:
    """The SAML ACS URL of the host the request came to: a pool domain's (as its Host names it, the way sign-in
    on that domain names it to the IdP), or Gatehouse's own. Its ``/saml2/logout`` is what the IdP sends there."""
    services = request.app[SERVICES]
    domain = await services.domains.served_domain(request_host(request), services.settings.region)
    return services.federation.acs_url_for(domain)


async def begin(request: web.Request, session: SsoSession | None, then: str) -> str | None:
    """Called by ``/logout`` once the local session has ended: the IdP's logout URL when the session came
    from a SAML IdP with IDPSignout, else None."""
    if session is None or not session.upstream:
        return None
    return await saml_logout_service(request).begin(session, then, acs_url=await _acs_url(request))


def _redirect(request: web.Request, location: str, *, status: int = 302) -> web.Response:
    # The IdP's URLs are as its metadata names them: sent as URIs (RFC 3987 §3.1).
    response = web.Response(status=status, headers={"Location": iri_to_uri(location)})
    finish(request, response, request.app[SERVICES].settings)
    return response


def _post_page(request: web.Request, url: str, form: Mapping[str, str]) -> web.Response:
    """The IdP takes its answer by HTTP-POST only (SAML Bindings §3.5): a page that posts the signed
    LogoutResponse there by itself (or by its button, without scripts)."""
    inputs = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in form.items())
    body = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><title>Signing out</title></head>'
        '<body onload="document.forms[0].submit()"><main>'
        f'<form method="post" action="{html.escape(url)}">{inputs}'
        "<h1>Signing out</h1><p>Taking you back to your organization's sign-in service.</p>"
        "<noscript><button type=submit>Continue</button></noscript></form></main></body></html>"
    )
    response = web.Response(text=body, content_type="text/html")
    finish(request, response, request.app[SERVICES].settings)
    # As the SAML sign-in page: its one inline script, a form to the IdP's (http(s)) endpoint, nothing else.
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; script-src 'unsafe-inline'; form-action *; frame-ancestors 'none'; base-uri 'none'"
    )
    return response


def _after(binding: Binding) -> int:
    """303 after a POST, so the browser GETs the next page (never re-POSTs); 302 otherwise."""
    return 303 if binding == "post" else 302


async def saml2_logout(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    binding: Binding = "redirect"
    if request.method == "POST":
        binding = "post"
        params = dict(await read_form(request))
    else:
        params = {k: v for k, v in request.query.items() if isinstance(v, str)}
    logout = saml_logout_service(request)
    try:
        if "SAMLResponse" in params:
            finished = await logout.finish(params, binding=binding, acs_url=await _acs_url(request))
            return _redirect(request, finished, status=_after(binding))
        if "SAMLRequest" in params:
            sessions = []
            prefix = cookie_name(SSO_COOKIE_PREFIX, services.settings)
            for name, token in request.cookies.items():
                if name.startswith(prefix):
                    session = await services.oauth.sso_session(name[len(prefix) :], token)
                    if session is not None:
                        sessions.append((token, session))
            outcome = await logout.idp_initiated(
                params, sessions, binding=binding, pool_id=await routed_pool(request), acs_url=await _acs_url(request)
            )
            if outcome.response_form is None:
                response = _redirect(request, outcome.response_url, status=_after(binding))
            else:
                response = _post_page(request, outcome.response_url, outcome.response_form)
            for pool_id in outcome.ended:
                response.del_cookie(f"{prefix}{pool_id}", path="/", secure=secure_cookies(services.settings))
            return response
        raise AuthorizationPageError("A SAML logout message is required.")
    except AuthorizationPageError as exc:
        return error_page(request, services.settings, exc.message)


def add_routes(app: web.Application) -> None:
    for prefix in ("", "/{pool_id}"):
        app.router.add_get(f"{prefix}/saml2/logout", with_request_id(saml2_logout))
        app.router.add_post(f"{prefix}/saml2/logout", with_request_id(saml2_logout, oversized_form_page))
