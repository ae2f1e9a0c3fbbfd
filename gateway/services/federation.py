"""The federation broker: upstream sign-ins in, pool users out. It never names a provider.

What a wire calls (the hosted UI's ``/oauth2/authorize?identity_provider=X``, ``/oauth2/idpresponse``,
``/saml2/idpresponse``):

* :meth:`FederationService.begin` -- start a sign-in at a pool's provider; returns where to send the browser.
  The state, nonce, PKCE verifier (and SAML request id) are kept in the store under the state's hash, so any
  process may receive the callback, and each state answers one callback only. A sign-in started on a pool
  domain comes back to that domain (Cognito's redirect URI is ``https://<your domain>/oauth2/idpresponse``, its
  ACS ``https://<your domain>/saml2/idpresponse``), and only there; one started on Gatehouse's own host comes
  back to ``{public_url}``.
* :meth:`FederationService.complete_redirect` / :meth:`complete_saml` -- take the callback, have the connector
  verify it, and sign the identity in: returns the user and the caller's ``resume`` data (the authorization
  request to continue with).

Signing in follows Cognito ("Adding user pool sign-in through a third party", "Linking federated users",
"Specifying identity provider attribute mappings"): the user is named ``<ProviderName>_<subject>`` (lower case in
a case-insensitive pool) with status EXTERNAL_PROVIDER, in the group ``<UserPoolId>_<ProviderName>``, unless an
AdminLinkProviderForUser link sends the identity to an existing user;
AttributeMapping is applied on every sign-in; the ``identities`` attribute holds the linked identities as
Cognito stores them (JSON list of userId, providerName, providerType, issuer, primary, dateCreated). Claim ->
group rules then make the user's group memberships follow the upstream's (gateway/services/rule_groups.py).

On every sign-in, before anything is stored, the pool's inbound federation function (LambdaConfig.InboundFederation,
gateway/services/inbound_federation.py) may replace the IdP's attributes that AttributeMapping then reads.

Before an identity's first sign-in creates its user, the PreSignUp hooks run (gateway/services/hooks.py,
``PreSignUp_ExternalProvider``): they may refuse, set autoVerifyEmail / autoVerifyPhone, or link the identity to
an existing user, whom the sign-in then lands on.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import aiohttp
import structlog

from gateway.errors import (
    ConcurrentModificationException,
    GatehouseError,
    InvalidParameterException,
    LimitExceededException,
    NotAuthorizedException,
    ResourceNotFoundException,
    UpstreamIdentityError,
    UserNotFoundException,
)
from gateway.ids import new_opaque_token, new_sub, sha256_hex
from gateway.secretbox import SecretBox
from gateway.services import rule_groups
from gateway.services.hooks import PRE_SIGN_UP_EXTERNAL_PROVIDER, HookRegistry, PreSignUpContext, pre_sign_up_event
from gateway.services.identity_providers import COGNITO_PROVIDER, SOCIAL_TYPES, IdentityProviderService
from gateway.services.inbound_federation import inbound_federation
from gateway.services.pools import PoolService, PoolView
from gateway.services.schema import claim_text, required_attributes, schema_index, value_fits
from gateway.services.triggers import POST_CONFIRMATION_SIGN_UP, user_attributes
from gateway.services.users import alias_value
from gateway.storage.base import (
    AlreadyExists,
    FederationRequestRecord,
    IdentityProviderRecord,
    NotFound,
    ProviderLinkRecord,
    Store,
    UserRecord,
    VersionConflict,
)
from providers.base import (
    Connector,
    ConnectorContext,
    Identity,
    RedirectConnector,
    SamlConnector,
    UpstreamError,
)
from providers.oauth2 import with_query
from providers.registry import open_connector
from providers.saml import cognito_sp_entity_id

log = structlog.get_logger("gateway.federation")

EXTERNAL_PROVIDER = "EXTERNAL_PROVIDER"
# How long a browser may take at the upstream IdP before the state is refused.
REQUEST_SECONDS = 600
MAX_LINKS_PER_USER = 5
SUBJECT_ATTRIBUTE = "Cognito_Subject"
# botocore's UsernameType: the most characters a user name (here ProviderName_subject) may have.
MAX_USERNAME_LENGTH = 128
# User settings flag: AdminDisableProviderForUser(Cognito) took the user's password sign-in away.
PASSWORD_DISABLED = "password_sign_in_disabled"


@dataclass(frozen=True)
class UpstreamRedirect:
    """Where to send the browser: a GET of ``url``, or (SAML HTTP-POST binding) a form posted to it."""

    url: str
    method: Literal["GET", "POST"] = "GET"
    form: Mapping[str, str] = field(default_factory=dict)


class FederationCallbackError(Exception):
    """A callback whose state was ours but whose sign-in failed; ``resume`` lets the caller answer the request
    that started it (an OAuth error redirect) rather than show a dead end."""

    def __init__(self, error: GatehouseError, resume: dict[str, Any]) -> None:
        super().__init__(error.message)
        self.error = error
        self.resume = resume


@dataclass(frozen=True)
class FederatedSignIn:
    pool: PoolView
    user: UserRecord
    identity: Identity
    provider_name: str
    resume: dict[str, Any]
    auth_time: int


# The IdP types Cognito forwards a login_hint to (its "Authorize endpoint", login_hint).
_LOGIN_HINT_TYPES: Final = frozenset({"OIDC", "Google"})


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


_VERIFICATION_FLAGS = frozenset({"email_verified", "phone_number_verified"})


def external_username(pool: PoolView, provider_name: str, subject: str) -> str:
    """The user name a federated identity's profile gets: ``<ProviderName>_<subject>``, all in lower case in a
    pool whose user names are case insensitive, as Cognito writes it ("Mapping IdP attributes to profiles and
    tokens"); the ``identities`` attribute keeps the subject as the IdP wrote it."""
    username = f"{provider_name}_{subject}"
    return username if pool.case_sensitive else username.lower()


def identities_of(user: UserRecord) -> list[dict[str, Any]]:
    raw = user.attributes.get("identities")
    if not raw:
        return []
    try:
        found = json.loads(raw)
    except ValueError:
        return []
    return [entry for entry in found if isinstance(entry, dict)] if isinstance(found, list) else []


def _identity_issuer(record: IdentityProviderRecord, issuer: str | None) -> str | None:
    """The ``issuer`` of an ``identities`` entry as Cognito writes it: the IdP's entity ID for a SAML provider,
    null for OIDC and social providers (whose ID token ``iss`` Cognito does not copy there)."""
    return issuer if record.provider_type == "SAML" else None


def _holds_identity(pool: PoolView, user: UserRecord, provider_name: str, subject: str) -> bool:
    """Whether ``user``'s ``identities`` hold this provider's (its exact name) identity ``subject`` (in a
    case-insensitive pool, in any case: the user name made from it is lower case too)."""
    fold = (lambda text: text) if pool.case_sensitive else str.lower
    return any(
        entry.get("providerName") == provider_name and fold(str(entry.get("userId", ""))) == fold(subject)
        for entry in identities_of(user)
    )


def _with_identity(user: UserRecord, record: IdentityProviderRecord, subject: str, issuer: str | None) -> str:
    entries = identities_of(user)
    issuer = _identity_issuer(record, issuer)
    for entry in entries:
        if entry.get("providerName") == record.name and entry.get("userId") == subject:
            # An entry made before the issuer was known (a SAML link), or written otherwise by an earlier
            # version, is brought to what this sign-in shows.
            if issuer is not None or record.provider_type != "SAML":
                entry["issuer"] = issuer
            return json.dumps(entries, separators=(",", ":"))
    entries.append(
        {
            "userId": subject,
            "providerName": record.name,
            "providerType": record.provider_type,
            "issuer": issuer,
            "primary": not entries,
            "dateCreated": int(time.time() * 1000),
        }
    )
    return json.dumps(entries, separators=(",", ":"))


def _generate_sp_key_pair(common_name: str) -> dict[str, str]:
    """The SAML SP's RSA key and self-signed certificate (what Cognito's GetSigningCertificate shows)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    return {
        "key": key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
        "cert": cert.public_bytes(serialization.Encoding.PEM).decode(),
    }


class FederationService:
    def __init__(
        self,
        store: Store,
        pools: PoolService,
        idps: IdentityProviderService,
        box: SecretBox,
        *,
        public_url: str,
        executor: Executor | None = None,
    ) -> None:
        self._store = store
        self._pools = pools
        self._idps = idps
        self._box = box
        self._public_url = public_url.rstrip("/")
        # A pool domain is served with the public URL's scheme (behind the same TLS front, or neither).
        self._scheme = urlsplit(self._public_url).scheme or "https"
        self._executor = executor
        self._http: aiohttp.ClientSession | None = None
        self._connectors: dict[tuple[str, str], tuple[tuple[int, float], Connector]] = {}
        self._sp_keys: dict[str, dict[str, str]] = {}
        # The container shares its registry here; a bare service (tests) has the built-in hooks only.
        self.hooks = HookRegistry()

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    @property
    def callback_url(self) -> str:
        """Cognito's redirect URI registered at OAuth / OIDC providers, on Gatehouse's own host."""
        return self.callback_url_for(None)

    @property
    def acs_url(self) -> str:
        """Cognito's SAML assertion consumer service URL, on Gatehouse's own host."""
        return self.acs_url_for(None)

    def _base_url(self, domain: str | None) -> str:
        """Where the endpoints of a sign-in on ``domain`` (a pool domain as the browser addressed it: its name,
        and a port if one was given) are: the domain's root, as Cognito serves its hosted UI on it; Gatehouse's
        own URL without one."""
        return f"{self._scheme}://{domain}" if domain else self._public_url

    def callback_url_for(self, domain: str | None) -> str:
        """The redirect URI of a sign-in on ``domain``: "https://<your domain>/oauth2/idpresponse" is what Cognito
        has you register at an OAuth / OIDC provider ("Adding social identity providers", "Adding OIDC
        identity providers")."""
        return f"{self._base_url(domain)}/oauth2/idpresponse"

    def acs_url_for(self, domain: str | None) -> str:
        """The SAML ACS URL of a sign-in on ``domain``: "https://<your domain>/saml2/idpresponse" in Cognito's
        "Adding SAML identity providers"."""
        return f"{self._base_url(domain)}/saml2/idpresponse"

    # --- connectors ----------------------------------------------------------------------------------------

    async def sp_key_pair(self, pool_id: str) -> dict[str, str]:
        """The pool's SAML SP key pair, made once and kept sealed in the store (every process uses the same)."""
        cached = self._sp_keys.get(pool_id)
        if cached is not None:
            return cached
        meta_key = f"saml_sp:{pool_id}"
        stored = await self._store.get_meta(meta_key)
        if stored is None:
            pair = await asyncio.get_running_loop().run_in_executor(
                self._executor, _generate_sp_key_pair, cognito_sp_entity_id(pool_id)
            )
            sealed = self._box.seal(json.dumps(pair).encode(), aad=meta_key.encode())
            stored = await self._store.put_meta_if_absent(meta_key, sealed)
        keys: dict[str, str] = json.loads(self._box.open(stored, aad=meta_key.encode()))
        self._sp_keys[pool_id] = keys
        return keys

    async def signing_certificate(self, pool_id: str) -> str:
        """GetSigningCertificate: the base64 body of the pool's SAML SP certificate."""
        await self._pools.get_pool(pool_id)
        pem = (await self.sp_key_pair(pool_id))["cert"]
        return "".join(line for line in pem.strip().splitlines() if not line.startswith("-----"))

    async def provider_connector(self, pool_id: str, name: str) -> tuple[IdentityProviderRecord, Connector] | None:
        """The provider record and its connector (single logout needs both), or None if it is gone."""
        record = await self._store.get_identity_provider(pool_id, name)
        if record is None:
            return None
        return record, await self._connector(record)

    async def _connector(self, record: IdentityProviderRecord) -> Connector:
        key = (record.pool_id, record.name)
        version = (record.version, record.updated_at)
        cached = self._connectors.get(key)
        if cached is not None and cached[0] == version:
            return cached[1]
        if self._http is None:
            self._http = aiohttp.ClientSession()
        sp = await self.sp_key_pair(record.pool_id) if record.provider_type == "SAML" else {}
        context = ConnectorContext(
            http=self._http,
            executor=self._executor,
            mark_once=self._store.mark_assertion_seen,
            sp_entity_id=cognito_sp_entity_id(record.pool_id),
            sp_key_pem=sp.get("key"),
            sp_cert_pem=sp.get("cert"),
        )
        wanted = [claim for attribute, claim in record.attribute_mapping.items() if attribute != "username"]
        connector = open_connector(
            record.provider_type, record.name, self._idps.details(record), context, wanted_claims=wanted
        )
        self._connectors[key] = (version, connector)
        return connector

    # --- the sign-in round trip ------------------------------------------------------------------------------

    async def begin(
        self,
        pool_id: str,
        provider_name: str,
        *,
        resume: Mapping[str, Any],
        browser: str | None = None,
        prompt: Sequence[str] = (),
        login_hint: str | None = None,
        domain: str | None = None,
    ) -> UpstreamRedirect:
        """Start a sign-in at ``provider_name``; ``resume`` comes back with the callback's result.

        ``browser`` is a secret the caller keeps in the user agent (a cookie): the callback must show it again,
        so that a state cannot be completed in another browser (login CSRF, RFC 6749 §10.12).

        ``prompt``: the client's ``prompt`` values. Cognito forwards every one but ``none`` to the IdP (its
        "Authorize endpoint": login, consent and select_account are the IdP's to honour): an OAuth 2.0 / OIDC
        provider gets them as its own ``prompt`` (OpenID Connect Core §3.1.2.1); a SAML IdP is asked for a new
        authentication (``ForceAuthn``, SAML Core §3.4.1) by ``login``, the one SAML can say.

        ``login_hint``: the client's. Cognito adds it to the authorization request of an OIDC IdP or Google (OpenID
        Connect Core §3.1.2.1), and to no other IdP's (its "Authorize endpoint": not SAML, Apple, Amazon or
        Facebook).

        ``domain``: the pool domain the authorization request was addressed to (None on Gatehouse's own host).
        The upstream sends the browser back there, where the caller's cookie is, and the callback must arrive
        there (:meth:`_take`); the redirect URI sent is kept, as the code exchange must send it again (RFC 6749
        §4.1.3), and so is the ACS URL, which the Response's Destination and Recipient must name."""
        forwarded = [value for value in prompt if value != "none"]
        record = await self._idps.get(pool_id, provider_name)
        connector = await self._connector(record)
        state = new_opaque_token(32)
        state_hash = sha256_hex(state)
        data: dict[str, Any] = {"resume": dict(resume)}
        if browser is not None:
            data["browser"] = sha256_hex(browser)
        if domain:
            data["domain"] = domain
        callback_url = self.callback_url_for(domain)
        acs_url = self.acs_url_for(domain)
        try:
            if isinstance(connector, RedirectConnector):
                nonce = new_opaque_token(24)
                verifier = new_opaque_token(48)
                challenge = _b64url(hashlib.sha256(verifier.encode()).digest())
                url = await connector.authorization_url(
                    state=state, nonce=nonce, code_challenge=challenge, redirect_uri=callback_url
                )
                if forwarded:
                    url = with_query(url, {"prompt": " ".join(forwarded)})
                if login_hint and record.provider_type in _LOGIN_HINT_TYPES:
                    url = with_query(url, {"login_hint": login_hint})
                data.update(
                    nonce=nonce,
                    code_verifier=self._box.seal(verifier.encode(), aad=state_hash.encode()),
                    redirect_uri=callback_url,
                )
                redirect = UpstreamRedirect(url=url)
            elif isinstance(connector, SamlConnector):
                request = await connector.authn_request(
                    relay_state=state, acs_url=acs_url, force_authn="login" in forwarded
                )
                data.update(request_id=request.request_id, acs_url=acs_url)
                if request.binding == "post":
                    redirect = UpstreamRedirect(url=request.url, method="POST", form=request.form)
                else:
                    redirect = UpstreamRedirect(url=request.url)
            else:  # pragma: no cover - the registry only holds the two capabilities
                raise InvalidParameterException(f"Provider {provider_name} cannot be signed in to.")
        except UpstreamError as exc:
            log.warning("federation.begin_failed", pool=pool_id, provider=provider_name, reason=exc.reason)
            raise UpstreamIdentityError(exc.reason) from exc
        await self._store.put_federation_request(
            FederationRequestRecord(
                state_hash=state_hash,
                pool_id=pool_id,
                provider_name=provider_name,
                data=data,
                expires_at=time.time() + REQUEST_SECONDS,
            )
        )
        log.info("federation.begin", pool=pool_id, provider=provider_name)
        return redirect

    async def _take(
        self, state: str | None, browser: str | None, check_browser: bool, domain: str | None
    ) -> FederationRequestRecord:
        """The request ``state`` names, used up; refused when it is unknown, expired, from another browser, or
        arrives on another host than the one it was started on (``domain``: the pool domain the callback was
        addressed to, None for Gatehouse's own host)."""
        if not isinstance(state, str) or not state or len(state) > 512:
            raise UpstreamIdentityError("state_missing", "The sign-in state is missing.")
        request = await self._store.take_federation_request(sha256_hex(state))
        if request is None:
            raise UpstreamIdentityError("state_unknown", "The sign-in state is unknown or was used already.")
        if request.expires_at <= time.time():
            raise UpstreamIdentityError("state_expired", "The sign-in took too long; start again.")
        bound = request.data.get("browser")
        if check_browser and bound is not None and (browser is None or sha256_hex(browser) != bound):
            log.warning("federation.refused", pool=request.pool_id, provider=request.provider_name, reason="browser")
            raise UpstreamIdentityError("browser_mismatch", "This sign-in was started in another browser.")
        if request.data.get("domain") != (domain or None):
            # The upstream was told to come back where the sign-in started; an answer carried to another host
            # (another pool's domain, or ours) is not the one it was sent to.
            log.warning("federation.refused", pool=request.pool_id, provider=request.provider_name, reason="domain")
            raise UpstreamIdentityError("domain_mismatch", "This sign-in was started on another domain.")
        return request

    async def complete_redirect(
        self,
        params: Mapping[str, str],
        *,
        browser: str | None = None,
        check_browser: bool = True,
        domain: str | None = None,
    ) -> FederatedSignIn:
        """``/oauth2/idpresponse``: the callback of an OAuth 2.0 / OIDC provider (query or form_post), arrived
        on the pool domain ``domain`` (None: Gatehouse's own host).

        A bad state raises UpstreamIdentityError; once the state is known, any failure is a
        :class:`FederationCallbackError` carrying the caller's ``resume`` data, so the request can be answered."""
        request = await self._take(params.get("state"), browser, check_browser, domain)
        try:
            return await self._complete_redirect(request, params)
        except GatehouseError as exc:
            raise FederationCallbackError(exc, dict(request.data.get("resume") or {})) from exc

    async def _complete_redirect(self, request: FederationRequestRecord, params: Mapping[str, str]) -> FederatedSignIn:
        record = await self._provider_of(request)
        connector = await self._connector(record)
        if not isinstance(connector, RedirectConnector) or "nonce" not in request.data:
            raise UpstreamIdentityError("wrong_callback")
        verifier = self._box.open(request.data["code_verifier"], aad=request.state_hash.encode()).decode()
        try:
            identity = await connector.complete(
                params, nonce=request.data["nonce"], code_verifier=verifier, redirect_uri=request.data["redirect_uri"]
            )
        except UpstreamError as exc:
            log.warning("federation.refused", pool=request.pool_id, provider=record.name, reason=exc.reason)
            raise UpstreamIdentityError(exc.reason) from exc
        return await self._finish(request, record, identity)

    async def complete_saml(
        self,
        form: Mapping[str, str],
        *,
        browser: str | None = None,
        check_browser: bool = True,
        domain: str | None = None,
    ) -> FederatedSignIn:
        """``/saml2/idpresponse``: a SAML Response posted back with the RelayState we sent (``domain`` and
        errors as :meth:`complete_redirect`)."""
        request = await self._take(form.get("RelayState"), browser, check_browser, domain)
        try:
            return await self._complete_saml(request, form)
        except GatehouseError as exc:
            raise FederationCallbackError(exc, dict(request.data.get("resume") or {})) from exc

    async def _complete_saml(self, request: FederationRequestRecord, form: Mapping[str, str]) -> FederatedSignIn:
        record = await self._provider_of(request)
        connector = await self._connector(record)
        if not isinstance(connector, SamlConnector) or "request_id" not in request.data:
            raise UpstreamIdentityError("wrong_callback")
        try:
            identity = await connector.complete(
                form.get("SAMLResponse", ""),
                expected_request_id=request.data["request_id"],
                acs_url=request.data["acs_url"],
            )
        except UpstreamError as exc:
            log.warning("federation.refused", pool=request.pool_id, provider=record.name, reason=exc.reason)
            raise UpstreamIdentityError(exc.reason) from exc
        return await self._finish(request, record, identity)

    async def complete_idp_initiated(
        self,
        pool_id: str,
        provider_name: str,
        saml_response: str,
        *,
        resume: Mapping[str, Any],
        domain: str | None = None,
    ) -> FederatedSignIn:
        """``/saml2/idpresponse`` without a request of ours: IdP-initiated sign-in, allowed only when the
        provider's IDPInit is true (the connector checks), with every other check of a Response still applied
        and replays refused by assertion id. Its Destination and Recipient must be the ACS URL it was posted to
        (on the pool domain ``domain``, or Gatehouse's own). Errors as :meth:`complete_redirect`."""
        request = FederationRequestRecord(
            state_hash="", pool_id=pool_id, provider_name=provider_name, data={"resume": dict(resume)}, expires_at=0
        )
        try:
            record = await self._provider_of(request)
            connector = await self._connector(record)
            if not isinstance(connector, SamlConnector):
                raise UpstreamIdentityError("wrong_callback")
            try:
                identity = await connector.complete(
                    saml_response, expected_request_id=None, acs_url=self.acs_url_for(domain)
                )
            except UpstreamError as exc:
                log.warning("federation.refused", pool=pool_id, provider=record.name, reason=exc.reason)
                raise UpstreamIdentityError(exc.reason) from exc
            return await self._finish(request, record, identity)
        except GatehouseError as exc:
            raise FederationCallbackError(exc, dict(resume)) from exc

    async def _provider_of(self, request: FederationRequestRecord) -> IdentityProviderRecord:
        record = await self._store.get_identity_provider(request.pool_id, request.provider_name)
        if record is None:
            raise UpstreamIdentityError("provider_gone", "The identity provider no longer exists.")
        return record

    async def _finish(
        self, request: FederationRequestRecord, record: IdentityProviderRecord, identity: Identity
    ) -> FederatedSignIn:
        pool = await self._pools.get_pool(request.pool_id)
        resume = request.data.get("resume") or {}
        client_id = resume.get("client_id") if isinstance(resume.get("client_id"), str) else None
        user = await self.sign_in(pool, record, identity, client_id=client_id)
        log.info("federation.signed_in", pool=pool.id, provider=record.name, username=user.username)
        return FederatedSignIn(
            pool=pool,
            user=user,
            identity=identity,
            provider_name=record.name,
            resume=dict(request.data.get("resume") or {}),
            auth_time=int(time.time()),
        )

    # --- identity -> user ------------------------------------------------------------------------------

    def mapped_attributes(self, pool: PoolView, record: IdentityProviderRecord, identity: Identity) -> dict[str, str]:
        """AttributeMapping applied to the upstream claims; values the pool's schema refuses are left out."""
        schema = schema_index(pool.schema)
        mapped: dict[str, str] = {}
        for attribute, claim in record.attribute_mapping.items():
            if attribute in ("username", "sub", "identities") or attribute not in schema:
                continue
            value = claim_text(identity.claims.get(claim), saml=identity.provider_type == "SAML")
            if value is None:
                continue
            if attribute in ("email_verified", "phone_number_verified"):
                value = value.lower()
            limit = int(schema[attribute].get("StringAttributeConstraints", {}).get("MaxLength", 2048) or 2048)
            if len(value) > limit:
                log.warning("federation.attribute_dropped", pool=pool.id, attribute=attribute, reason="too_long")
                continue
            if not value_fits(attribute, value, schema[attribute]):
                # Not what SignUp or AdminUpdateUserAttributes would store (a birthdate that is no date, an email
                # not in its form): left out, never handed to tokens and applications as if valid.
                log.warning("federation.attribute_dropped", pool=pool.id, attribute=attribute, reason="invalid")
                continue
            mapped[attribute] = value
        return mapped

    async def _link_of(
        self, pool: PoolView, record: IdentityProviderRecord, identity: Identity, mapped: Mapping[str, str]
    ) -> ProviderLinkRecord | None:
        candidates = [(SUBJECT_ATTRIBUTE, identity.subject)] + [(k, v) for k, v in sorted(mapped.items())]
        for attribute, value in candidates:
            link = await self._store.get_provider_link(pool.id, record.name, attribute, value)
            if link is not None:
                return link
        return None

    async def _linked_user(
        self, pool: PoolView, record: IdentityProviderRecord, identity: Identity, mapped: Mapping[str, str]
    ) -> UserRecord | None:
        link = await self._link_of(pool, record, identity, mapped)
        return None if link is None else await self._store.get_user(pool.id, link.username_key)

    async def _pin_link(self, pool: PoolView, link: ProviderLinkRecord, subject: str) -> None:
        """A link made by an attribute (an OIDC claim, a SAML attribute) becomes the link of the identity that
        signed in through it: AdminDisableProviderForUser "If the user has already signed in, the
        ProviderAttributeName must be Cognito_Subject and ProviderAttributeValue must be the subject of the SAML
        assertion". The attribute link is replaced, so one link per identity stays to be removed."""
        if link.attribute_name == SUBJECT_ATTRIBUTE:
            return
        pinned = ProviderLinkRecord(
            pool.id, link.provider_name, SUBJECT_ATTRIBUTE, subject, link.username_key, link.created_at
        )
        try:
            await self._store.put_provider_link(pinned)
        except AlreadyExists:
            # The subject is linked already (to this user, by a concurrent sign-in, or to another user by an
            # administrator, whose link wins as it did at this sign-in's look-up): the attribute link stays.
            existing = await self._store.get_provider_link(pool.id, link.provider_name, SUBJECT_ATTRIBUTE, subject)
            if existing is None or existing.username_key != link.username_key:
                return
        except NotFound:
            return  # the user was deleted meanwhile
        await self._store.delete_provider_link(pool.id, link.provider_name, link.attribute_name, link.attribute_value)

    async def sign_in(
        self, pool: PoolView, record: IdentityProviderRecord, identity: Identity, *, client_id: str | None = None
    ) -> UserRecord:
        # The pool's inbound federation function, on every sign-in and before anything is stored, may reshape the
        # attributes AttributeMapping reads; who signed in (and what links and group rules go by) stays as the
        # IdP said it.
        attributes_of = await inbound_federation(
            self.hooks.triggers,
            pool,
            identity,
            provider_name=record.name,
            username=external_username(pool, record.name, identity.subject),
            client_id=client_id,
        )
        mapped = self.mapped_attributes(pool, record, attributes_of)
        # Links (AdminLinkProviderForUser on an attribute "from the external IdP") are found by what the IdP said,
        # never by the function's answer: a function that normalises addresses must not land one account on another.
        said = mapped if attributes_of is identity else self.mapped_attributes(pool, record, identity)
        linked = await self._linked_user(pool, record, identity, said)
        if linked is None and len(external_username(pool, record.name, identity.subject)) > MAX_USERNAME_LENGTH:
            # The user would be named beyond UsernameType's 128 characters: no API call could address it again.
            log.warning("federation.refused", pool=pool.id, provider=record.name, reason="username_too_long")
            raise UpstreamIdentityError("username_too_long")
        # A first sign-in makes the identity's profile (unless a PreSignUp function links it to a user instead).
        first = (
            linked is None and await self._store.get_user(pool.id, self._external_key(pool, record, identity)) is None
        )
        if first:
            mapped = await self._pre_sign_up(pool, record, identity, mapped, client_id)
            # A hook may have linked the identity (as a PreSignUp Lambda calling AdminLinkProviderForUser does).
            linked = await self._linked_user(pool, record, identity, said)
            missing = [a for a in required_attributes(pool.schema) if not mapped.get(a)]
            if linked is None and missing:
                # Cognito: "a mapping must be present for each user pool attribute your user pool requires"; a
                # new federated user lacking one is refused ("Invalid user attributes: ... is required").
                log.warning("federation.refused", pool=pool.id, provider=record.name, reason="required_attribute")
                raise UpstreamIdentityError(
                    "required_attribute",
                    "Invalid user attributes: " + ", ".join(f"{a}: The attribute is required" for a in missing),
                )
        if linked is not None:
            first = False
            # A linked (usually native) user keeps its own attributes; only its identities learn this one.
            user = await self._update(pool, linked, {}, record, identity, signing_in=True)
            if user.enabled:
                link = await self._link_of(pool, record, identity, said)
                if link is not None and link.username_key == user.username_key:
                    await self._pin_link(pool, link, identity.subject)
        else:
            await self._check_client_may_write(pool, record, client_id, mapped)
            user = await self._external_user(pool, record, identity, mapped)
        if not user.enabled:
            raise NotAuthorizedException("User is disabled.")
        user = await self._apply_group_rules(pool, record, identity, user)
        await self._run_triggers(pool, user, client_id, first=first)
        return user

    async def _run_triggers(self, pool: PoolView, user: UserRecord, client_id: str | None, *, first: bool) -> None:
        """The pool's Lambda triggers of a federated sign-in ("Connecting API operations to Lambda triggers"): the
        first one, which made the profile, is its confirmation (PostConfirmation_ConfirmSignUp); every later one
        is an authentication (PreAuthentication, then PostAuthentication). A function that raises refuses the
        sign-in; the profile it made stays, as a native confirmation does."""
        triggers = self.hooks.triggers
        if triggers is None or client_id is None or not pool.settings.get("LambdaConfig"):
            return
        attributes = user_attributes(user.attributes, sub=user.sub, status=user.status)
        if first:
            await triggers.post_confirmation(
                pool, POST_CONFIRMATION_SIGN_UP, client_id=client_id, username=user.username, attributes=attributes
            )
            return
        await triggers.pre_authentication(pool, client_id=client_id, username=user.username, attributes=attributes)
        await triggers.post_authentication(
            pool, client_id=client_id, username=user.username, attributes=attributes, new_device_used=False
        )

    @staticmethod
    def _external_key(pool: PoolView, record: IdentityProviderRecord, identity: Identity) -> str:
        return pool.username_key(external_username(pool, record.name, identity.subject))

    async def _pre_sign_up(
        self,
        pool: PoolView,
        record: IdentityProviderRecord,
        identity: Identity,
        mapped: dict[str, str],
        client_id: str | None,
    ) -> dict[str, str]:
        """Run the PreSignUp hooks for an identity's first sign-in; returns the attributes to create it with."""
        event = pre_sign_up_event(
            pool,
            PRE_SIGN_UP_EXTERNAL_PROVIDER,
            external_username(pool, record.name, identity.subject),
            mapped,
            client_id=client_id,
        )

        async def link(username: str) -> None:
            await self.link(
                pool.id,
                {"ProviderName": COGNITO_PROVIDER, "ProviderAttributeValue": username},
                {
                    "ProviderName": record.name,
                    "ProviderAttributeName": SUBJECT_ATTRIBUTE,
                    "ProviderAttributeValue": identity.subject,
                },
            )

        context = PreSignUpContext(pool=pool, store=self._store, provider=record, identity=identity, linker=link)
        outcome = await self.hooks.run_pre_sign_up(event, context)
        attributes = dict(mapped)
        if outcome.auto_verify_email and "email" in attributes:
            attributes["email_verified"] = "true"
        if outcome.auto_verify_phone and "phone_number" in attributes:
            attributes["phone_number_verified"] = "true"
        return attributes

    async def _check_client_may_write(
        self, pool: PoolView, record: IdentityProviderRecord, client_id: str | None, mapped: Mapping[str, str]
    ) -> None:
        """The attributes a sign-in maps onto the profile must be ones the app client may write: "If your app
        client does not have write access to a mapped attribute, Amazon Cognito throws an error when it tries to
        update the attribute" (UserPoolClientType.WriteAttributes). The verification flags a mapping may carry
        are the IdP's word on the address it maps, not a write of the client's."""
        if client_id is None:
            return
        try:
            client = await self._pools.get_client(pool.id, client_id)
        except ResourceNotFoundException:
            return  # a metadata-document client (its policy's app client decides its pages), or one just deleted
        writable = client.settings.get("WriteAttributes")
        if not writable:
            return
        refused = sorted(name for name in mapped if name not in writable and name not in _VERIFICATION_FLAGS)
        if refused:
            log.warning("federation.refused", pool=pool.id, provider=record.name, reason="write_attributes")
            raise UpstreamIdentityError(
                "write_attributes", f"A client attempted to write unauthorized attribute {refused[0]}"
            )

    async def _external_user(
        self, pool: PoolView, record: IdentityProviderRecord, identity: Identity, mapped: dict[str, str]
    ) -> UserRecord:
        username = external_username(pool, record.name, identity.subject)
        key = pool.username_key(username)
        for _ in range(3):
            existing = await self._store.get_user(pool.id, key)
            if existing is not None:
                if not _holds_identity(pool, existing, record.name, identity.subject):
                    # The name is another's: a user an administrator made with it, or the profile of an
                    # identity of another provider whose name folds to the same text (``Corp`` and ``CORP`` in
                    # a case-insensitive pool; ``Acme`` with subject ``x_1`` beside ``Acme_x`` with ``1``).
                    # Only the identity a profile was made for, or linked to it, ever signs in as it.
                    log.warning("federation.name_taken", pool=pool.id, provider=record.name, username=existing.username)
                    raise UpstreamIdentityError("name_taken")
                # Unsigned upstream claims (Apple's first-login name) only ever fill in a new user.
                unsigned = {a for a, claim in record.attribute_mapping.items() if claim in identity.unsigned_claims}
                signed = {name: value for name, value in mapped.items() if name not in unsigned}
                return await self._update(pool, existing, signed, record, identity, signing_in=True)
            now = time.time()
            user = UserRecord(
                pool_id=pool.id,
                username=username,
                username_key=key,
                sub=new_sub(),
                status=EXTERNAL_PROVIDER,
                enabled=True,
                attributes={**mapped},
                password_hash=None,
                created_at=now,
                updated_at=now,
            )
            user.attributes["identities"] = _with_identity(user, record, identity.subject, identity.issuer)
            try:
                await self._store.create_user(user)
            except AlreadyExists:
                continue  # another sign-in of the same identity won the race; update what it made
            # Users an identity is linked to are not added (only the profiles a provider's sign-in creates).
            await rule_groups.join_provider_group(self._store, pool.id, record.name, user)
            return user
        raise UpstreamIdentityError("user_race")

    async def _update(
        self,
        pool: PoolView,
        user: UserRecord,
        mapped: Mapping[str, str],
        record: IdentityProviderRecord,
        identity: Identity,
        *,
        signing_in: bool = False,
    ) -> UserRecord:
        """Write ``mapped`` and the identity onto ``user``. When ``signing_in``, a disabled user is refused
        before anything is written (a refused sign-in changes nothing), and so is a mapped value that would
        change an attribute the schema makes immutable: "If an attribute is immutable, Amazon Cognito throws an
        error when it attempts to update the attribute" (SchemaAttributeType.Mutable)."""
        immutable = {name for name, entry in schema_index(pool.schema).items() if not entry.get("Mutable", True)}
        for _ in range(5):
            if signing_in and not user.enabled:
                raise NotAuthorizedException("User is disabled.")
            frozen = sorted(
                name
                for name, value in mapped.items()
                if name in immutable and name in user.attributes and user.attributes[name] != value
            )
            if frozen:
                log.warning("federation.refused", pool=pool.id, provider=record.name, reason="immutable_attribute")
                raise InvalidParameterException(f"Cannot modify the non-mutable attribute {frozen[0]}")
            attributes = {**user.attributes, **mapped}
            for address, flag in (("email", "email_verified"), ("phone_number", "phone_number_verified")):
                # A verification belongs to the address it verified: a new upstream address is unverified
                # unless the mapping says otherwise ("by default, mapped email addresses are unverified").
                changed = address in mapped and user.attributes.get(address) != mapped[address]
                if changed and flag not in mapped and attributes.get(flag) == "true":
                    attributes[flag] = "false"
            attributes["identities"] = _with_identity(user, record, identity.subject, identity.issuer)
            if attributes == user.attributes:
                return user
            user.attributes = attributes
            user.updated_at = time.time()
            try:
                return await self._store.update_user(user)
            except VersionConflict:
                fresh = await self._store.get_user(pool.id, user.username_key)
                if fresh is None:
                    break
                user = fresh
            except (NotFound, AlreadyExists):
                break
        raise UpstreamIdentityError("user_update_failed")

    async def _apply_group_rules(
        self, pool: PoolView, record: IdentityProviderRecord, identity: Identity, user: UserRecord
    ) -> UserRecord:
        rules = record.settings.get("group_rules") or []
        claims = dict(identity.claims)
        if identity.groups and "groups" not in claims:
            claims["groups"] = list(identity.groups)
        return await rule_groups.apply_rules(self._store, pool.id, record.name, rules, claims, user)

    # --- AdminLinkProviderForUser / AdminDisableProviderForUser ------------------------------------------

    async def _source_provider(self, pool_id: str, name: str | None, attribute: str | None) -> IdentityProviderRecord:
        if not name or name == COGNITO_PROVIDER:
            raise InvalidParameterException("SourceUser must be a user of an external identity provider.")
        record = await self._store.get_identity_provider(pool_id, name)
        if record is None:
            raise InvalidParameterException(f"Identity provider {name} does not exist in the user pool.")
        if not attribute:
            raise InvalidParameterException("ProviderAttributeName is required.")
        if record.provider_type in SOCIAL_TYPES and attribute != SUBJECT_ATTRIBUTE:
            raise InvalidParameterException(
                f"ProviderAttributeName must be {SUBJECT_ATTRIBUTE} for {record.provider_type}."
            )
        return record

    async def link(self, pool_id: str, destination: Mapping[str, str], source: Mapping[str, str]) -> None:
        pool = await self._pools.get_pool(pool_id)
        if destination.get("ProviderName") != COGNITO_PROVIDER or not destination.get("ProviderAttributeValue"):
            raise InvalidParameterException("DestinationUser must name a user of the pool (ProviderName Cognito).")
        record = await self._source_provider(pool_id, source.get("ProviderName"), source.get("ProviderAttributeName"))
        value = source.get("ProviderAttributeValue")
        if not value:
            raise InvalidParameterException("SourceUser ProviderAttributeValue is required.")
        target = await self._store.get_user(pool.id, pool.username_key(destination["ProviderAttributeValue"]))
        if target is None:
            # An email alias as the index keeps it (in lower case), as every other call that takes one resolves it.
            target = await self._store.get_user_by_alias(
                pool.id, "email", alias_value("email", destination["ProviderAttributeValue"])
            )
        if target is None:
            raise UserNotFoundException("User does not exist.")
        attribute = str(source["ProviderAttributeName"])
        if attribute == SUBJECT_ATTRIBUTE:
            external_key = pool.username_key(external_username(pool, record.name, value))
            existing = await self._store.get_user(pool.id, external_key)
            if existing is not None and existing.username_key != target.username_key:
                raise InvalidParameterException(
                    "Merging is not currently supported, provide a SourceUser that has not been linked yet."
                )
        if len(await self._store.list_provider_links(pool.id, target.username_key)) >= MAX_LINKS_PER_USER:
            raise LimitExceededException("A user can be linked to at most 5 federated identities.")
        try:
            await self._store.put_provider_link(
                ProviderLinkRecord(pool.id, record.name, attribute, value, target.username_key, time.time())
            )
        except AlreadyExists as exc:
            raise InvalidParameterException("SourceUser is already linked to a user.") from exc
        except NotFound as exc:
            raise UserNotFoundException("User does not exist.") from exc
        if attribute == SUBJECT_ATTRIBUTE:
            # The IdP's issuer is written at the identity's first sign-in (SAML); OIDC and social entries have none.
            await self._update(pool, target, {}, record, Identity(record.name, record.provider_type, None, value))
        log.info("federation.linked", pool=pool.id, provider=record.name, username=target.username)

    async def disable(self, pool_id: str, user: Mapping[str, str]) -> None:
        pool = await self._pools.get_pool(pool_id)
        name, attribute, value = (
            user.get("ProviderName"),
            user.get("ProviderAttributeName"),
            user.get("ProviderAttributeValue"),
        )
        if name == COGNITO_PROVIDER:
            await self._disable_password_sign_in(pool, attribute, value)
            return
        if name is None or await self._store.get_identity_provider(pool.id, name) is None:
            raise ResourceNotFoundException(f"Identity provider {name} does not exist in the user pool.")
        if not attribute or not value:
            raise InvalidParameterException("ProviderAttributeName and ProviderAttributeValue are required.")
        link = await self._store.delete_provider_link(pool.id, name, attribute, value)
        if link is not None:
            target = await self._store.get_user(pool.id, link.username_key)
            if target is not None:
                await self._drop_identity(pool, target, name, value)
            log.info("federation.unlinked", pool=pool.id, provider=name)
            return
        if attribute != SUBJECT_ATTRIBUTE:
            raise UserNotFoundException("User does not exist.")
        external = await self._store.get_user(pool.id, pool.username_key(external_username(pool, name, value)))
        if external is None:
            raise UserNotFoundException("User does not exist.")
        # The external profile stays (its sub and groups remain auditable) but can no longer sign in.
        for _ in range(5):
            external.enabled = False
            external.updated_at = time.time()
            try:
                await self._store.update_user(external)
                break
            except VersionConflict:
                fresh = await self._store.get_user(pool.id, external.username_key)
                if fresh is None:
                    break
                external = fresh
        await self._store.revoke_user_token_families(pool.id, external.username_key)
        log.info("federation.disabled", pool=pool.id, provider=name, username=external.username)

    async def _disable_password_sign_in(self, pool: PoolView, attribute: str | None, value: str | None) -> None:
        """AdminDisableProviderForUser with ProviderName Cognito: "If the user that you want to deactivate is an
        Amazon Cognito user pools native username + password user, they can't use their password to sign in"
        (ProviderAttributeName Cognito_Subject, ProviderAttributeValue the user's username). The password (and its
        SRP verifier) is dropped, so every password flow refuses it; linked identities still sign in. A reset code
        already sent is void, and self-service ForgotPassword stays refused; an administrator's
        AdminSetUserPassword gives the user a password again."""
        if attribute != SUBJECT_ATTRIBUTE:
            raise InvalidParameterException(f"ProviderAttributeName must be {SUBJECT_ATTRIBUTE} for Cognito.")
        if not value:
            raise InvalidParameterException("ProviderAttributeValue must be the user's username.")
        user = await self._store.get_user(pool.id, pool.username_key(value))
        if user is None:
            raise UserNotFoundException("User does not exist.")
        for _ in range(5):
            user.password_hash = None
            user.secrets = {k: v for k, v in user.secrets.items() if k != "srp"}
            user.settings = {**{k: v for k, v in user.settings.items() if k != "lockout"}, PASSWORD_DISABLED: True}
            user.updated_at = time.time()
            try:
                await self._store.update_user(user)
                break
            except VersionConflict:
                fresh = await self._store.get_user(pool.id, user.username_key)
                if fresh is None:
                    raise UserNotFoundException("User does not exist.") from None
                user = fresh
        else:
            raise ConcurrentModificationException()
        await self._store.delete_code(pool.id, user.username_key, "forgot_password")
        log.info("federation.password_sign_in_disabled", pool=pool.id, username=user.username)

    async def _drop_identity(self, pool: PoolView, user: UserRecord, provider: str, subject: str) -> None:
        for _ in range(5):
            entries = [
                e for e in identities_of(user) if not (e.get("providerName") == provider and e.get("userId") == subject)
            ]
            attributes = dict(user.attributes)
            if entries:
                attributes["identities"] = json.dumps(entries, separators=(",", ":"))
            else:
                attributes.pop("identities", None)
            if attributes == user.attributes:
                return
            user.attributes = attributes
            user.updated_at = time.time()
            try:
                await self._store.update_user(user)
                return
            except VersionConflict:
                fresh = await self._store.get_user(pool.id, user.username_key)
                if fresh is None:
                    return
                user = fresh


async def federated_provider(
    store: Store,
    pool_id: str,
    client_settings: Mapping[str, Any],
    identity_provider: str | None,
    idp_identifier: str | None,
) -> str:
    """The provider an authorization request names, by ``identity_provider`` or ``idp_identifier``
    (Cognito's authorize endpoint); it must exist in the pool and be one of the client's
    SupportedIdentityProviders."""
    if identity_provider:
        record = await store.get_identity_provider(pool_id, identity_provider)
    else:
        record = await store.get_identity_provider_by_identifier(pool_id, idp_identifier or "")
    if record is None:
        raise InvalidParameterException("The identity provider does not exist in this user pool.")
    supported = client_settings.get("SupportedIdentityProviders") or []
    if record.name not in supported:
        raise InvalidParameterException(f"The client does not support the identity provider {record.name}.")
    return record.name


async def provider_for_email_domain(store: Store, pool_id: str, client_settings: Mapping[str, Any], domain: str) -> str:
    """The provider the hosted sign-in page's corporate email names by its domain (Cognito's managed login
    matches it against IdpIdentifiers). Domain names are case-insensitive (RFC 4343 §3), so an identifier
    registered as ``Corp.Example`` is the domain of ``ann@corp.example``: the lower-case form is looked up
    first, then every identifier of the pool is compared without case. Refusals as :func:`federated_provider`."""
    folded = domain.lower()
    try:
        return await federated_provider(store, pool_id, client_settings, None, folded)
    except InvalidParameterException:
        pass
    after: str | None = None
    while True:
        page = await store.list_identity_providers(pool_id, after, 60)
        for record in page.items:
            if any(identifier.lower() == folded for identifier in record.idp_identifiers):
                return await federated_provider(store, pool_id, client_settings, record.name, None)
        if page.next_token is None:
            break
        after = page.next_token
    raise InvalidParameterException("The identity provider does not exist in this user pool.")
