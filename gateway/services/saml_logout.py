"""SAML single logout (SAML Profiles §4.4) for users who signed in through a SAML IdP with ``IDPSignout: true``,
as Cognito's "Signing out SAML users with single sign-out" describes.

* SP-initiated: ``/logout`` ends the hosted-UI session here, then (instead of going straight to the app's
  ``logout_uri``) sends the browser to the IdP with a signed LogoutRequest naming the NameID and SessionIndex of
  the sign-in. The IdP's LogoutResponse comes back to ``/saml2/logout`` (HTTP-POST, as Cognito asks of IdPs,
  or HTTP-Redirect); once it verifies (the IdP's signature, InResponseTo our request, Success) the browser goes
  on to the ``logout_uri``. The pending request is kept as a one-use record under the RelayState's hash, for
  ten minutes.
* IdP-initiated: the IdP sends a signed LogoutRequest through the browser to ``/saml2/logout`` (either
  binding); every hosted-UI session of this browser that the request names (the IdP, NameID and, when given,
  SessionIndex) ends, and the browser goes back to the IdP with a signed LogoutResponse.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from gateway.errors import AuthorizationPageError
from gateway.services.federation import FederationService
from gateway.services.oauth import OAuthService, SsoSession
from gateway.storage.base import OAuthRecord, Store
from providers.base import UpstreamError
from providers.saml import Binding, SAMLConnector, cognito_sp_entity_id, logout_request_parties

log = structlog.get_logger("gateway.services.saml_logout")

LOGOUT_KIND = "saml_logout"
LOGOUT_SECONDS = 600.0
# A pool's SP entity ID is this prefix and the pool id (Cognito's urn:amazon:cognito:sp:<pool id>).
SP_ENTITY_PREFIX = cognito_sp_entity_id("")
# How many of a pool's identity providers an IdP-initiated logout without a session looks through, a page at a time.
PROVIDER_PAGE = 60
MAX_PROVIDER_PAGES = 5
POOL_PAGE = 60
MAX_POOL_PAGES = 20
INDEX_SECONDS = 60.0


def upstream_of(
    provider_name: str, provider_type: str, issuer: str | None, claims: Mapping[str, Any]
) -> dict[str, Any]:
    """What a hosted-UI session remembers of a SAML sign-in, for single logout later (empty for others)."""
    if provider_type != "SAML" or not isinstance(claims.get("NameID"), str):
        return {}
    upstream: dict[str, Any] = {
        "provider": provider_name,
        "type": "SAML",
        "issuer": issuer,
        "name_id": claims["NameID"],
    }
    for key, claim in (("name_id_format", "NameIDFormat"), ("session_index", "SessionIndex")):
        if isinstance(claims.get(claim), str):
            upstream[key] = claims[claim]
    return upstream


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True)
class IdpLogout:
    """An IdP-initiated logout, verified: where the browser goes next, and which sessions it ended."""

    response_url: str
    ended: tuple[str, ...]  # pool ids
    response_form: Mapping[str, str] | None = None  # posted to response_url (the IdP takes HTTP-POST only)


class SamlLogoutService:
    def __init__(self, federation: FederationService, oauth: OAuthService, store: Store) -> None:
        self._federation = federation
        self._oauth = oauth
        self._store = store
        self._index = SignoutIndex(federation, store)

    async def _saml_connector(self, pool_id: str, name: str) -> SAMLConnector | None:
        return await _signout_connector(self._federation, pool_id, name)

    async def begin(self, session: SsoSession, then: str, *, acs_url: str | None = None) -> str | None:
        """For a session signed in through a SAML IdP with IDPSignout: the IdP's logout URL carrying our
        LogoutRequest (the browser comes back to ``then`` afterwards). None when there is nothing to do
        upstream, or the IdP cannot be reached (the local sign-out stands either way). ``acs_url``: the ACS of
        the host ``/logout`` was called on (a pool domain's, or Gatehouse's own when None)."""
        upstream = session.upstream or {}
        if upstream.get("type") != "SAML" or not upstream.get("provider"):
            return None
        connector = await self._saml_connector(session.pool_id, str(upstream["provider"]))
        if connector is None:
            return None
        relay_state = secrets.token_urlsafe(32)
        try:
            request = await connector.logout_request(
                name_id=str(upstream["name_id"]),
                name_id_format=upstream.get("name_id_format"),
                session_index=upstream.get("session_index"),
                relay_state=relay_state,
                acs_url=acs_url or self._federation.acs_url,
            )
        except UpstreamError as exc:
            log.warning("saml_logout.request_failed", pool=session.pool_id, reason=exc.reason)
            return None
        if request is None:
            return None
        await self._store.put_oauth_record(
            OAuthRecord(
                kind=LOGOUT_KIND,
                key_hash=_hash(relay_state),
                pool_id=session.pool_id,
                client_id="",
                username_key=session.user.username_key,
                data={"request_id": request.request_id, "provider": upstream["provider"], "then": then},
                expires_at=time.time() + LOGOUT_SECONDS,
            )
        )
        log.info("saml_logout.sent", pool=session.pool_id, provider=upstream["provider"])
        return request.url

    async def finish(self, params: Mapping[str, str], *, binding: Binding, acs_url: str | None = None) -> str:
        """The IdP's LogoutResponse: where the browser goes now (the ``logout_uri`` given to ``/logout``).
        ``acs_url``: the ACS beside the ``/saml2/logout`` it arrived at (a pool domain's, or Gatehouse's own when
        None), whose logout endpoint its Destination must name."""
        relay_state = params.get("RelayState") or ""
        record = await self._store.take_oauth_record(LOGOUT_KIND, _hash(relay_state)) if relay_state else None
        if record is None or record.expires_at <= time.time():
            raise AuthorizationPageError("This sign-out is unknown or has expired.")
        connector = await self._saml_connector(record.pool_id, str(record.data["provider"]))
        if connector is None:
            raise AuthorizationPageError("The identity provider no longer exists.")
        try:
            await connector.check_logout_response(
                params,
                binding=binding,
                expected_request_id=str(record.data["request_id"]),
                acs_url=acs_url or self._federation.acs_url,
            )
        except UpstreamError as exc:
            log.warning("saml_logout.response_refused", pool=record.pool_id, reason=exc.reason)
            raise AuthorizationPageError("The identity provider's sign-out answer was refused.") from exc
        log.info("saml_logout.completed", pool=record.pool_id, provider=record.data["provider"])
        return str(record.data["then"])

    async def idp_initiated(
        self,
        params: Mapping[str, str],
        sessions: Iterable[tuple[str, SsoSession]],
        *,
        binding: Binding,
        pool_id: str | None = None,
        acs_url: str | None = None,
    ) -> IdpLogout:
        """A LogoutRequest from an IdP, arriving with this browser's sessions (cookie value, session). The
        request is checked against the IdP of each session it could end; the first that verifies decides.

        A browser with no session from that IdP (it has ended here already, or was never signed in on this
        browser) still gets the IdP its answer, a signed LogoutResponse, as SAML Profiles §4.4.4.2 requires of
        a session participant: the IdP is then found among the IDPSignout SAML providers of ``pool_id`` (the
        pool the request was addressed to), of the pool whose SP entity ID the NameID's SPNameQualifier names, or
        else of every pool (:class:`SignoutIndex`). ``acs_url`` as for :meth:`finish`: the request's Destination
        must be the ``/saml2/logout`` it arrived at, a pool domain's or Gatehouse's own."""
        acs_url = acs_url or self._federation.acs_url
        candidates = [
            (token, session)
            for token, session in sessions
            if (session.upstream or {}).get("type") == "SAML" and (session.upstream or {}).get("provider")
        ]
        for _token, session in candidates:
            upstream = session.upstream or {}
            connector = await self._saml_connector(session.pool_id, str(upstream["provider"]))
            if connector is None:
                continue
            try:
                info = await connector.handle_logout_request(params, binding=binding, acs_url=acs_url)
            except UpstreamError as exc:
                log.warning("saml_logout.request_refused", pool=session.pool_id, reason=exc.reason)
                continue
            ended = []
            for other_token, other in candidates:
                theirs = other.upstream or {}
                if (
                    theirs.get("issuer") == info.issuer
                    and theirs.get("name_id") == info.name_id
                    and (not info.session_indexes or theirs.get("session_index") in info.session_indexes)
                ):
                    await self._oauth.end_sso(other_token)
                    ended.append(other.pool_id)
            log.info("saml_logout.idp_initiated", issuer=info.issuer, ended=len(ended))
            return IdpLogout(info.response_url, tuple(ended), info.response_form)
        answered = await self._without_session(params, binding, pool_id, acs_url)
        if answered is not None:
            return answered
        raise AuthorizationPageError("The sign-out request could not be verified.")

    async def _without_session(
        self, params: Mapping[str, str], binding: Binding, pool_id: str | None, acs_url: str
    ) -> IdpLogout | None:
        """An IdP-initiated LogoutRequest that no session of this browser verified: verified against the
        provider whose IdP says it sent it, and answered (nothing here to end). None if none verifies it."""
        issuer, qualifier = logout_request_parties(params, binding)
        if not issuer:
            return None
        if pool_id is None and qualifier is not None and qualifier.startswith(SP_ENTITY_PREFIX):
            pool_id = qualifier[len(SP_ENTITY_PREFIX) :]
        if pool_id is not None:
            providers = await self._index.in_pool(pool_id, issuer)
        else:
            # The global endpoint, a NameID naming no SP: the providers of every pool whose IdP is the issuer.
            providers = await self._index.everywhere(issuer)
        for pool, name in providers:
            connector = await self._saml_connector(pool, name)
            if connector is None:
                continue
            try:
                info = await connector.handle_logout_request(params, binding=binding, acs_url=acs_url)
            except UpstreamError as exc:
                log.warning("saml_logout.request_refused", pool=pool, reason=exc.reason)
                continue
            log.info("saml_logout.idp_initiated", issuer=info.issuer, ended=0)
            return IdpLogout(info.response_url, (), info.response_form)
        return None


class SignoutIndex:
    """Which pools' SAML providers with IDPSignout stand for an IdP (by its entity ID): how a LogoutRequest that
    no session of the browser names finds the keys to verify it. The whole index is read again at most once
    every :data:`INDEX_SECONDS` (one read at a time, whatever the number of requests), so that unverified
    requests cannot make the store be read at their pace; a provider added meanwhile is found by the next."""

    def __init__(self, federation: FederationService, store: Store) -> None:
        self._federation = federation
        self._store = store
        self._by_issuer: dict[str, list[tuple[str, str]]] = {}
        self._read_at = float("-inf")
        self._lock = asyncio.Lock()

    async def _entity_id(self, pool_id: str, name: str) -> str | None:
        connector = await _signout_connector(self._federation, pool_id, name)
        if connector is None:
            return None
        try:
            return await connector.idp_entity_id(acs_url=self._federation.acs_url)
        except UpstreamError as exc:
            log.warning("saml_logout.metadata_unusable", pool=pool_id, provider=name, reason=exc.reason)
            return None

    async def _providers(self, pool_id: str) -> list[str]:
        """The names of a pool's SAML providers (the first :data:`MAX_PROVIDER_PAGES` pages)."""
        names: list[str] = []
        after: str | None = None
        for _ in range(MAX_PROVIDER_PAGES):
            page = await self._store.list_identity_providers(pool_id, after, PROVIDER_PAGE)
            names.extend(record.name for record in page.items if record.provider_type == "SAML")
            if page.next_token is None:
                break
            after = page.next_token
        return names

    async def in_pool(self, pool_id: str, issuer: str) -> list[tuple[str, str]]:
        """The pool's providers whose IdP is ``issuer`` (read now: one pool's providers are few)."""
        return [
            (pool_id, name) for name in await self._providers(pool_id) if await self._entity_id(pool_id, name) == issuer
        ]

    async def everywhere(self, issuer: str) -> list[tuple[str, str]]:
        async with self._lock:
            if time.monotonic() - self._read_at > INDEX_SECONDS:
                self._by_issuer = await self._read()
                self._read_at = time.monotonic()
            return list(self._by_issuer.get(issuer, ()))

    async def _read(self) -> dict[str, list[tuple[str, str]]]:
        index: dict[str, list[tuple[str, str]]] = {}
        after: str | None = None
        for _ in range(MAX_POOL_PAGES):
            page = await self._store.list_pools(after, POOL_PAGE)
            for pool in page.items:
                for name in await self._providers(pool.id):
                    entity_id = await self._entity_id(pool.id, name)
                    if entity_id is not None:
                        index.setdefault(entity_id, []).append((pool.id, name))
            if page.next_token is None:
                break
            after = page.next_token
        return index


async def _signout_connector(federation: FederationService, pool_id: str, name: str) -> SAMLConnector | None:
    """The SAML connector of the pool's provider ``name`` when that provider has single logout (IDPSignout)."""
    found = await federation.provider_connector(pool_id, name)
    if found is None:
        return None
    record, connector = found
    if not isinstance(connector, SAMLConnector) or record.details.get("IDPSignout", "false") != "true":
        return None
    return connector
