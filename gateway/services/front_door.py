"""The front door: a user pool's sign-in in front of apps that have none of their own.

An app behind the front door is reached through a reverse proxy (nginx's ``auth_request``, Traefik's or Caddy's
forward auth) or through Gatehouse itself (``upstream``). Either way Gatehouse is the app's OAuth client, as
oauth2-proxy is: an unsigned-in browser is sent through the pool's hosted UI with the authorization code flow
and PKCE (RFC 7636), the code is redeemed in process, and the browser is given a session cookie on the app's
own host. Every request then checks that cookie against the store, so that what ends the sign-in's tokens
(GlobalSignOut, RevokeToken, a disabled or deleted user, a deleted client) ends the session too, and the app
is told who the user is, with the user's groups as they are now, in request headers.

The cookie is sealed (AES-256-GCM, :mod:`gateway.secretbox`) and bound to its app by the associated data; it
holds the token family of the sign-in (its ``origin_jti``), the user's ``sub`` and the family's expiry, which is
the refresh token's: the session lasts as long as the app client lets a sign-in last.

An app's API may also take access tokens instead of a session (``bearer_clients``, RFC 6750 §2.1): a script or
another service sends ``Authorization: Bearer <access token>`` of one of the pool's app clients the app names, and
the request goes through as the token's user, every check a session's request has made against the token.

An app may also be handed the session's tokens (``pass_tokens``): an ID and an access token of the sign-in's token
family, made as a refresh of that family makes them (the pool's pre token generation trigger runs, with
``TokenGeneration_RefreshTokens``), so the app can verify who the user is against the pool's JWKS or call APIs as
the user. Each process keeps a session's tokens and makes them anew a few minutes before they expire, or at once
when the user's attributes or groups have changed since.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlencode, urlsplit

import orjson
import structlog
from multidict import MultiMapping

from gateway.errors import GatehouseError, ResourceNotFoundException
from gateway.secretbox import SecretBox, SecretBoxError

if TYPE_CHECKING:  # the settings import this module: it must not load the services (nor prometheus_client)
    from gateway.services.oauth import OAuthService
    from gateway.services.tokens import TokenService
    from gateway.storage.base import GroupRecord, Store, TokenFamilyRecord, UserRecord

log = structlog.get_logger("gateway.front_door")

# Where the front door's own endpoints live on an app's host (routed to Gatehouse by the proxy).
PREFIX = "/_gatehouse"
CALLBACK_PATH = f"{PREFIX}/callback"
# How long a browser may take in the hosted UI between the redirect there and the callback.
SIGN_IN_SECONDS = 600
# Sign-ins a browser may have under way on one app at once (tabs opened together, a restored browser session):
# each has a cookie of its own, named by its state, and /start clears the oldest beyond this many.
MAX_PENDING_SIGN_INS = 4
# The part of a sign-in's state that names its cookie: 16 of its 32 base64url characters (96 random bits).
_SIGN_IN_TAG = re.compile(r"[A-Za-z0-9_-]{16}")
_SESSION_VERSION = 1
# pass_tokens: a session's tokens are made anew this long before the first of them expires (half their life
# when that is shorter), so the app is never handed a token about to expire.
RENEW_TOKENS_BEFORE_SECONDS = 300
# pass_tokens: the sessions whose tokens one process keeps, the least recently used dropped first.
MAX_KEPT_SESSION_TOKENS = 10_000
# Printable ASCII but the backslash (refused before) and "%" kept as it is: a path already percent-encoded stays so.
_URI_ASCII = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) != "\\")
# The callback's parameters, each of which may be given once (RFC 6749 §3.1).
_CALLBACK_PARAMETERS = ("code", "state", "iss", "error", "error_description", "error_uri")


@dataclass(frozen=True, slots=True)
class FrontDoorApp:
    """One app behind the front door (the config file's ``front_door.apps``)."""

    name: str
    # The app's origin as browsers see it: scheme, host and port, no path ("https://wiki.example.com").
    url: str
    pool_id: str
    client_id: str
    # Users in none of these groups are refused (403); empty: every user of the pool may enter.
    allowed_groups: tuple[str, ...] = ()
    # Where Gatehouse forwards the app's requests itself; None when a proxy in front asks Gatehouse instead.
    upstream: str | None = None
    # Whether the app is handed the session's ID and access tokens too (X-Gatehouse-Id-Token, -Access-Token).
    pass_tokens: bool = False
    # Paths let through without a session and without identity headers (webhooks, health checks): a path ending
    # in "/" stands for everything under it, any other for itself alone. See is_public.
    public_paths: tuple[str, ...] = ()
    # The app clients whose users' access tokens stand in for a session (Authorization: Bearer); none: no tokens.
    bearer_clients: tuple[str, ...] = ()

    @property
    def host(self) -> str:
        """The app's host and port as a Host header names them (lower case)."""
        return urlsplit(self.url).netloc.lower()

    @property
    def secure(self) -> bool:
        return self.url.startswith("https://")

    @property
    def callback_uri(self) -> str:
        return self.url + CALLBACK_PATH

    @property
    def session_cookie(self) -> str:
        # __Host-: the browser keeps it to this host, Path=/, Secure (RFC 6265bis §4.1.3.2).
        return "__Host-gatehouse-session" if self.secure else "gatehouse-session"

    @property
    def sign_in_cookie_prefix(self) -> str:
        return "__Host-gatehouse-sign-in-" if self.secure else "gatehouse-sign-in-"

    def is_public(self, raw_path: str) -> bool:
        """Whether ``raw_path`` (as the request's line has it, not decoded, no query) is one of ``public_paths``.

        Only a path that every server reads the same way is matched: servers differ on what ``/public/..%2fadmin``,
        ``/public/..;/admin`` (Tomcat) or ``/public\\..\\admin`` name, and a path the front door took for
        ``/public/...`` must not reach the app as ``/admin``. So a path with an encoded ``/``, ``\\``, ``.`` or ``%``
        (a server that decodes twice reads ``%252e`` as ``.``), a ``;`` or ``\\``, a segment of dots and spaces
        alone (``..``, and ``.. `` or ``...``, which Windows reads as ``..`` or ``.``: it drops a name's trailing dots
        and spaces), or a character beyond printable ASCII (encoded or not) is never public: it needs a session, as
        every path not listed does."""
        if not self.public_paths:
            return False
        lowered = raw_path.lower()
        if any(part in lowered for part in ("%2f", "%5c", "%2e", "%25", ";", "\\")):
            return False
        try:
            path = unquote(raw_path, errors="strict")
        except UnicodeDecodeError:
            return False
        if not path.startswith("/") or not path.isascii() or any(c < " " or c in "\x7f;\\" for c in path):
            return False
        if any(segment and not segment.strip(". ") for segment in path.split("/")):
            return False
        return any(path == entry or (entry.endswith("/") and path.startswith(entry)) for entry in self.public_paths)

    def sign_in_cookie(self, state: str) -> str | None:
        """The cookie of the sign-in whose state is ``state``: one per sign-in, so that sign-ins begun in several
        tabs at once each find their own at the callback. None for a state Gatehouse never makes."""
        tag = state[:16]
        return self.sign_in_cookie_prefix + tag if _SIGN_IN_TAG.fullmatch(tag) else None


@dataclass(frozen=True, slots=True)
class FrontDoorUser:
    """Who a request's session belongs to, as the app is told."""

    sub: str
    username: str
    email: str | None
    groups: tuple[str, ...]
    pool_id: str
    # The session's ID and access tokens, for an app with pass_tokens (JWTs: nothing in them needs escaping).
    tokens: tuple[str, str] | None = None

    def headers(self) -> dict[str, str]:
        """The identity headers (values made header-safe: no control characters)."""
        values = {
            "X-Gatehouse-Sub": self.sub,
            "X-Gatehouse-Username": self.username,
            "X-Gatehouse-Email": self.email or "",
            "X-Gatehouse-Groups": ",".join(group_in_list(group) for group in self.groups),
            "X-Gatehouse-Pool": self.pool_id,
        }
        headers = {name: _header_text(value) for name, value in values.items()}
        if self.tokens is not None:
            headers["X-Gatehouse-Id-Token"], headers["X-Gatehouse-Access-Token"] = self.tokens
        return headers


# What a group name keeps as it is in X-Gatehouse-Groups: printable ASCII but the list's separator and "%".
_GROUP_TEXT = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in ",%")


def group_in_list(name: str) -> str:
    """A group name as an item of ``X-Gatehouse-Groups``: a comma (which Cognito allows in a name), "%" and
    characters beyond ASCII percent-encoded (UTF-8), so that splitting the list at its commas gives each name
    back (percent-decoded), and a name such as "a,b" is never two groups."""
    return quote(name, safe=_GROUP_TEXT)


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A finished sign-in: the session cookie's value, how long it lasts, and where the browser goes next."""

    cookie: str
    max_age: int
    next_path: str


class FrontDoorRefusal(Exception):
    """A request the front door does not let through. ``status``: 401 (no usable session: sign in) or 403
    (signed in, not allowed). ``bearer``: the request presented an access token (Authorization: Bearer), so the
    answer is RFC 6750's (a 401 with ``WWW-Authenticate``, or a 403), never a sign-in page a script cannot use."""

    def __init__(self, status: int, reason: str, *, bearer: bool = False) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.bearer = bearer

    def challenge(self) -> str:
        """The ``WWW-Authenticate`` value of a refused bearer request (RFC 6750 §3.1: 400 invalid_request for a
        malformed one, 401 invalid_token, 403 insufficient_scope)."""
        error = {400: "invalid_request", 401: "invalid_token"}.get(self.status, "insufficient_scope")
        return f'Bearer error="{error}"'


class SignInFailed(Exception):
    """A sign-in that cannot finish (a forged or stale callback, the IdP's error, a client not set up for
    the front door): shown to the person as a page, with a way to start again."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def verified_email(user: UserRecord) -> str | None:
    """The user's email address if it is verified (``email_verified``), else None: a user may set their own email
    attribute to anyone's address (UpdateUserAttributes; it stays unverified until the code sent there is given
    back), and an app that keys accounts on X-Gatehouse-Email must not take such a claim for the address."""
    email = user.attributes.get("email")
    return email if email and user.attributes.get("email_verified") == "true" else None


def _header_text(value: str) -> str:
    """``value`` with the characters a header cannot carry (CR, LF, NUL and other controls) replaced: a user's
    own attributes must not add headers to the app's request."""
    return "".join(c if (c >= " " and c != "\x7f") or c == "\t" else "?" for c in value)


def _hostname(host: str) -> str:
    """The name of a Host value: lower case, without the port or a trailing dot."""
    host = host.strip().lower()
    name = host[: host.find("]") + 1] if host.startswith("[") else host.rsplit(":", 1)[0]
    return name.rstrip(".")


def _s256(verifier: str) -> str:
    """PKCE's S256 challenge (RFC 7636 §4.2)."""
    from gateway.services.oauth import s256

    return s256(verifier)


def safe_next_path(value: str | None) -> str:
    """Where to send the browser after signing in: a path on the app's own host, never another site. Only a
    path that starts with one slash is taken (``//evil.example`` and ``/\\evil.example`` are other hosts to a
    browser); anything else is the app's root. Characters beyond ASCII are percent-encoded as UTF-8: a
    Location is a URI reference (RFC 9110 §10.2.2, RFC 3986 §2.1), and what is not text at all (a header's
    bytes that are not UTF-8) is the app's root too."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    if any(c < " " or c == "\x7f" or c == "\\" for c in value):
        return "/"
    try:
        path = quote(value[:2048], safe=_URI_ASCII)
    except UnicodeEncodeError:
        return "/"
    return path


class FrontDoorService:
    """Sessions of the apps behind the front door: starting a sign-in, finishing it, checking a request."""

    def __init__(
        self,
        apps: Sequence[FrontDoorApp],
        *,
        key: bytes,
        store: Store,
        oauth: OAuthService,
        tokens: TokenService,
    ) -> None:
        self.apps = tuple(apps)
        self._by_name = {app.name: app for app in self.apps}
        self._by_host = {app.host: app for app in self.apps}
        self._by_hostname: dict[str, list[FrontDoorApp]] = {}
        for app in self.apps:
            self._by_hostname.setdefault(_hostname(app.host), []).append(app)
        # A key of its own, derived from the data dir's: a front-door cookie opens nowhere else.
        self._box = SecretBox(hmac.new(key, b"gatehouse front door sessions", hashlib.sha256).digest())
        self._store = store
        self._oauth = oauth
        self._tokens = tokens
        # pass_tokens: origin_jti -> (what the tokens were made from, when to make them anew, id token, access
        # token). (A page's requests that all find them stale at once each make a pair: a few signatures an hour.)
        self._kept: OrderedDict[str, tuple[tuple[Any, ...], float, str, str]] = OrderedDict()

    # --- which app ------------------------------------------------------------------------------------------

    def app_named(self, name: str, *, host: str | None = None) -> FrontDoorApp | None:
        """The app named ``name``, unless ``host`` (the request's Host or X-Forwarded-Host) may be another app's:
        it names another app, or names none exactly but has another app's host name (a proxy that picks a site by
        the name alone, as Caddy does, passes on whatever port and case the browser wrote)."""
        app = self._by_name.get(name)
        if app is None or not host:
            return app
        exact = self.app_for_host(host)
        if exact is not None:
            return app if exact is app else None
        others = self._by_hostname.get(_hostname(host), ())
        return app if all(other is app for other in others) else None

    def app_for_host(self, host: str | None) -> FrontDoorApp | None:
        """The app served on ``host`` (a Host or X-Forwarded-Host value)."""
        if not host:
            return None
        return self._by_host.get(host.strip().lower())

    # --- sign-in --------------------------------------------------------------------------------------------

    def start(self, app: FrontDoorApp, next_path: str | None) -> tuple[str, str, str]:
        """Begin a sign-in: the hosted UI's authorization URL, and the name and sealed value of the sign-in
        cookie that the callback checks (the state, the PKCE verifier, where to go next)."""
        state = secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(48)
        pending = {
            "state": state,
            "verifier": verifier,
            "next": safe_next_path(next_path),
            "exp": int(time.time()) + SIGN_IN_SECONDS,
        }
        cookie = self._box.seal(orjson.dumps(pending), aad=self._aad(app, "sign-in"))
        query = {
            "response_type": "code",
            "client_id": app.client_id,
            "redirect_uri": app.callback_uri,
            "scope": "openid",
            "state": state,
            "code_challenge": _s256(verifier),
            "code_challenge_method": "S256",
        }
        name = app.sign_in_cookie_prefix + state[:16]  # what sign_in_cookie(state) answers
        return f"{self._oauth.issuer(app.pool_id)}/oauth2/authorize?{urlencode(query)}", name, cookie

    def stale_sign_ins(self, app: FrontDoorApp, cookies: Mapping[str, str]) -> list[str]:
        """The sign-in cookies a browser sends that a new sign-in should clear: those unreadable or expired, and
        the oldest beyond MAX_PENDING_SIGN_INS - 1, so that a page sending its visitors to sign in again and
        again cannot grow the Cookie header past what servers take."""
        pending: list[tuple[int, str]] = []
        stale: list[str] = []
        now = time.time()
        for name, value in cookies.items():
            if not name.startswith(app.sign_in_cookie_prefix):
                continue
            opened = self._open(app, "sign-in", value)
            expiry = opened.get("exp") if opened is not None else None
            if isinstance(expiry, int) and expiry >= now:
                pending.append((expiry, name))
            else:
                stale.append(name)
        pending.sort(reverse=True)
        return stale + [name for _, name in pending[MAX_PENDING_SIGN_INS - 1 :]]

    async def finish(self, app: FrontDoorApp, query: MultiMapping[str], sign_in_cookie: str | None) -> SignedIn:
        """The callback (RFC 6749 §4.1.2): check the state against the sign-in cookie, the issuer (RFC 9207),
        redeem the code with the PKCE verifier, and make the session."""
        pending = self._open(app, "sign-in", sign_in_cookie)
        if pending is None or int(pending.get("exp", 0)) < time.time():
            raise SignInFailed("This sign-in has expired or was started in another window. Please sign in again.")
        # "Request and response parameters MUST NOT be included more than once" (RFC 6749 §3.1): which of two
        # codes or states is the answer is not a question to guess at.
        if any(len(query.getall(name, ())) > 1 for name in _CALLBACK_PARAMETERS):
            raise SignInFailed("The sign-in answer is not well formed. Please sign in again.")
        state = query.get("state", "")
        if not hmac.compare_digest(state.encode(), str(pending.get("state", "")).encode()):
            raise SignInFailed("This sign-in has expired or was started in another window. Please sign in again.")
        # Gatehouse's authorization endpoint always sends iss (its metadata says so), so an answer without one
        # is not its own: refused (RFC 9207 §2.4).
        if query.get("iss") != self._oauth.issuer(app.pool_id):
            raise SignInFailed("The sign-in answer came from another issuer.")
        if "error" in query:
            error = query.get("error", "")[:64]
            log.info("front_door.sign_in_refused", app=app.name, error=error)
            if error == "access_denied":
                raise SignInFailed("Sign-in was cancelled or refused.")
            raise SignInFailed(f"Sign-in could not finish ({error}).")
        code = query.get("code")
        if not code:
            raise SignInFailed("The sign-in answer has no authorization code.")
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": app.callback_uri,
            "client_id": app.client_id,
            "code_verifier": str(pending.get("verifier", "")),
        }
        try:
            client = await self._oauth.find_client(app.client_id, app.pool_id)
            if client.secret:
                form["client_secret"] = client.secret
            answer = await self._oauth.token(form, None, pool_id=app.pool_id)
            verified = await self._tokens.verify_access_token(str(answer["access_token"]), required_scope=None)
        except GatehouseError as exc:
            log.info("front_door.sign_in_refused", app=app.name, error=getattr(exc, "oauth_error", None),
                     reason=getattr(exc, "message", str(exc)))  # fmt: skip
            raise SignInFailed("Sign-in could not finish. Please sign in again.") from exc
        found = await self._store.get_token_family(verified.origin_jti)
        expires_at = found.expires_at if found is not None else time.time()
        cookie = self._session_value(app, verified.origin_jti, verified.sub, expires_at)
        log.info("front_door.signed_in", app=app.name, pool=app.pool_id, sub=verified.sub, username=verified.username)
        # Whether the user may enter is the next request's question (a 403 page there, not a failed sign-in).
        return SignedIn(cookie, max(0, int(expires_at - time.time())), str(pending.get("next", "/")))

    def _session_value(self, app: FrontDoorApp, origin_jti: str, sub: str, expires_at: float | None = None) -> str:
        data = {"v": _SESSION_VERSION, "fam": origin_jti, "sub": sub, "exp": expires_at}
        return self._box.seal(orjson.dumps(data), aad=self._aad(app, "session"))

    # --- every request --------------------------------------------------------------------------------------

    async def check(self, app: FrontDoorApp, cookie: str | None, *, with_tokens: bool = False) -> FrontDoorUser:
        """Who the session cookie belongs to, if the session still stands and the user may enter the app.
        ``with_tokens``: with the session's tokens too, when the app has pass_tokens (for the app's requests,
        never for what a page's script reads). Raises :class:`FrontDoorRefusal`: 401 without a usable session,
        403 for a user not allowed in."""
        session = self._open(app, "session", cookie)
        if session is None or session.get("v") != _SESSION_VERSION:
            raise FrontDoorRefusal(401, "no session" if cookie is None else "unreadable session")
        expires_at = session.get("exp")
        if isinstance(expires_at, int | float) and expires_at < time.time():
            raise FrontDoorRefusal(401, "session expired")
        found = await self._store.get_token_family_with_user(str(session.get("fam", "")))
        if found is None:
            raise FrontDoorRefusal(401, "session ended")
        family, user = found
        if family.revoked or family.pool_id != app.pool_id or family.client_id != app.client_id:
            raise FrontDoorRefusal(401, "session ended")
        if family.expires_at < time.time():
            raise FrontDoorRefusal(401, "session expired")
        if user is None or user.sub != session.get("sub") or not user.enabled:
            raise FrontDoorRefusal(401, "user can no longer sign in")
        if user.tokens_valid_after and family.created_at < int(user.tokens_valid_after):
            raise FrontDoorRefusal(401, "signed out")
        from gateway.services.users import RESET_REQUIRED

        if user.status == RESET_REQUIRED:
            # Threat protection found the password leaked: no refresh of the family works any more
            # (PasswordResetRequiredException), so the session, which lasts as long as one would, ends too.
            raise FrontDoorRefusal(401, "password reset required")
        records = await self._store.list_groups_for_user(app.pool_id, user.username_key)
        groups = tuple(g.name for g in records)
        if app.allowed_groups and not set(app.allowed_groups) & set(groups):
            raise FrontDoorRefusal(403, "not in an allowed group")
        tokens = await self._session_tokens(app, family, user, records) if with_tokens and app.pass_tokens else None
        return FrontDoorUser(
            sub=user.sub,
            username=user.username,
            email=verified_email(user),
            groups=groups,
            pool_id=app.pool_id,
            tokens=tokens,
        )

    async def check_bearer(self, app: FrontDoorApp, token: str) -> FrontDoorUser:
        """Who an access token presented instead of a session speaks for (RFC 6750 §2.1), when it is a live access
        token of the app's pool issued to one of ``bearer_clients``, its user may still sign in, and the user may
        enter the app. Raises :class:`FrontDoorRefusal` (``bearer``): 401 for a token not taken, 403 for a user not
        allowed in."""
        try:
            verified = await self._tokens.verify_access_token(token, required_scope=None)
        except GatehouseError as exc:
            raise FrontDoorRefusal(401, "invalid bearer token", bearer=True) from exc
        if verified.pool_id != app.pool_id or verified.client_id not in app.bearer_clients:
            raise FrontDoorRefusal(401, "bearer token of another client", bearer=True)
        # A token derived by token exchange (RFC 8693) names the exchanging client: one of another client's sign-in
        # is a listed client's in name only (the user never signed in to it), and one bound to an audience is for
        # that audience alone (RFC 7519 §4.1.3: a party not named in "aud" must reject it), which the app is not.
        if verified.family_client_id not in app.bearer_clients:
            raise FrontDoorRefusal(401, "bearer token derived from another client's sign-in", bearer=True)
        if verified.claims.get("aud", verified.client_id) != verified.client_id:
            raise FrontDoorRefusal(401, "bearer token for another audience", bearer=True)
        user = verified.user
        if user is None or user.sub != verified.sub or not user.enabled:
            raise FrontDoorRefusal(401, "user can no longer sign in", bearer=True)
        if user.tokens_valid_after and int(verified.claims.get("iat", 0)) < int(user.tokens_valid_after):
            raise FrontDoorRefusal(401, "signed out", bearer=True)
        groups = tuple(g.name for g in await self._store.list_groups_for_user(app.pool_id, user.username_key))
        if app.allowed_groups and not set(app.allowed_groups) & set(groups):
            raise FrontDoorRefusal(403, "not in an allowed group", bearer=True)
        return FrontDoorUser(
            sub=user.sub, username=user.username, email=verified_email(user), groups=groups, pool_id=app.pool_id
        )

    async def _session_tokens(
        self, app: FrontDoorApp, family: TokenFamilyRecord, user: UserRecord, groups: list[GroupRecord]
    ) -> tuple[str, str]:
        """The session's ID and access tokens: those this process made last for it, while they are fresh and the
        user's attributes and groups are as they were then; else new ones."""
        made_from = (user.version, user.updated_at, tuple((g.name, g.precedence, g.role_arn) for g in groups))
        kept = self._kept.get(family.origin_jti)
        if kept is not None and kept[0] == made_from and kept[1] > time.time():
            self._kept.move_to_end(family.origin_jti)
            return kept[2], kept[3]
        id_token, access_token, renew_at = await self._make_tokens(app, family, user, groups)
        self._kept[family.origin_jti] = (made_from, renew_at, id_token, access_token)
        self._kept.move_to_end(family.origin_jti)
        while len(self._kept) > MAX_KEPT_SESSION_TOKENS:
            self._kept.popitem(last=False)
        return id_token, access_token

    async def _make_tokens(
        self, app: FrontDoorApp, family: TokenFamilyRecord, user: UserRecord, groups: list[GroupRecord]
    ) -> tuple[str, str, float]:
        """New tokens of the session's family, as a refresh of it makes them: the sign-in's scopes (less any the
        client has lost since), its auth_time and origin_jti, the pre token generation trigger. A user whose
        password must be reset, or whom the trigger refuses, has no session."""
        from gateway.services.auth import AuthContext
        from gateway.services.tokens import b64url_decode
        from gateway.services.users import RESET_REQUIRED

        if user.status == RESET_REQUIRED:
            raise FrontDoorRefusal(401, "password reset required")
        try:
            pool = await self._oauth.pools.get_pool(app.pool_id)
            client = await self._oauth.find_client(app.client_id, app.pool_id)
            allowed = client.settings.get("AllowedOAuthScopes") or ()
            scopes = tuple(s for s in (family.scopes or ("openid",)) if s in allowed)
            context = AuthContext(pool=pool, client=client, admin=False)
            result = await self._oauth.auth.issue_tokens(
                context, user, auth_time=int(family.auth_time), origin_jti=family.origin_jti, groups=groups,
                scopes=scopes,
            )  # fmt: skip
        except GatehouseError as exc:
            log.info("front_door.tokens_refused", app=app.name, pool=app.pool_id, sub=user.sub,
                     reason=getattr(exc, "message", str(exc)))  # fmt: skip
            raise FrontDoorRefusal(401, "tokens refused") from exc
        assert result.tokens is not None
        id_token, access_token = result.tokens.id_token, result.tokens.access_token
        now = time.time()
        expiry = min(int(orjson.loads(b64url_decode(token.split(".")[1]))["exp"]) for token in (id_token, access_token))
        life = max(expiry - now, 0.0)
        return id_token, access_token, now + life - min(RENEW_TOKENS_BEFORE_SECONDS, life / 2)

    async def sign_out(self, app: FrontDoorApp, cookie: str | None) -> str:
        """End the session (its token family revoked, so the sign-in's tokens end with it) and say where the
        browser goes: the pool's logout endpoint, which also ends the hosted UI's session, when the app's root
        is one of the client's sign-out URLs; else the app's root."""
        session = self._open(app, "session", cookie)
        if session is not None:
            origin = str(session.get("fam", ""))
            found = await self._store.get_token_family(origin)
            if found is not None and found.pool_id == app.pool_id and found.client_id == app.client_id:
                await self._store.revoke_token_family(origin)
                log.info("front_door.signed_out", app=app.name, pool=app.pool_id, sub=session.get("sub"))
        root = app.url + "/"
        try:
            client = await self._oauth.find_client(app.client_id, app.pool_id)
        except ResourceNotFoundException:
            return root
        if root in (client.settings.get("LogoutURLs") or []):
            query = urlencode({"client_id": app.client_id, "logout_uri": root})
            return f"{self._oauth.issuer(app.pool_id)}/logout?{query}"
        return root

    # --- sealing --------------------------------------------------------------------------------------------

    @staticmethod
    def _aad(app: FrontDoorApp, kind: str) -> bytes:
        return f"front door {kind}|{app.name}|{app.pool_id}|{app.client_id}".encode()

    def _open(self, app: FrontDoorApp, kind: str, sealed: str | None) -> dict[str, Any] | None:
        if not sealed or len(sealed) > 4096:
            return None
        try:
            data = orjson.loads(self._box.open(sealed, aad=self._aad(app, kind)))
        except (SecretBoxError, orjson.JSONDecodeError):
            return None
        return data if isinstance(data, dict) else None
