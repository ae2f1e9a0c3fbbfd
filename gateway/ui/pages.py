"""The hosted UI: ``/login``, ``/signup``, ``/confirm``, ``/forgotPassword``, ``/confirmForgotPassword``.

Server-rendered pages for one stored authorization request, carried as ``rid``. Signing in goes through the
same challenge engine as InitiateAuth (gateway/services/auth.py) with the password flow, as Cognito's managed
login does whatever the client's ExplicitAuthFlows; when the pool's SignInPolicy.AllowedFirstAuthFactors
allows them, the login page also offers a passkey (WEB_AUTHN) and a one-time code by email or SMS, started
with the USER_AUTH flow (gateway/ui/sign_in_methods.py). Every challenge has its form: NEW_PASSWORD_REQUIRED,
SOFTWARE_TOKEN_MFA, MFA_SETUP (an authenticator app with a QR code, or email: gateway/ui/mfa_setup.py), SMS_MFA
and EMAIL_OTP (a code sent now), SELECT_MFA_TYPE (one button per factor), WEB_AUTHN (the one page with a script,
gateway/ui/static/passkey.js, which calls navigator.credentials.get); device challenges never arise, as the
pages name no device. Any other challenge is asked for with one generic answer field. Once the engine answers
with tokens, the tokens are revoked unseen (the sign-in is the browser's, not an app's), a single sign-on
session starts, and the authorization request is answered with a code. Every POST checks the CSRF token and
answers with a page or a 303.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import pyotp
import segno
import structlog
from aiohttp import web

from gateway.errors import (
    AuthorizationPageError,
    CodeMismatchException,
    ExpiredCodeException,
    GatehouseError,
    InvalidParameterException,
    NotAuthorizedException,
    PasswordResetRequiredException,
    ResourceNotFoundException,
    TooManyRequestsException,
    UserNotConfirmedException,
    UserNotFoundException,
)
from gateway.ids import sha256_hex
from gateway.logging import with_request_id
from gateway.oauth.endpoints import base_path, routed_pool, set_sso_cookie
from gateway.oauth.federation import offers_corporate_sign_in, provider_buttons, provider_sign_in_url
from gateway.oauth.forms import FORM_TOO_LARGE, read_form
from gateway.oauth.wellknown import SERVICES
from gateway.secretbox import SecretBoxError
from gateway.services.auth import AuthContext, AuthResult
from gateway.services.cimd import app_client_id
from gateway.services.container import Services
from gateway.services.domains import CUSTOMIZABLE_CLASSES
from gateway.services.federation import provider_for_email_domain
from gateway.services.oauth import AuthorizationRequest
from gateway.services.pools import ClientView, PoolView
from gateway.services.schema import required_attributes
from gateway.services.ui_css import check_css
from gateway.services.users import CodeDelivery, confirms_with_link, secret_hash
from gateway.storage.base import UICustomizationRecord
from gateway.ui import mfa_setup as setup_pages
from gateway.ui.branding import branding_logo, branding_logo_url
from gateway.ui.inputs import ATTRIBUTE_HINTS, attribute_list, form_error, password_hint
from gateway.ui.render import csrf_ok, error_page, found, page, page_from_parts, render_parts, see_other
from gateway.ui.sign_in_methods import (
    ANSWER_FIELD,
    CHOICE_LABELS,
    CODE_CHALLENGES,
    amr_after,
    code_intro,
    first_factor_methods,
    method_buttons,
    open_factor,
    parse_choices,
    seal_factor,
)
from gateway.uris import iri_to_uri

log = structlog.get_logger("gateway.ui")

# The hosted UI signs in with the password flow, as Cognito's managed login does.
_HOSTED_FLOWS = ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_USER_AUTH"]
_MFA_CHALLENGES = {"SOFTWARE_TOKEN_MFA", "MFA_SETUP", "SMS_MFA", "EMAIL_OTP"}
_INCORRECT = "Incorrect username or password."
_FIELD_LABELS = {
    "email": ("Email", "email", "email"),
    "phone_number": ("Phone number", "tel", "tel"),
    "name": ("Name", "text", "name"),
    "given_name": ("Given name", "text", "given-name"),
    "family_name": ("Family name", "text", "family-name"),
    "birthdate": ("Birth date", "text", "bday"),
    "preferred_username": ("Preferred username", "text", "nickname"),
}


@dataclasses.dataclass(frozen=True)
class _Hosted:
    request: AuthorizationRequest
    pool: PoolView
    client: ClientView
    base: str
    custom_css_url: str | None = None
    logo_url: str | None = None


async def _hosted(request: web.Request, known: AuthorizationRequest | None = None) -> _Hosted:
    """The authorization request a page belongs to, its pool and client (a page error when gone). ``known``:
    the request as this process read it before (see OAuthService.load_request)."""
    services = request.app[SERVICES]
    oauth = services.oauth
    auth_request = await oauth.load_request(request.query.get("rid"), known=known)
    routed = await routed_pool(request)
    if routed is not None and routed != auth_request.pool_id:
        raise AuthorizationPageError("This sign-in page belongs to another user pool.")
    pool, client = await oauth.client(auth_request.client_id, pool_id=auth_request.pool_id)
    # A client ID metadata document client shows its app client's pages and takes from its bucket.
    app_client = app_client_id(client)
    if request.method == "POST":
        # The app client's bucket too, as the API's unsigned calls take from it (the address's is in _form).
        services.rate_limits.check("HostedUI", {"ClientId": app_client}, None)
    base = base_path(request)
    css_url, logo_url = await _branding(services, pool.id, app_client, base)
    return _Hosted(auth_request, pool, client, base, css_url, logo_url)


async def _branding(services: Services, pool_id: str, app_client: str, base: str) -> tuple[str | None, str | None]:
    """The URLs of an app client's stylesheet and logo (SetUICustomization, or its managed login branding
    style's logo), None for each it has not got."""
    custom = await services.domains.page_customization(pool_id, app_client)
    css_url = logo_url = None
    if custom is not None:
        version = int(custom.updated_at)
        if custom.css:
            css_url = f"{base}/ui/{pool_id}/{custom.client_id}/custom.css?v={version}"
        if custom.image:
            logo_url = f"{base}/ui/{pool_id}/{custom.client_id}/logo?v={version}"
    # A managed login branding style's logo, when the client's style has one, takes the logo's place.
    logo_url = await branding_logo_url(services, pool_id, app_client, base) or logo_url
    return css_url, logo_url


def _context(hosted: _Hosted, **values: Any) -> dict[str, Any]:
    username_label, username_type = _username_field(hosted.pool)
    return {
        "base": hosted.base,
        "username_label": username_label,
        "username_type": username_type,
        "password_hint": password_hint(hosted.pool.password_policy),
        "rid": hosted.request.id,
        "error": None,
        "notice": None,
        "custom_css_url": hosted.custom_css_url,
        "logo_url": hosted.logo_url,
        "logo_alt": f"{hosted.client.record.name} logo",
        **values,
    }


def _hosted_client(client: ClientView) -> ClientView:
    settings = {**client.settings, "ExplicitAuthFlows": list(_HOSTED_FLOWS)}
    return ClientView(dataclasses.replace(client.record, settings=settings))


def _secret_hash(client: ClientView, username: str) -> str | None:
    return secret_hash(client.id, client.secret, username) if client.secret else None


def _ctx(request: web.Request, hosted: _Hosted) -> AuthContext:
    # The caller's address as the API takes it (X-Forwarded-For believed only from trusted proxies): threat
    # protection's blocked and skipped ranges must see the same address whichever way a sign-in comes.
    source_ip = request.app[SERVICES].rate_limits.address_of(request.remote, request.headers)
    # The engine's tokens are revoked unseen (see _signed_in): the code grant starts the user's session.
    return AuthContext(
        pool=hosted.pool, client=_hosted_client(hosted.client), admin=False, source_ip=source_ip, starts_session=False
    )


async def _form(request: web.Request) -> dict[str, str] | None:
    """The posted form, or None when its CSRF token is missing or wrong.

    Every form post (a password, a code, a sign-up: what InitiateAuth, RespondToAuthChallenge, SignUp, ... do
    on the API) starts here, and first takes a token from its source address's rate-limit bucket, the one the
    API's unsigned calls take from, so the pages are no way around the limits; past it the answer is a 429
    page (:func:`_page_error`), before the form is read."""
    limits = request.app[SERVICES].rate_limits
    limits.check("HostedUI", {}, limits.address_of(request.remote, request.headers))
    values = dict(await read_form(request))
    return values if csrf_ok(request, values) else None


def _csrf_refused(request: web.Request) -> web.Response:
    settings = request.app[SERVICES].settings
    return error_page(
        request, settings, "This form has expired or was not sent from this site. Go back and try again.", status=403
    )


def _link(hosted: _Hosted, path: str, **params: str) -> str:
    return f"{hosted.base}{path}?" + urlencode({"rid": hosted.request.id, **params})


def _page_error(request: web.Request, exc: Exception) -> web.Response | None:
    """A page error (a gone request, an unknown pool), a refused rate limit or a form past the body limit,
    rendered as the error page a person should see (see :func:`gateway.logging.with_request_id`)."""
    settings = request.app[SERVICES].settings
    if isinstance(exc, AuthorizationPageError):
        return error_page(request, settings, exc.message)
    if isinstance(exc, TooManyRequestsException):
        return error_page(request, settings, "Too many requests. Wait a moment and try again.", status=429)
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        # A form past the server's body limit (client_max_size): a page, as for any other refused form.
        return error_page(request, settings, FORM_TOO_LARGE, status=413)
    return None


async def _cognito_style(request: web.Request) -> web.Response | None:
    """``/login?client_id=...&redirect_uri=...`` (Cognito's hosted UI link): start at the authorize endpoint."""
    if request.query.get("rid") is None and request.query.get("client_id"):
        # The path and query as they came, not decoded: a decoded pool segment of "%2Fevil.example" would make
        # "//evil.example/..." (another site), and a decoded query could hold CR/LF or characters no Location
        # may (RFC 3986); what is left outside a URI's characters is percent-encoded (RFC 3987 §3.1).
        prefix = request.rel_url.raw_path.rpartition("/")[0]
        location = iri_to_uri(f"{prefix}/oauth2/authorize?{request.rel_url.raw_query_string}")
        return web.Response(status=302, headers={"Location": location})
    return None


# --- /login -----------------------------------------------------------------------------------------------


def _login_page(request: web.Request, hosted: _Hosted, *, status: int = 200, **values: Any) -> web.Response:
    settings = request.app[SERVICES].settings
    values = _login_values(request, hosted, **values)
    return page(request, settings, "login.html", _context(hosted, **values), status=status)


def _username_field(pool: PoolView) -> tuple[str, str]:
    """The username field's label and input type: what a person of this pool signs in with. A pool whose
    usernames are email addresses or phone numbers (UsernameAttributes) asks for that, in a field of that
    type, so a phone shows the keyboard for it (HTML's email and tel input types); autocomplete stays
    ``username`` for password managers."""
    by = pool.username_attributes
    if "email" in by and "phone_number" in by:
        return "Email or phone number", "text"
    if "email" in by:
        return "Email", "email"
    if "phone_number" in by:
        return "Phone number", "tel"
    return "Username", "text"


def _login_values(request: web.Request, hosted: _Hosted, **values: Any) -> dict[str, Any]:
    """The sign-in page's template values: ``values``, and what the pool, client and request say."""
    values["can_sign_up"] = not hosted.pool.admin_create_user_config.get("AllowAdminCreateUserOnly")
    values.setdefault("username", hosted.request.login_hint or "")
    values.setdefault("providers", provider_buttons(hosted.base, hosted.request, hosted.client))
    values.setdefault("corporate_sign_in", offers_corporate_sign_in(hosted.client))
    values.setdefault("sso_email", "")
    values.setdefault("password_sign_in", _cognito_allowed(hosted.client))
    methods = first_factor_methods(request.app[SERVICES], hosted.pool) if values["password_sign_in"] else []
    values.setdefault("methods", method_buttons(methods))
    return values


@dataclasses.dataclass(frozen=True)
class _CachedLogin:
    """A rendered sign-in page (without its CSRF token) and what it was rendered from."""

    hosted: _Hosted
    notice: str | None
    parts: tuple[bytes, ...]

    def fits(self, hosted: _Hosted, notice: str | None) -> bool:
        # The pool and client by identity: the objects of the pool service's short-lived cache, replaced when
        # it reads them again, so a changed pool or client renders anew. The rest by value.
        mine = self.hosted
        return (
            mine.pool is hosted.pool
            and mine.client is hosted.client
            and (mine.request is hosted.request or mine.request == hosted.request)
            and mine.base == hosted.base
            and mine.custom_css_url == hosted.custom_css_url
            and mine.logo_url == hosted.logo_url
            and self.notice == notice
        )


# The sign-in pages of this process by request id: a stored request's page is the same for every browser but
# for the CSRF token, and a browser without a session GETs it again and again.
LOGIN_PAGES: web.AppKey[dict[str, _CachedLogin]] = web.AppKey("gatehouse_login_pages", dict)
_LOGIN_PAGES_MAX = 1024


def _login_get_page(request: web.Request, hosted: _Hosted, notice: str | None) -> web.Response:
    """The sign-in page as :func:`_login_page` renders it for a GET, rendered once per request id (and pool,
    client and branding as this process last read them) and joined around each browser's CSRF token. The
    request itself is read from the store on every GET, so a page whose request is used up or expired is
    never served from here."""
    pages = request.app[LOGIN_PAGES]
    cached = pages.get(hosted.request.id)
    if cached is None or not cached.fits(hosted, notice):
        values = _login_values(request, hosted, notice=notice)
        parts = render_parts("login.html", _context(hosted, **values))
        if len(pages) >= _LOGIN_PAGES_MAX:
            pages.clear()
        cached = pages[hosted.request.id] = _CachedLogin(hosted, notice, parts)
    return page_from_parts(request, request.app[SERVICES].settings, cached.parts)


def _cognito_allowed(client: ClientView) -> bool:
    providers = client.settings.get("SupportedIdentityProviders")
    return providers is None or "COGNITO" in providers


async def login_get(request: web.Request) -> web.Response:
    redirect = await _cognito_style(request)
    if redirect is not None:
        return redirect
    rid = request.query.get("rid")
    cached = request.app[LOGIN_PAGES].get(rid) if rid else None
    hosted = await _hosted(request, cached.hosted.request if cached is not None else None)
    if not _cognito_allowed(hosted.client) and not provider_buttons(hosted.base, hosted.request, hosted.client):
        raise AuthorizationPageError("This application does not allow signing in with a username and password.")
    notice = _NOTICES.get(request.query.get("done", ""))
    return _login_get_page(request, hosted, notice)


async def login_sso(request: web.Request) -> web.Response:
    """The sign-in page's corporate email form (``GET /login/sso?rid=...&email=...``): the email's domain
    names the provider through its IdpIdentifiers, as on Cognito's managed login, and the browser goes on
    as that provider's button would send it. Nothing is stored and nothing is signed in here."""
    hosted = await _hosted(request)
    email = request.query.get("email", "").strip()
    local, at, domain = email.rpartition("@")
    provider = None
    if local and at and 0 < len(domain) <= 253 and offers_corporate_sign_in(hosted.client):
        try:
            provider = await provider_for_email_domain(
                request.app[SERVICES].store, hosted.pool.id, hosted.client.settings, domain
            )
        except InvalidParameterException:
            provider = None
    if provider is None:
        return _login_page(
            request,
            hosted,
            status=400,
            sso_email=email[:320],
            error="Single sign-on is not set up for that email address. Check it, or sign in another way.",
        )
    settings = request.app[SERVICES].settings
    return found(request, settings, provider_sign_in_url(hosted.base, hosted.request, provider))


# What /login?done=... says above the form.
_NOTICES = {
    "confirmed": "Your account is confirmed. Sign in to continue.",
    "reset": "Your password has been changed. Sign in to continue.",
}


async def login_post(request: web.Request) -> web.StreamResponse:
    form = await _form(request)
    if form is None:
        return _csrf_refused(request)
    hosted = await _hosted(request)
    if not _cognito_allowed(hosted.client):
        raise AuthorizationPageError("This application does not allow signing in with a username and password.")
    username, password = form.get("username", "").strip(), form.get("password", "")
    method = form.get("method")
    if method:
        return await _passwordless_start(request, hosted, username, method)
    if not username or not password:
        return _login_page(request, hosted, status=400, username=username, error="Enter your username and password.")
    auth = request.app[SERVICES].auth
    parameters = {"USERNAME": username, "PASSWORD": password}
    hashed = _secret_hash(hosted.client, username)
    if hashed:
        parameters["SECRET_HASH"] = hashed
    try:
        result = await auth.initiate(_ctx(request, hosted), "USER_PASSWORD_AUTH", parameters)
    except UserNotConfirmedException:
        return see_other(request, request.app[SERVICES].settings, _link(hosted, "/confirm", username=username))
    except PasswordResetRequiredException:
        return see_other(
            request, request.app[SERVICES].settings, _link(hosted, "/forgotPassword", username=username, why="reset")
        )
    except (UserNotFoundException, NotAuthorizedException) as exc:
        shown = exc.message if exc.message in ("Password attempts exceeded", "User is disabled.") else _INCORRECT
        return _login_page(request, hosted, status=400, username=username, error=shown)
    except GatehouseError as exc:
        return _login_page(request, hosted, status=400, username=username, error=exc.message)
    return await _next_step(request, hosted, result, username, amr=("pwd",))


async def _passwordless_start(request: web.Request, hosted: _Hosted, username: str, method: str) -> web.StreamResponse:
    """A passwordless button (passkey, emailed or texted code): USER_AUTH with that PREFERRED_CHALLENGE."""
    if method not in first_factor_methods(request.app[SERVICES], hosted.pool):
        return _login_page(request, hosted, status=400, username=username, error="Choose a way to sign in.")
    if not username:
        return _login_page(request, hosted, status=400, username=username, error="Enter your username.")
    parameters = {"USERNAME": username, "PREFERRED_CHALLENGE": method}
    hashed = _secret_hash(hosted.client, username)
    if hashed:
        parameters["SECRET_HASH"] = hashed
    unavailable = {
        "WEB_AUTHN": "There is no passkey for this account here. Sign in with your password.",
        "EMAIL_OTP": "This account cannot get a sign-in code by email. Sign in with your password.",
        "SMS_OTP": "This account cannot get a sign-in code by text message. Sign in with your password.",
    }[method]
    try:
        result = await request.app[SERVICES].auth.initiate(_ctx(request, hosted), "USER_AUTH", parameters)
    except (UserNotFoundException, NotAuthorizedException) as exc:
        shown = exc.message if exc.message in ("Password attempts exceeded", "User is disabled.") else unavailable
        return _login_page(request, hosted, status=400, username=username, error=shown)
    except UserNotConfirmedException:
        return see_other(request, request.app[SERVICES].settings, _link(hosted, "/confirm", username=username))
    except GatehouseError as exc:
        return _login_page(request, hosted, status=400, username=username, error=exc.message)
    if result.challenge_name == "SELECT_CHALLENGE":
        # The user cannot take the chosen factor (no passkey, no verified address).
        return _login_page(request, hosted, status=400, username=username, error=unavailable)
    factor = seal_factor(request.app[SERVICES], hosted.request.id, username, method)
    return await _next_step(request, hosted, result, username, amr=amr_after(method, None), factor=factor)


async def _next_step(
    request: web.Request,
    hosted: _Hosted,
    result: AuthResult,
    username: str,
    *,
    amr: tuple[str, ...],
    factor: str | None = None,
) -> web.StreamResponse:
    """Tokens: the sign-in is complete. A challenge: its form."""
    if result.tokens is not None:
        return await _signed_in(request, hosted, result, amr)
    name = result.challenge_name or ""
    session = result.session or ""
    if name == "MFA_SETUP":
        offered = setup_pages.setup_choices(result.challenge_parameters.get("MFAS_CAN_SETUP"))
        if not offered:
            return _login_page(request, hosted, status=400, username=username, error=setup_pages.NO_SETUP_HERE)
        if offered == ["EMAIL_OTP"]:
            extra = {"setup": setup_pages.EMAIL, "choices": json.dumps(offered)}
            return _challenge_page(request, hosted, name, session, username, factor=factor, extra=extra)
        if len(offered) > 1:
            extra = {"setup": setup_pages.CHOOSE, "choices": json.dumps(offered)}
            return _challenge_page(request, hosted, name, session, username, factor=factor, extra=extra)
        auth = request.app[SERVICES].auth
        secret, session = await auth.associate_in_setup(session)
        return _challenge_page(request, hosted, name, session, username, secret=secret, factor=factor)
    return _challenge_page(
        request, hosted, name, session, username, parameters=result.challenge_parameters, factor=factor
    )


def _challenge_page(
    request: web.Request,
    hosted: _Hosted,
    name: str,
    session: str,
    username: str,
    *,
    secret: str | None = None,
    parameters: Mapping[str, str] | None = None,
    error: str | None = None,
    status: int = 200,
    factor: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> web.Response:
    settings = request.app[SERVICES].settings
    extra = dict(extra or {})
    code_field = {
        "name": "code",
        "label": "Code",
        "type": "text",
        "autocomplete": "one-time-code",
        "inputmode": "numeric",
    }
    values: dict[str, Any] = {
        "challenge": name,
        "session": session,
        "username": username,
        "qr_svg": None,
        "secret": None,
        "intro": None,
        "factor": factor,
        "choices": [],
        "passkey_options": None,
        "extra": extra,
        "scripts": False,
    }
    if name == "NEW_PASSWORD_REQUIRED":
        fields = [
            {
                "name": "new_password",
                "label": "New password",
                "type": "password",
                "autocomplete": "new-password",
                "hint": password_hint(hosted.pool.password_policy),
            }
        ]
        try:
            required = json.loads((parameters or {}).get("requiredAttributes") or "[]")
        except ValueError:
            required = []
        for attribute in required:
            short = str(attribute).removeprefix("userAttributes.")
            label, kind, complete = _FIELD_LABELS.get(short, (short.replace("_", " ").capitalize(), "text", "on"))
            fields.append({"name": f"attr:{short}", "label": label, "type": kind, "autocomplete": complete})
            if short in ATTRIBUTE_HINTS:
                fields[-1]["hint"] = ATTRIBUTE_HINTS[short]
        values.update(heading="Change your password", intro="You must choose a new password to continue.")
        values.update(fields=fields, button="Change password")
    elif name == "SOFTWARE_TOKEN_MFA":
        values.update(heading="Enter your authentication code", fields=[code_field], button="Sign in")
        values["intro"] = "Enter the 6-digit code from your authenticator app."
    elif name == "MFA_SETUP" and extra.get("setup") == setup_pages.CHOOSE:
        offered = setup_pages.setup_choices(extra.get("choices"))
        values.update(heading="Add a second step to your sign-in", fields=[], button=None)
        values["choices"] = [{"value": c, "label": setup_pages.SETUP_LABELS[c]} for c in offered]
        values["intro"] = "Your account needs a second way to prove it's you each time you sign in. Choose one."
    elif name == "MFA_SETUP" and extra.get("setup") == setup_pages.EMAIL:
        email_field = {"name": "email", "label": "Email address", "type": "email", "autocomplete": "email"}
        values.update(heading="Get sign-in codes by email", fields=[email_field], button="Send code")
        values["intro"] = "Enter your email address. We'll send a code to it now, and each time you sign in."
    elif name == "MFA_SETUP":
        assert secret is not None
        uri = pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=hosted.pool.name)
        qr = segno.make(uri, error="m")
        values.update(heading="Set up an authenticator app", fields=[code_field], button="Verify and sign in")
        values.update(secret=secret, qr_svg=qr.svg_inline(scale=4, title="QR code for your authenticator app"))
        values["intro"] = "Scan the QR code with an authenticator app, then enter the 6-digit code it shows."
    elif name in CODE_CHALLENGES:
        destination = (parameters or {}).get("CODE_DELIVERY_DESTINATION") or extra.get("destination", "")
        extra["destination"] = destination
        heading, intro = code_intro(name, destination)
        values.update(heading=heading, intro=intro, fields=[code_field], button="Sign in")
    elif name == "SELECT_MFA_TYPE":
        choices = parse_choices((parameters or {}).get("MFAS_CAN_CHOOSE") or extra.get("choices", ""))
        extra["choices"] = json.dumps(choices)
        values.update(heading="Choose how to verify it's you", fields=[], button=None)
        values["choices"] = [{"value": c, "label": CHOICE_LABELS[c]} for c in choices]
        values["intro"] = "Your account has more than one way to prove it's you. Choose one."
    elif name == "WEB_AUTHN":
        options = (parameters or {}).get("CREDENTIAL_REQUEST_OPTIONS") or extra.get("options", "")
        extra["options"] = options
        values.update(heading="Sign in with a passkey", fields=[], button="Use my passkey", scripts=True)
        values["passkey_options"] = options
        values["intro"] = "Use the passkey on this device or your security key when your browser asks."
    else:
        values.update(heading="Verify it's you", fields=[dict(code_field, label="Answer")], button="Continue")
        values["intro"] = f"Answer the {name.replace('_', ' ').lower()} challenge to continue."
    scripts = bool(values.pop("scripts"))
    context = _context(hosted, error=error, **values)
    return page(request, settings, "challenge.html", context, status=status, scripts=scripts)


async def challenge_post(request: web.Request) -> web.StreamResponse:
    form = await _form(request)
    if form is None:
        return _csrf_refused(request)
    hosted = await _hosted(request)
    services = request.app[SERVICES]
    name, session, username = form.get("challenge", ""), form.get("session", ""), form.get("username", "")
    answer = form.get("code", "").strip()
    responses: dict[str, str] = {"USERNAME": username}
    hashed = _secret_hash(hosted.client, username)
    if hashed:
        responses["SECRET_HASH"] = hashed
    ctx = _ctx(request, hosted)
    secret = form.get("secret")
    method = open_factor(services, hosted.request.id, username, form.get("factor"))
    factor = form.get("factor") if method else None
    extra = {k: form[k] for k in ("destination", "choices", "options", "setup") if form.get(k)}
    try:
        if name == "NEW_PASSWORD_REQUIRED":
            responses["NEW_PASSWORD"] = form.get("new_password", "")
            for key, value in form.items():
                if key.startswith("attr:"):
                    responses[f"userAttributes.{key[5:]}"] = value
        elif name == "SOFTWARE_TOKEN_MFA":
            responses["SOFTWARE_TOKEN_MFA_CODE"] = answer
        elif name == "MFA_SETUP" and extra.get("setup") == setup_pages.CHOOSE:
            return await _setup_chosen(request, hosted, session, username, form.get("choice", ""), factor, extra)
        elif name == "MFA_SETUP" and extra.get("setup") == setup_pages.EMAIL:
            responses["EMAIL"] = form.get("email", "").strip()
        elif name == "MFA_SETUP":
            session = await services.auth.verify_in_setup(session, answer, "Authenticator")
        elif name in ANSWER_FIELD:
            responses[ANSWER_FIELD[name]] = answer
        elif name == "SELECT_MFA_TYPE":
            responses["ANSWER"] = form.get("choice", "")
        elif name == "WEB_AUTHN":
            credential = form.get("credential", "")
            if not credential:
                return _login_page(
                    request, hosted, status=400, username=username, error="Your passkey was not used. Try again."
                )
            responses["CREDENTIAL"] = credential
        else:
            responses.update({"ANSWER": answer, f"{name}_CODE": answer})
        result = await services.auth.respond(ctx, name, responses, session)
    except GatehouseError as exc:
        if isinstance(exc, NotAuthorizedException) and "session" in exc.message.lower():
            return _login_page(
                request, hosted, status=400, username=username, error="Your session has expired. Sign in again."
            )
        message = exc.message
        if name == "MFA_SETUP" and "Code mismatch" in message:
            message = "That code is not right. Enter the code your authenticator app shows now."
        elif isinstance(exc, CodeMismatchException):
            message = "That code is not right. Check the code and try again."
        elif isinstance(exc, ExpiredCodeException):
            return _login_page(
                request, hosted, status=400, username=username, error="That code has expired. Sign in again."
            )
        elif name == "WEB_AUTHN":
            message = "Your passkey could not be verified. Sign in again, or sign in with your password."
        elif name == "SELECT_MFA_TYPE":
            message = "Choose one of the ways shown."
        elif name == "MFA_SETUP" and extra.get("setup") == setup_pages.EMAIL and "email" in message.lower():
            message = f"{message} Check the email address and try again."
        if isinstance(exc, NotAuthorizedException) or name == "WEB_AUTHN":
            return _login_page(request, hosted, status=400, username=username, error=message)
        return _challenge_page(
            request,
            hosted,
            name,
            session,
            username,
            secret=secret,
            error=message,
            status=400,
            parameters=None,
            factor=factor,
            extra=extra,
        )
    if method is not None:
        amr = amr_after(method, name)
    else:
        amr = ("pwd", "otp", "mfa") if name in _MFA_CHALLENGES else ("pwd",)
    return await _next_step(request, hosted, result, username, amr=amr, factor=factor)


async def _setup_chosen(
    request: web.Request,
    hosted: _Hosted,
    session: str,
    username: str,
    choice: str,
    factor: str | None,
    extra: dict[str, str],
) -> web.Response:
    """The MFA_SETUP choice page's answer: the authenticator app's QR code, or the email address form. Choosing
    changes nothing on the server; the sign-in's own checks come with the set-up itself."""
    offered = setup_pages.setup_choices(extra.get("choices"))
    if choice not in offered:
        return _challenge_page(
            request,
            hosted,
            "MFA_SETUP",
            session,
            username,
            error="Choose one of the ways shown.",
            status=400,
            factor=factor,
            extra=extra,
        )
    if choice == "EMAIL_OTP":
        extra = {**extra, "setup": setup_pages.EMAIL}
        return _challenge_page(request, hosted, "MFA_SETUP", session, username, factor=factor, extra=extra)
    secret, session = await request.app[SERVICES].auth.associate_in_setup(session)
    return _challenge_page(request, hosted, "MFA_SETUP", session, username, secret=secret, factor=factor)


async def _signed_in(
    request: web.Request, hosted: _Hosted, result: AuthResult, amr: tuple[str, ...]
) -> web.StreamResponse:
    """The engine issued tokens: revoke them unseen, start the SSO session, answer the request."""
    services = request.app[SERVICES]
    assert result.tokens is not None
    origin = result.tokens.origin_jti
    family = await services.store.get_token_family(origin)
    await services.store.revoke_token_family(origin)
    user = await services.store.get_user(hosted.pool.id, family.username_key) if family else None
    if family is None or user is None:
        raise AuthorizationPageError("Signing in failed. Go back to the application and try again.")
    auth_time = int(family.auth_time)
    token = await services.oauth.start_sso(
        hosted.pool.id,
        user,
        auth_time,
        amr,
        client_id=hosted.client.id,
        user_agent=request.headers.get("User-Agent"),
        ip=services.rate_limits.address_of(request.remote, request.headers),
    )
    location = await services.oauth.issue_authorization_code(
        hosted.request, user, auth_time, amr, sso_key=sha256_hex(token)
    )
    log.info("hosted_ui.signed_in", pool=hosted.pool.id, client=hosted.client.id, username=user.username)
    response = see_other(request, services.settings, location)
    set_sso_cookie(response, services, hosted.pool.id, token)
    return response


# --- /signup and /confirm ---------------------------------------------------------------------------------


def _signup_fields(pool: PoolView) -> tuple[dict[str, str], list[dict[str, str]]]:
    """The username field (its label and type) and the required attributes' fields. A pool that signs in by
    email and phone number takes the email address as the username (see :func:`signup_post`)."""
    by_email = "email" in pool.username_attributes
    label, username_type = ("Email", "email") if by_email else _username_field(pool)
    fields = []
    for name in required_attributes(pool.schema):
        if by_email and name == "email":
            continue
        text, kind, complete = _FIELD_LABELS.get(name, (name.replace("_", " ").capitalize(), "text", "on"))
        fields.append({"name": name, "label": text, "type": kind, "autocomplete": complete})
        if name in ATTRIBUTE_HINTS:
            fields[-1]["hint"] = ATTRIBUTE_HINTS[name]
    return {"label": label, "type": username_type}, fields


async def signup_get(request: web.Request) -> web.Response:
    redirect = await _cognito_style(request)
    if redirect is not None:
        return redirect
    hosted = await _hosted(request)
    username_field, fields = _signup_fields(hosted.pool)
    services = request.app[SERVICES]
    terms = await services.terms.for_sign_up(hosted.pool.id, app_client_id(hosted.client))
    context = _context(hosted, username_field=username_field, attributes=fields, values={}, terms=terms)
    return page(request, services.settings, "signup.html", context)


async def signup_post(request: web.Request) -> web.StreamResponse:
    form = await _form(request)
    if form is None:
        return _csrf_refused(request)
    hosted = await _hosted(request)
    services = request.app[SERVICES]
    username_field, fields = _signup_fields(hosted.pool)
    username = form.get("username", "").strip()
    attributes = {f["name"]: form.get(f"attr:{f['name']}", "").strip() for f in fields}
    if "email" in hosted.pool.username_attributes:
        attributes["email"] = username
    given = {k: v for k, v in attributes.items() if v}
    password = form.get("password", "")
    refused = form_error(
        "SignUp",
        {
            "ClientId": app_client_id(hosted.client),
            "Username": username,
            "Password": password,
            "UserAttributes": attribute_list(given),
        },
    )
    terms = await services.terms.for_sign_up(hosted.pool.id, app_client_id(hosted.client))
    if refused is not None:
        context = _context(
            hosted, username_field=username_field, attributes=fields, values=form, error=refused, terms=terms
        )
        return page(request, services.settings, "signup.html", context, status=400)
    try:
        user, delivery = await services.users.sign_up(
            hosted.pool,
            hosted.client,
            username=username,
            password=password,
            attributes=given,
            secret_hash_value=_secret_hash(hosted.client, username),
        )
    except GatehouseError as exc:
        context = _context(
            hosted, username_field=username_field, attributes=fields, values=form, error=exc.message, terms=terms
        )
        return page(request, services.settings, "signup.html", context, status=400)
    if user.status == "CONFIRMED":
        return see_other(request, services.settings, _link(hosted, "/login", done="confirmed"))
    sent = _seal_sent(services, hosted.request.id, username, delivery)
    return see_other(request, services.settings, _link(hosted, "/confirm", username=username, sent=sent))


def _sent_aad(rid: str, username: str) -> bytes:
    return f"hosted-ui:sign-up-delivery|{rid}|{username}".encode(errors="surrogatepass")


def _seal_sent(services: Services, rid: str, username: str, delivery: CodeDelivery | None) -> str:
    """SignUp's CodeDeliveryDetails (its DeliveryMedium and masked Destination), or ``{}`` when no code was
    sent, sealed for the /confirm page it redirects to: the page shows what was sent, and a link cannot make it
    show anything else (the value is bound to the request and the username)."""
    details = delivery.to_json() if delivery is not None else {}
    return services.box.seal(json.dumps(details).encode(), aad=_sent_aad(rid, username))


def _open_sent(services: Services, rid: str, username: str, sealed: str | None) -> dict[str, str] | None:
    """The delivery :func:`_seal_sent` sealed (``{}``: nothing was sent), or None when there is none (absent,
    altered, or another request's or username's)."""
    if not sealed or len(sealed) > 1024:
        return None
    try:
        details = json.loads(services.box.open(sealed, aad=_sent_aad(rid, username)))
    except (SecretBoxError, ValueError):
        return None
    if not isinstance(details, dict) or not all(isinstance(v, str) for v in details.values()):
        return None
    return details


def _sent_link(pool: PoolView, details: Mapping[str, str]) -> bool:
    """Whether what CodeDeliveryDetails describes was a confirmation link: an email of a pool that confirms
    sign-ups with one (CONFIRM_WITH_LINK); its codes by SMS stay codes."""
    return details.get("DeliveryMedium") == "EMAIL" and confirms_with_link(pool)


def _code_sent(pool: PoolView, details: Mapping[str, str], *, again: bool = False) -> str:
    """The line above the code field for a code sent as CodeDeliveryDetails says, in the words of Cognito's
    hosted UI ("We have sent a code by email to a***@e***"); for an email of a pool that confirms with a link
    (CONFIRM_WITH_LINK), what to do with the link."""
    medium = {"EMAIL": " by email", "SMS": " by text message"}.get(details.get("DeliveryMedium", ""), "")
    destination = details.get("Destination")
    where = f" to {destination}" if medium and destination else ""
    if _sent_link(pool, details):
        link = "a new link" if again else "a link"
        return f"We have sent {link}{medium}{where}. Open it to confirm your account, then sign in."
    code = "a new code" if again else "a code"
    return f"We have sent {code}{medium}{where}. Enter it below to confirm your account."


async def confirm_get(request: web.Request) -> web.Response:
    hosted = await _hosted(request)
    services = request.app[SERVICES]
    username = request.query.get("username", "")
    sent = _open_sent(services, hosted.request.id, username, request.query.get("sent"))
    if sent == {}:
        # SignUp sent no code: the pool verifies no attribute (AutoVerifiedAttributes), and ResendConfirmationCode
        # would answer "Auto verification not turned on.". Such a pool confirms its users with AdminConfirmSignUp
        # ("You can configure your user pool to not send confirmation codes to new users and instead confirm them
        # with this API operation"), so the page offers no code field that could never be answered.
        notice = "Your account has been created. An administrator must confirm it before you can sign in."
        context = _context(hosted, username=username, notice=notice, awaits_administrator=True)
    elif sent is not None:
        notice = _code_sent(hosted.pool, sent)
        context = _context(hosted, username=username, notice=notice, by_link=_sent_link(hosted.pool, sent))
    else:
        # Reached without SignUp's answer (signing in to an unconfirmed account): no code is known to be sent.
        notice = "Enter the confirmation code for your account, or send a new code."
        context = _context(hosted, username=username, notice=notice)
    return page(request, services.settings, "confirm.html", context)


async def confirm_post(request: web.Request) -> web.StreamResponse:
    form = await _form(request)
    if form is None:
        return _csrf_refused(request)
    hosted = await _hosted(request)
    services = request.app[SERVICES]
    username = form.get("username", "").strip()
    code = form.get("code", "").strip()
    if form.get("action") == "resend":
        refused = form_error("ResendConfirmationCode", {"ClientId": app_client_id(hosted.client), "Username": username})
    else:
        refused = form_error(
            "ConfirmSignUp", {"ClientId": app_client_id(hosted.client), "Username": username, "ConfirmationCode": code}
        )
    if refused is not None:
        context = _context(hosted, username=username, error=refused)
        return page(request, services.settings, "confirm.html", context, status=400)
    hashed = _secret_hash(hosted.client, username)
    try:
        if form.get("action") == "resend":
            resent = await services.users.resend_confirmation_code(hosted.pool, hosted.client, username, hashed)
            details = resent.to_json() if resent is not None else {}
            notice = _code_sent(hosted.pool, details, again=True)
            context = _context(hosted, username=username, notice=notice, by_link=_sent_link(hosted.pool, details))
            return page(request, services.settings, "confirm.html", context)
        await services.users.confirm_sign_up(
            hosted.pool,
            hosted.client,
            username=username,
            code=code,
            secret_hash_value=hashed,
            force_alias_creation=False,
        )
    except GatehouseError as exc:
        context = _context(hosted, username=username, error=exc.message)
        return page(request, services.settings, "confirm.html", context, status=400)
    return see_other(request, services.settings, _link(hosted, "/login", done="confirmed"))


# --- /confirmUser: the link of a sign-up confirmation email --------------------------------------------

_CONFIRM_USER_PARAMS = ("client_id", "user_name", "confirmation_code")
_INVALID_LINK = "This confirmation link is not valid. Ask the application for a new one."


async def confirm_user(request: web.Request) -> web.Response:
    """The link a sign-up confirmation email carries when the pool confirms with a link (DefaultEmailOption
    ``CONFIRM_WITH_LINK``): ``/confirmUser?client_id=...&user_name=...&confirmation_code=...`` ("The link for
    an email verification message directs your user to a URL like the following", Customizing email
    verification messages). Opening it is ConfirmSignUp with its values through that app client, as Cognito's
    link confirms on a GET from the mail: the code proves the mailbox as a typed one does, counts against the
    same wrong-answer limit, and is taken from the same rate-limit buckets as a posted form.

    Any refusal is a page: a link that is not one (a missing, repeated or malformed value, an unknown app
    client or another pool's) says only that, and ConfirmSignUp's own errors say what Cognito's do (a used
    link: "User cannot be confirmed. Current status is CONFIRMED")."""
    services = request.app[SERVICES]
    settings = services.settings
    limits = services.rate_limits
    limits.check("HostedUI", {}, limits.address_of(request.remote, request.headers))
    query = request.query
    if any(len(query.getall(name, [])) != 1 for name in _CONFIRM_USER_PARAMS):
        return error_page(request, settings, _INVALID_LINK)
    client_id, username, code = (query[name] for name in _CONFIRM_USER_PARAMS)
    if form_error("ConfirmSignUp", {"ClientId": client_id, "Username": username, "ConfirmationCode": code}):
        return error_page(request, settings, _INVALID_LINK)
    routed = await routed_pool(request)
    try:
        client = await services.pools.find_client(client_id)
        pool = await services.pools.get_pool(client.pool_id)
    except ResourceNotFoundException:
        return error_page(request, settings, _INVALID_LINK)
    if routed is not None and pool.id != routed:
        return error_page(request, settings, _INVALID_LINK)
    limits.check("HostedUI", {"ClientId": client.id}, None)
    try:
        await services.users.confirm_sign_up(
            pool,
            client,
            username=username,
            code=code,
            secret_hash_value=_secret_hash(client, username),
            force_alias_creation=False,
        )
    except GatehouseError as exc:
        return error_page(request, settings, exc.message)
    base = base_path(request)
    css_url, logo_url = await _branding(services, pool.id, client.id, base)
    context = {"base": base, "custom_css_url": css_url, "logo_url": logo_url, "logo_alt": f"{client.record.name} logo"}
    return page(request, settings, "confirmed.html", context)


# --- /forgotPassword and /confirmForgotPassword ----------------------------------------------------------


async def forgot_get(request: web.Request) -> web.Response:
    redirect = await _cognito_style(request)
    if redirect is not None:
        return redirect
    hosted = await _hosted(request)
    notice = "Your password must be reset before you can sign in." if request.query.get("why") == "reset" else None
    context = _context(hosted, username=request.query.get("username", ""), notice=notice)
    return page(request, request.app[SERVICES].settings, "forgot.html", context)


async def forgot_post(request: web.Request) -> web.StreamResponse:
    form = await _form(request)
    if form is None:
        return _csrf_refused(request)
    hosted = await _hosted(request)
    services = request.app[SERVICES]
    username = form.get("username", "").strip()
    refused = form_error("ForgotPassword", {"ClientId": app_client_id(hosted.client), "Username": username})
    if refused is not None:
        context = _context(hosted, username=username, error=refused)
        return page(request, services.settings, "forgot.html", context, status=400)
    try:
        await services.users.forgot_password(
            hosted.pool, hosted.client, username, _secret_hash(hosted.client, username)
        )
    except UserNotFoundException:
        pass  # the page does not tell who has an account
    except GatehouseError as exc:
        context = _context(hosted, username=username, error=exc.message)
        return page(request, services.settings, "forgot.html", context, status=400)
    return see_other(request, services.settings, _link(hosted, "/confirmForgotPassword", username=username))


async def reset_get(request: web.Request) -> web.Response:
    hosted = await _hosted(request)
    notice = "If the account exists, we have sent a code. Enter it with your new password."
    context = _context(hosted, username=request.query.get("username", ""), notice=notice)
    return page(request, request.app[SERVICES].settings, "reset.html", context)


async def reset_post(request: web.Request) -> web.StreamResponse:
    form = await _form(request)
    if form is None:
        return _csrf_refused(request)
    hosted = await _hosted(request)
    services = request.app[SERVICES]
    username = form.get("username", "").strip()
    code, password = form.get("code", "").strip(), form.get("password", "")
    refused = form_error(
        "ConfirmForgotPassword",
        {
            "ClientId": app_client_id(hosted.client),
            "Username": username,
            "ConfirmationCode": code,
            "Password": password,
        },
    )
    if refused is not None:
        context = _context(hosted, username=username, error=refused)
        return page(request, services.settings, "reset.html", context, status=400)
    try:
        await services.users.confirm_forgot_password(
            hosted.pool,
            hosted.client,
            username=username,
            code=code,
            password=password,
            secret_hash_value=_secret_hash(hosted.client, username),
        )
    except UserNotFoundException:
        context = _context(hosted, username=username, error="Invalid verification code provided, please try again.")
        return page(request, services.settings, "reset.html", context, status=400)
    except GatehouseError as exc:
        context = _context(hosted, username=username, error=exc.message)
        return page(request, services.settings, "reset.html", context, status=400)
    return see_other(request, services.settings, _link(hosted, "/login", done="reset"))


async def stylesheet(request: web.Request) -> web.Response:
    from importlib import resources

    css = resources.files("gateway.ui").joinpath("static/gatehouse.css").read_text(encoding="utf-8")
    return web.Response(
        text=css,
        content_type="text/css",
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


async def custom_css(request: web.Request) -> web.Response:
    """SetUICustomization's CSS, served from this origin (the pages' CSP allows only 'self' styles)."""
    record = await _customization(request)
    if record is None or not record.css or not _css_still_allowed(record.css):
        raise web.HTTPNotFound()
    headers = {"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"}
    return web.Response(text=record.css, content_type="text/css", headers=headers)


@functools.lru_cache(maxsize=64)
def _css_still_allowed(css: str) -> bool:
    """Whether stored CSS passes SetUICustomization's check as it is now: a stylesheet stored before the check
    grew (one whose url() calls an endpoint of this origin, say) is not served to browsers. The verdict is
    remembered by the text: parsing the largest stylesheet the model allows takes ~0.1 s."""
    try:
        check_css(css, CUSTOMIZABLE_CLASSES)
    except InvalidParameterException:
        return False
    return True


async def logo(request: web.Request) -> web.Response:
    record = await _customization(request)
    if record is None or not record.image or not record.image_type:
        raise web.HTTPNotFound()
    headers = {"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"}
    return web.Response(body=base64.b64decode(record.image), content_type=record.image_type, headers=headers)


async def _customization(request: web.Request) -> UICustomizationRecord | None:
    store = request.app[SERVICES].store
    return await store.get_ui_customization(request.match_info["ui_pool"], request.match_info["scope"])


def add_routes(app: web.Application) -> None:
    app[LOGIN_PAGES] = {}
    for prefix in ("", "/{pool_id}"):
        app.router.add_get(f"{prefix}/ui/{{ui_pool}}/{{scope}}/custom.css", with_request_id(custom_css))
        app.router.add_get(f"{prefix}/ui/{{ui_pool}}/{{scope}}/logo", with_request_id(logo))
        app.router.add_get(f"{prefix}/ui/{{ui_pool}}/branding/{{branding_id}}/logo", with_request_id(branding_logo))
        app.router.add_get(f"{prefix}/login", with_request_id(login_get, _page_error))
        app.router.add_post(f"{prefix}/login", with_request_id(login_post, _page_error))
        app.router.add_post(f"{prefix}/login/challenge", with_request_id(challenge_post, _page_error))
        app.router.add_get(f"{prefix}/login/sso", with_request_id(login_sso, _page_error))
        app.router.add_get(f"{prefix}/signup", with_request_id(signup_get, _page_error))
        app.router.add_post(f"{prefix}/signup", with_request_id(signup_post, _page_error))
        app.router.add_get(f"{prefix}/confirm", with_request_id(confirm_get, _page_error))
        app.router.add_post(f"{prefix}/confirm", with_request_id(confirm_post, _page_error))
        # Cognito's link is written with and without the final slash ("/confirmUser/?client_id=...").
        # GET only: a link checker's HEAD must not use the link up.
        app.router.add_get(f"{prefix}/confirmUser", with_request_id(confirm_user, _page_error), allow_head=False)
        app.router.add_get(f"{prefix}/confirmUser/", with_request_id(confirm_user, _page_error), allow_head=False)
        app.router.add_get(f"{prefix}/forgotPassword", with_request_id(forgot_get, _page_error))
        app.router.add_post(f"{prefix}/forgotPassword", with_request_id(forgot_post, _page_error))
        app.router.add_get(f"{prefix}/confirmForgotPassword", with_request_id(reset_get, _page_error))
        app.router.add_post(f"{prefix}/confirmForgotPassword", with_request_id(reset_post, _page_error))
        app.router.add_get(f"{prefix}/static/gatehouse.css", with_request_id(stylesheet))
        app.router.add_get(f"{prefix}/static/passkey.js", with_request_id(passkey_script))


async def passkey_script(request: web.Request) -> web.Response:
    """The WEB_AUTHN page's script, from this origin (the page's CSP allows ``script-src 'self'`` only)."""
    from importlib import resources

    js = resources.files("gateway.ui").joinpath("static/passkey.js").read_text(encoding="utf-8")
    return web.Response(
        text=js,
        content_type="text/javascript",
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )
