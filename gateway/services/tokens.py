"""Tokens: RS256 JWTs shaped like Cognito's, opaque refresh tokens, per-pool signing keys.

Claims follow the Cognito developer guide ("Understanding the identity (ID) token", "... access token",
"... refresh token"); the JWS is RFC 7515 compact serialisation with RS256 (RFC 7518 §3.3), keys published
as a JWK Set (RFC 7517) at ``/{poolId}/.well-known/jwks.json``.

Keys are generated and exported with jwcrypto and kept sealed in the store. Signing and verifying on the
hot path use the parsed ``cryptography`` key objects directly: a compact RS256 JWS is two base64url
segments and one PKCS#1 v1.5 signature, and going through jwcrypto's general JWS machinery for each token
would cost more than the RSA operation itself.
"""

from __future__ import annotations

import asyncio
import binascii
import hashlib
import json
import math
import re
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol, cast

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from jwcrypto import jwk

from gateway.errors import NotAuthorizedException, ResourceNotFoundException
from gateway.ids import new_jti, new_opaque_token, sha256_hex
from gateway.secretbox import SecretBox
from gateway.services.change_stamp import KEYS, ChangeStamps
from gateway.storage.base import (
    NotFound,
    RefreshTokenRecord,
    SigningKeyRecord,
    Store,
    TokenFamilyRecord,
    UserRecord,
)

if TYPE_CHECKING:
    from gateway.services.triggers import TokenCustomization

ADMIN_SCOPE = "aws.cognito.signin.user.admin"
# How long a cached key set is trusted before the store is asked again (another process may have rotated);
# the default of Settings.key_cache_seconds, which env GATEHOUSE_KEY_CACHE_SECONDS overrides.
KEY_CACHE_SECONDS = 60.0
# Access and ID tokens live at most a day (Cognito's maximum), so a retired key is published that long.
MAX_TOKEN_SECONDS = 24 * 3600
# How long a JWK Set response may be cached (its Cache-Control max-age): the default of
# Settings.jwks_max_age_seconds, which env GATEHOUSE_JWKS_MAX_AGE_SECONDS overrides.
JWKS_MAX_AGE_SECONDS = 300
# Verified tokens remembered per process (a few MB at most: a token is ~1 KB).
VERIFIED_CACHE_SIZE = 4096
# The longest token the cache keeps (an ordinary token is ~1 KB; one of a user in a hundred groups ~20 KB).
VERIFIED_CACHE_TOKEN_CHARS = 8192
# The longest token text verified (64 KiB): anything longer is refused before it is parsed. A user in Cognito's
# most groups (100 per user, names of up to 128 characters), each with a role ARN of ordinary length, has ID and
# access tokens of some 20-40 KB, which must still be accepted wherever Gatehouse takes its own tokens back.
MAX_TOKEN_CHARS = 64 * 1024
# What a request line or one header may hold besides a token (its name, "Bearer ", a URL's other parameters).
HEADER_SLACK_BYTES = 8192
# The longest request line or header the server reads (gateway/cli.py gives it to aiohttp, whose default of 8190
# bytes is less than the tokens Gatehouse issues to a user in many groups).
MAX_HEADER_BYTES = MAX_TOKEN_CHARS + HEADER_SLACK_BYTES


# base64.urlsafe_b64encode's alphabet change, applied straight to binascii's output (two calls fewer per use:
# every token issued encodes three segments).
_URLSAFE = bytes.maketrans(b"+/", b"-_")


def b64url(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=").decode("ascii")


# By the length of the last group (mod 4): the characters whose unused low bits are zero (4 of them for two
# characters, 2 for three); a single character cannot end base64.
_B64URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_CANONICAL_LAST = {1: "", 2: _B64URL_ALPHABET[::16], 3: _B64URL_ALPHABET[::4]}


def b64url_decode(text: str) -> bytes:
    """base64url without padding, as JWS writes it (RFC 7515 §2); anything else raises ``ValueError`` (or
    ``binascii.Error``, a subclass). Strict, so that one signature has one spelling: no padding, no ``+``/``/``,
    no characters skipped, nothing after the data."""
    if "=" in text or "+" in text or "/" in text:
        raise binascii.Error("not unpadded base64url")
    tail = len(text) % 4
    # The last character of a partial group must leave its unused low bits zero (RFC 4648 §3.5).
    if tail and text[-1] not in _CANONICAL_LAST[tail]:
        raise binascii.Error("not canonical base64url")
    return binascii.a2b_base64(text.replace("-", "+").replace("_", "/") + "=" * (-tail % 4), strict_mode=True)


def foreign_b64url_decode(text: str) -> bytes:
    """Another issuer's base64url: padding and the base64 alphabet's ``+`` and ``/`` are taken (some issuers
    write them), any other character is an error (``binascii.Error``) and never skipped, so the JSON
    serialization or junk inside a segment is no token. Gatehouse's own tokens are read by :func:`b64url_decode`."""
    bare = text.rstrip("=")
    return binascii.a2b_base64(bare.replace("-", "+").replace("_", "/") + "=" * (-len(bare) % 4), strict_mode=True)


def _json(data: Mapping[str, Any]) -> bytes:
    return orjson.dumps(data)


@dataclass
class _LoadedKey:
    kid: str
    private: rsa.RSAPrivateKey
    public: rsa.RSAPublicKey
    public_jwk: dict[str, Any]
    header_segment: str
    active: bool
    retired_at: float | None
    token_use: str = "id"
    # When it starts signing (the record's created_at; later than its publication after a scheduled rotation).
    signs_from: float = 0.0


@dataclass
class _PoolKeys:
    loaded_at: float
    # The KEYS change stamp read before the store was: the set is stale once it moved (see SigningKeys).
    stamp: int = 0
    keys: dict[str, _LoadedKey] = field(default_factory=dict)
    # The key that signs each token use ("id", "access") now: see _choose.
    active: dict[str, _LoadedKey] = field(default_factory=dict)
    # The wall-clock time at which that choice changes (a published key starts signing, or one stops).
    switch_at: float = math.inf


def _choose(pool_keys: _PoolKeys, now: float) -> None:
    """Pick the signing key of each token use at ``now``: of the keys that have started signing
    (``signs_from <= now``) and are not retired (``retired_at`` unset or later than ``now``), the one that
    started last. Failing that (never the case for keys made by :meth:`SigningKeys.rotate`), the latest key that
    has started, else the first one to start. Also notes when the choice next changes, so that the hot path
    re-chooses from the keys it holds, without reading the store."""
    chosen: dict[str, _LoadedKey] = {}
    fallback: dict[str, _LoadedKey] = {}
    switch_at = math.inf
    for key in pool_keys.keys.values():
        use = key.token_use
        if key.signs_from > now:
            switch_at = min(switch_at, key.signs_from)
            other = fallback.get(use)
            if other is None or (other.signs_from > now and key.signs_from < other.signs_from):
                fallback[use] = key
            continue
        other = fallback.get(use)
        if other is None or other.signs_from > now or key.signs_from > other.signs_from:
            fallback[use] = key
        if key.retired_at is not None:
            if key.retired_at <= now:
                continue
            switch_at = min(switch_at, key.retired_at)
        best = chosen.get(use)
        if best is None or key.signs_from > best.signs_from:
            chosen[use] = key
    pool_keys.active = {**fallback, **chosen}
    pool_keys.switch_at = switch_at


@dataclass(frozen=True)
class IssuedTokens:
    id_token: str
    access_token: str
    refresh_token: str | None
    expires_in: int
    origin_jti: str


@dataclass(slots=True)
class VerifiedAccessToken:
    claims: dict[str, Any]
    pool_id: str
    client_id: str
    username: str
    sub: str
    origin_jti: str
    scopes: tuple[str, ...]
    username_key: str
    # The user as read with the token's family (None if deleted since).
    user: UserRecord | None = None
    # The app client of the token's sign-in (its family's): another than client_id for a token derived by token
    # exchange from another client's sign-in (RFC 8693 impersonation).
    family_client_id: str = ""


TOKEN_USES = ("id", "access")


class SessionFacts(Protocol):
    """Where a sign-in came from, as its user session reports it (gateway/services/sessions.RequestFacts)."""

    @property
    def device_type(self) -> str | None: ...
    @property
    def ip(self) -> str | None: ...


class ClientDirectory(Protocol):
    """Where app clients are looked up (gateway/services/pools.PoolService, with its cache): ``get_client``
    answers the pool's client or raises ResourceNotFoundException."""

    async def get_client(self, pool_id: str, client_id: str) -> object: ...


class SigningKeyStore(Protocol):
    """Where a key set lives: a user pool's in the Store itself; other issuers' (the identity service's)
    through an adapter over the Store's issuer keys."""

    async def add_signing_key(self, key: SigningKeyRecord) -> None: ...
    async def list_signing_keys(self, pool_id: str) -> list[SigningKeyRecord]: ...
    async def delete_signing_key(self, pool_id: str, kid: str) -> None: ...


class SigningKeys:
    """A pool's signing keys: one active key for ID tokens and one for access tokens (as Cognito signs them
    with different keys), created with the pool, rotated on request, cached per process.

    Rotation publishes before it signs (OpenID Connect Core §10.1.1; RFC 7517 §5 lets a set hold keys not yet
    in use): a key made by ``rotate(..., starts_at=...)`` is in the JWK Set at once and signs from
    ``starts_at``. :attr:`publish_seconds` is the safe delay: the JWKS max-age plus the key cache time, since a
    process may serve a JWK Set without the new key for up to ``cache_seconds`` after the rotation and a
    relying party may keep that response for ``jwks_max_age`` seconds more. Every process switches at the same
    wall-clock time, as the time is in the store.

    A key set is also read again as soon as the store's KEYS change stamp moves (gateway/services/
    change_stamp.py): ``rotate`` and ``forget`` (a deleted pool) bump it, in the running servers and in the
    ``gatehouse keys rotate`` command alike, so a key retired because it leaked stops vouching for tokens, and
    signing, in every process sharing the store at once rather than within the key cache time."""

    def __init__(
        self,
        store: SigningKeyStore,
        box: SecretBox,
        *,
        cache_seconds: float = KEY_CACHE_SECONDS,
        jwks_max_age: float = JWKS_MAX_AGE_SECONDS,
    ) -> None:
        self._store = store
        self._box = box
        self._cache_seconds = cache_seconds
        # Cache-Control's max-age is whole seconds (RFC 9111 §1.2.2): rounded up, so the delay covers it.
        self.jwks_max_age = math.ceil(jwks_max_age)
        self._cache: dict[str, _PoolKeys] = {}
        # Each pool's key-set read in flight: what concurrent callers wait for instead of a read (and, on a cold
        # cache, a tens-of-milliseconds parse of every key) of their own.
        self._reading: dict[str, asyncio.Task[_PoolKeys]] = {}
        self._creating: dict[str, asyncio.Lock] = {}
        # Process-local unless shared (the container and the keys command give the store's).
        self.stamps = ChangeStamps()

    def _load(self, record: SigningKeyRecord) -> _LoadedKey:
        # Parsing a JWK into a key object costs tens of milliseconds: done once per key per process, in a
        # worker thread.
        key = jwk.JWK.from_json(self._box.open(record.private_jwk, aad=record.kid.encode()).decode())
        private = cast(rsa.RSAPrivateKey, key.get_op_key("sign"))
        public_jwk = json.loads(key.export_public())
        public_jwk.update({"kid": record.kid, "alg": "RS256", "use": "sig"})
        header = b64url(_json({"kid": record.kid, "alg": "RS256"}))
        return _LoadedKey(
            kid=record.kid,
            private=private,
            public=private.public_key(),
            public_jwk=public_jwk,
            header_segment=header,
            active=record.active,
            retired_at=record.retired_at,
            token_use=record.token_use,
            signs_from=record.created_at,
        )

    @property
    def cache_seconds(self) -> float:
        return self._cache_seconds

    @property
    def publish_seconds(self) -> float:
        """How long after a rotation its keys may start signing: every cached copy of a JWK Set without them
        has expired by then (the JWKS max-age plus this process's key cache time)."""
        return self.jwks_max_age + self._cache_seconds

    def _expired(self, record: SigningKeyRecord, now: float) -> bool:
        """A key retired long enough ago that no token it signed can still be unexpired: neither published nor
        trusted any more, whether or not a later rotation has deleted it yet. A process that had not yet
        re-read its keys may have signed with it for up to its key cache time after it was retired."""
        return record.retired_at is not None and record.retired_at + MAX_TOKEN_SECONDS + self._cache_seconds < now

    def _fresh(self, cached: _PoolKeys) -> bool:
        """Read within the key cache time, and no key set changed since (the stamp: a memory read)."""
        return time.monotonic() - cached.loaded_at < self._cache_seconds and cached.stamp == self.stamps.read(KEYS)

    async def _refresh(self, pool_id: str, *, join: bool = True) -> _PoolKeys:
        """The pool's key set read again. ``join``: a read already in flight answers (the requests that find the
        set due at once, a whole burst of them after a start, make one read between them); False after a
        change of this process (a rotation), which a read begun before it may not hold."""
        loop = asyncio.get_running_loop()
        reading = self._reading.get(pool_id)
        if not (join and reading is not None and not reading.done() and reading.get_loop() is loop):
            reading = loop.create_task(self._read_keys(pool_id))
            self._reading[pool_id] = reading
            reading.add_done_callback(partial(self._read_done, pool_id))
        # Shielded: a caller cancelled while it waits does not cancel the read the others wait for.
        return await asyncio.shield(reading)

    def _read_done(self, pool_id: str, done: asyncio.Task[_PoolKeys]) -> None:
        if self._reading.get(pool_id) is done:
            del self._reading[pool_id]
        if not done.cancelled():
            done.exception()  # retrieved: a failed read is its waiters' error, never "exception was never retrieved"

    async def _read_keys(self, pool_id: str) -> _PoolKeys:
        # The stamp before the read: a change committed meanwhile leaves this set stale, never current.
        stamp = self.stamps.read(KEYS)
        begun = time.monotonic()
        records = await self._store.list_signing_keys(pool_id)
        old = self._cache.get(pool_id)
        pool_keys = _PoolKeys(loaded_at=begun, stamp=stamp)
        now = time.time()
        for record in records:
            if self._expired(record, now):
                continue
            known = old.keys.get(record.kid) if old else None
            loaded = known if known is not None else await asyncio.to_thread(self._load, record)
            loaded.active, loaded.retired_at = record.active, record.retired_at
            pool_keys.keys[record.kid] = loaded
        _choose(pool_keys, now)
        held = self._cache.get(pool_id)
        if held is None or held.loaded_at <= begun:  # never a set read before the one held
            if pool_keys.keys:
                self._cache[pool_id] = pool_keys
            else:
                # No keys: a pool that has none yet, or none at all (deleted, or never there: a forged token may
                # name any pool, and an entry for each would grow without bound). Nothing is kept.
                self._cache.pop(pool_id, None)
        return pool_keys

    async def _pool_keys(self, pool_id: str, *, force: bool = False) -> _PoolKeys:
        cached = self._cache.get(pool_id)
        if not force and cached is not None and self._fresh(cached):
            now = time.time()
            if now >= cached.switch_at:
                # A published key's time to sign has come (or a retired key's time to stop): chosen again
                # from the keys already held.
                _choose(cached, now)
            return cached
        return await self._refresh(pool_id, join=not force)

    def held_key(self, pool_id: str, kid: str) -> _LoadedKey | None:
        """The key ``kid`` from this process's key set when that set is fresh: a look-up without I/O or a
        coroutine, for the verification every token-bearing call makes. None: ask :meth:`key_for`."""
        cached = self._cache.get(pool_id)
        if cached is not None and self._fresh(cached):
            return cached.keys.get(kid)
        return None

    def trusts(self, pool_id: str, kid: str) -> bool:
        """Whether this process's key set, read within the key cache time, holds ``kid``: a check without
        I/O for tokens verified earlier. False also when the set is due to be read again."""
        return self.held_key(pool_id, kid) is not None

    async def active_key(self, pool_id: str, token_use: str = "id") -> _LoadedKey:
        keys = await self._pool_keys(pool_id)
        if token_use not in keys.active:
            # Concurrent first uses in this process make one key between them, not one each.
            async with self._creating.setdefault(pool_id, asyncio.Lock()):
                keys = await self._pool_keys(pool_id, force=True)
                if token_use not in keys.active:
                    await self.rotate(pool_id, uses=(token_use,))
                    keys = await self._pool_keys(pool_id, force=True)
        return keys.active[token_use]

    async def active_keys(self, pool_id: str) -> tuple[_LoadedKey, _LoadedKey]:
        """The active ID and access token keys: one cache look-up for the pair every sign-in signs with."""
        cached = self._cache.get(pool_id)
        if cached is not None and self._fresh(cached) and time.time() < cached.switch_at:
            id_key = cached.active.get("id")
            access_key = cached.active.get("access")
            if id_key is not None and access_key is not None:
                return id_key, access_key
        return await self.active_key(pool_id, "id"), await self.active_key(pool_id, "access")

    async def key_for(self, pool_id: str, kid: str) -> _LoadedKey | None:
        keys = await self._pool_keys(pool_id)
        if kid not in keys.keys:
            keys = await self._pool_keys(pool_id, force=True)
        return keys.keys.get(kid)

    async def rotate(
        self,
        pool_id: str,
        uses: tuple[str, ...] = TOKEN_USES,
        *,
        starts_at: float | None = None,
        retire_old: bool = False,
    ) -> list[str]:
        """Make new keys, published at once, that sign from ``starts_at`` (default: now); until then the
        current keys sign. The old keys stay published until their tokens expire, unless ``retire_old``:
        then every other key of these uses is deleted, and its tokens are refused once each process has
        re-read its keys (within the key cache time) -- for a key that leaked."""
        now = time.time()
        starts = now if starts_at is None else max(starts_at, now)
        if retire_old and starts > now:
            raise ValueError("retire_old needs the new keys to sign now")
        kids = []
        for token_use in uses:
            # RSA key generation takes ~100 ms of CPU: off the event loop.
            key = await asyncio.to_thread(jwk.JWK.generate, kty="RSA", size=2048)
            kid = str(key.thumbprint())
            sealed = self._box.seal(key.export_private().encode(), aad=kid.encode())
            await self._store.add_signing_key(
                # created_at is when the key starts signing: the store retires the current key then.
                SigningKeyRecord(
                    pool_id=pool_id, kid=kid, private_jwk=sealed, created_at=starts, active=True, token_use=token_use
                )
            )
            kids.append(kid)
        # Drop keys retired long enough ago that no token signed with them can still be valid (and, for a
        # leaked key, every key but the new ones).
        for record in await self._store.list_signing_keys(pool_id):
            leaked = retire_old and record.token_use in uses and record.kid not in kids
            if leaked or self._expired(record, now):
                await self._store.delete_signing_key(pool_id, record.kid)
        # Every process sharing the store reads the set again on its next use (a leaked key: at once).
        self.stamps.bump(KEYS)
        await self._refresh(pool_id, join=False)
        return kids

    async def jwks(self, pool_id: str, uses: tuple[str, ...] = TOKEN_USES, *, fresh: bool = False) -> dict[str, Any]:
        """The public keys; ``fresh``: as the store has them now, not as this process last read them (another
        process may have made a key since)."""
        for token_use in uses:
            await self.active_key(pool_id, token_use)
        keys = await self._pool_keys(pool_id, force=fresh)
        return {"keys": [k.public_jwk for k in keys.keys.values()]}

    def forget(self, pool_id: str) -> None:
        """After the pool's keys went from the store (DeleteUserPool): no process trusts them any more."""
        self.stamps.bump(KEYS)
        self._cache.pop(pool_id, None)


# RS256's padding and digest (RFC 7518 §3.3): stateless descriptions, made once rather than per signature.
_PKCS1V15 = padding.PKCS1v15()
# A user pool id as the model's UserPoolIdType has it (``<region>_<id>``, at most 55 characters): what a token's
# issuer must end in before any key is looked up for it.
_POOL_ID = re.compile(r"(?=.{1,55}$)[\w-]+_[0-9a-zA-Z]+")
_SHA256 = hashes.SHA256()


def sign_jwt(key: _LoadedKey, claims: Mapping[str, Any]) -> str:
    signing_input = key.header_segment + "." + b64url(_json(claims))
    signature = key.private.sign(signing_input.encode("ascii"), _PKCS1V15, _SHA256)
    return signing_input + "." + b64url(signature)


def _unverified_parts(token: str, headers: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """Split a compact JWS; raise NotAuthorizedException for anything that is not one."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
        raise NotAuthorizedException("Invalid token")
    parts = token.split(".")
    if len(parts) != 3:
        raise NotAuthorizedException("Invalid token")
    try:
        header = headers.get(parts[0])
        if header is None:
            header = orjson.loads(b64url_decode(parts[0]))
            # A pool's tokens share a handful of headers (one per key): remember them, within bounds, since
            # anyone can send headers of their own.
            if isinstance(header, dict) and len(headers) < 256 and len(parts[0]) < 256:
                headers[parts[0]] = header
        claims = orjson.loads(b64url_decode(parts[1]))
        signature = b64url_decode(parts[2])
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise NotAuthorizedException("Invalid token") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise NotAuthorizedException("Invalid token")
    return header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), signature


class TokenService:
    """Mints and verifies a pool's tokens and keeps refresh tokens."""

    def __init__(self, store: Store, keys: SigningKeys, issuer_base: str) -> None:
        self._store = store
        self.keys = keys
        self._issuer_base = issuer_base.rstrip("/")
        # Parsed JOSE headers by their base64url text: a pool's tokens share one per key (never mutated).
        self._headers: dict[str, Any] = {}
        # Tokens whose signature checked out: text -> (claims, pool id, exp, kid). See verify_jwt.
        # Insertion order is age: popitem(last=False) evicts the oldest in O(1) (a plain dict's first key is
        # found by scanning past every slot emptied before it, microseconds per miss once the cache churns).
        self._verified: OrderedDict[str, tuple[dict[str, Any], str, int, str]] = OrderedDict()
        # Checks that a derived token's app client still exists (see client_exists); None: the store itself.
        self.clients: ClientDirectory | None = None

    def issuer(self, pool_id: str) -> str:
        return f"{self._issuer_base}/{pool_id}"

    async def issue(
        self,
        *,
        pool_id: str,
        client_id: str,
        app_client_id: str,
        username: str,
        username_key: str,
        sub: str,
        id_claims: Mapping[str, Any],
        groups: Sequence[str],
        roles: Sequence[str],
        preferred_role: str | None,
        auth_time: int,
        access_seconds: int,
        id_seconds: int,
        refresh_seconds: int | None,
        origin_jti: str | None = None,
        scopes: Sequence[str] = (ADMIN_SCOPE,),
        extra_access_claims: Mapping[str, Any] | None = None,
        new_family_id: str | None = None,
        at_hash: bool = False,
        family_scopes: Sequence[str] | None = None,
        session_facts: SessionFacts | None = None,
        customization: TokenCustomization | None = None,
    ) -> IssuedTokens:
        """Sign an ID and an access token; when ``refresh_seconds`` is given and there is no
        ``origin_jti`` yet, start a token family with a new refresh token. ``app_client_id``: the app client
        the tokens are issued under (``client_id`` itself, or a client ID metadata document client's app
        client); a new family is stored only while it exists (Store.create_token_family), else
        ResourceNotFoundException: a sign-in that read the client before its deletion gets no tokens that the
        deletion did not revoke. ``new_family_id`` names the new
        family when the caller must know it beforehand (an authorization code records it, so that a replayed
        code can revoke what the first redemption got); ``at_hash`` adds the access token's hash to the ID
        token (OpenID Connect Core §3.1.3.6); ``family_scopes``: the OAuth scopes a new family keeps;
        ``session_facts``: the device and address a new family's user session reports
        (gateway/services/sessions.py), when the pool tracks sessions; ``customization``: what the pool's pre
        token generation trigger asked for (gateway/services/triggers.py)."""
        now = int(time.time())
        id_key, access_key = await self.keys.active_keys(pool_id)
        new_family = origin_jti is None
        origin = origin_jti or new_family_id or new_jti()
        event_id = new_jti()
        issuer = self.issuer(pool_id)
        group_claims: dict[str, Any] = {}
        if groups:
            group_claims["cognito:groups"] = list(groups)
        id_token_claims: dict[str, Any] = {"sub": sub, **group_claims}
        if roles:
            id_token_claims["cognito:roles"] = list(roles)
        if preferred_role:
            id_token_claims["cognito:preferred_role"] = preferred_role
        id_token_claims.update(id_claims)
        if isinstance(id_token_claims.get("identities"), str):
            id_token_claims["identities"] = identities_claim(id_token_claims["identities"])
        if "address" in id_token_claims:
            id_token_claims["address"] = address_claim(id_token_claims["address"])
        id_token_claims.update(
            {
                "iss": issuer,
                "cognito:username": username,
                "origin_jti": origin,
                "aud": client_id,
                "event_id": event_id,
                "token_use": "id",
                "auth_time": auth_time,
                "exp": now + id_seconds,
                "iat": now,
                "jti": new_jti(),
            }
        )
        access_claims: dict[str, Any] = {
            "sub": sub,
            **group_claims,
            "iss": issuer,
            "client_id": client_id,
            "origin_jti": origin,
            "event_id": event_id,
            "token_use": "access",
            "scope": " ".join(scopes),
            "auth_time": auth_time,
            "exp": now + access_seconds,
            "iat": now,
            "jti": new_jti(),
            "username": username,
        }
        if extra_access_claims:
            access_claims.update(extra_access_claims)
        if customization is not None:
            customization.apply_id(id_token_claims)
            customization.apply_access(access_claims, client_id)
        refresh_token: str | None = None
        if new_family:
            family_expiry = now + (refresh_seconds if refresh_seconds is not None else access_seconds)
            family = TokenFamilyRecord(
                origin_jti=origin,
                pool_id=pool_id,
                client_id=client_id,
                username_key=username_key,
                auth_time=float(auth_time),
                created_at=float(now),
                expires_at=float(max(family_expiry, now + access_seconds, now + id_seconds)),
                scopes=None if family_scopes is None else list(family_scopes),
                device_type=session_facts.device_type if session_facts else None,
                last_ip=session_facts.ip if session_facts else None,
            )
            refresh_record = None
            if refresh_seconds is not None:
                refresh_token = new_opaque_token()
                refresh_record = RefreshTokenRecord(
                    token_hash=sha256_hex(refresh_token),
                    origin_jti=origin,
                    pool_id=pool_id,
                    client_id=client_id,
                    username_key=username_key,
                    created_at=float(now),
                    expires_at=float(now + refresh_seconds),
                )
            try:
                await self._store.create_token_family(family, refresh_record, app_client_id=app_client_id)
            except NotFound as exc:  # the app client, or its whole pool, was deleted while this sign-in ran
                gone = f"User pool client {app_client_id}" if str(exc) == "client" else f"User pool {pool_id}"
                raise ResourceNotFoundException(f"{gone} does not exist.") from exc
        # Signed on the event loop: an RSA-2048 signature takes ~0.2 ms, less than handing it to a thread
        # costs once the GIL is contended (measured: worker-thread signing made every SQLite read and
        # os.urandom call on the loop wait for the GIL, and raised CPU per refresh by half).
        access_token = sign_jwt(access_key, access_claims)
        if at_hash:
            # The left half of the SHA-256 of the token's ASCII, base64url (RS256 uses SHA-256).
            id_token_claims["at_hash"] = b64url(hashlib.sha256(access_token.encode("ascii")).digest()[:16])
        return IssuedTokens(
            id_token=sign_jwt(id_key, id_token_claims),
            access_token=access_token,
            refresh_token=refresh_token,
            expires_in=access_seconds,
            origin_jti=origin,
        )

    async def verify_jwt(self, token: str, *, pool_id: str | None = None, expired_ok: bool = False) -> dict[str, Any]:
        """Check signature, issuer and expiry of one of our JWTs and return its claims. ``expired_ok``: a token
        past its ``exp`` is taken too (a logout's ``id_token_hint``, which only names a client), and then never
        remembered as verified.

        A client presents the same access token for up to its lifetime, so a token whose signature has been
        verified is remembered by its exact text (bounded, oldest first out) and only its expiry, pool and key
        are checked again: a key dropped since (retired with ``keys rotate --now --retire-old``, or past its
        publication window) no longer vouches for the tokens it signed, in any process once it has re-read its
        keys (at once after a rotation or a deleted pool, through the KEYS stamp; else within the key cache
        time; a dictionary look-up while its key set is fresh). Revocation is never
        cached: callers check the store on every call.
        """
        known = self._verified.get(token)
        if known is not None:
            claims, token_pool, exp, kid = known
            if exp <= time.time() and not expired_ok:
                self._verified.pop(token, None)
                raise NotAuthorizedException("Access Token has expired")
            if pool_id is not None and token_pool != pool_id:
                raise NotAuthorizedException("Invalid token")
            if not self.keys.trusts(token_pool, kid) and await self.keys.key_for(token_pool, kid) is None:
                self._verified.pop(token, None)
                raise NotAuthorizedException("Invalid token")
            return dict(claims)
        header, claims, signing_input, signature = _unverified_parts(token, self._headers)
        issuer = claims.get("iss")
        if header.get("alg") != "RS256" or not isinstance(issuer, str) or not isinstance(header.get("kid"), str):
            raise NotAuthorizedException("Invalid token")
        prefix = self._issuer_base + "/"
        if not issuer.startswith(prefix):
            raise NotAuthorizedException("Invalid token")
        token_pool = issuer[len(prefix) :]
        if (pool_id is not None and token_pool != pool_id) or not _POOL_ID.fullmatch(token_pool):
            raise NotAuthorizedException("Invalid token")
        key = self.keys.held_key(token_pool, header["kid"]) or await self.keys.key_for(token_pool, header["kid"])
        if key is None:
            raise NotAuthorizedException("Invalid token")
        try:
            key.public.verify(signature, signing_input, _PKCS1V15, _SHA256)
        except InvalidSignature as exc:
            raise NotAuthorizedException("Invalid token") from exc
        expiry = claims.get("exp")
        if not isinstance(expiry, int):
            raise NotAuthorizedException("Access Token has expired")
        if expiry <= time.time():
            if not expired_ok:
                raise NotAuthorizedException("Access Token has expired")
            return dict(claims)  # taken as expired_ok asked, and not remembered as a token that is still good
        if len(token) <= VERIFIED_CACHE_TOKEN_CHARS:
            # Remembered by its text: a token of a user in very many groups is checked each time instead, so the
            # cache stays within VERIFIED_CACHE_SIZE tokens of ordinary size.
            if len(self._verified) >= VERIFIED_CACHE_SIZE:
                self._verified.popitem(last=False)
            self._verified[token] = (claims, token_pool, expiry, header["kid"])
        return dict(claims)

    async def client_exists(self, pool_id: str, client_id: str) -> bool:
        """Whether ``client_id`` is still an app client of the pool: DeleteUserPoolClient ends the tokens
        issued to it."""
        if self.clients is not None:
            try:
                await self.clients.get_client(pool_id, client_id)
            except ResourceNotFoundException:
                return False
            return True
        record = await self._store.get_client(client_id)
        return record is not None and record.pool_id == pool_id

    async def verify_access_token(self, token: str, *, required_scope: str | None = ADMIN_SCOPE) -> VerifiedAccessToken:
        """What every token-authorised operation calls: signature, expiry, ``token_use``, scope, and that
        neither the token's family nor the user's sessions were revoked."""
        claims = await self.verify_jwt(token)
        if claims.get("token_use") != "access":
            raise NotAuthorizedException("Invalid Access Token")
        scopes = tuple(str(claims.get("scope", "")).split())
        if required_scope is not None and required_scope not in scopes:
            raise NotAuthorizedException("Access Token does not have required scopes")
        origin = claims.get("origin_jti")
        if not isinstance(origin, str):
            raise NotAuthorizedException("Invalid Access Token")
        found = await self._store.get_token_family_with_user(origin)
        issuer = str(claims["iss"])
        pool_id = issuer.rsplit("/", 1)[1]
        if found is None or found[0].revoked or found[0].pool_id != pool_id:
            raise NotAuthorizedException("Access Token has been revoked")
        family, user = found
        client_id = str(claims.get("client_id", ""))
        if client_id != family.client_id and not await self.client_exists(pool_id, client_id):
            # A token derived by token exchange names the exchanging client, not its family's: deleting that
            # client revokes no family, so its tokens end here instead (only such tokens pay for the look-up).
            raise NotAuthorizedException("Access Token has been revoked")
        return VerifiedAccessToken(
            claims=claims,
            pool_id=pool_id,
            client_id=client_id,
            username=str(claims.get("username", "")),
            sub=str(claims.get("sub", "")),
            origin_jti=origin,
            scopes=scopes,
            username_key=family.username_key,
            user=user,
            family_client_id=family.client_id,
        )


def address_claim(value: Any) -> Any:
    """The ``address`` attribute as a claim, in the ID token and userInfo alike: OpenID Connect Core §5.1.1
    makes ``address`` a JSON object; Cognito keeps the attribute as one string and answers it as the object's
    ``formatted`` member."""
    return {"formatted": value} if isinstance(value, str) else value


def identities_claim(attribute: str) -> list[dict[str, Any]]:
    """The ``identities`` attribute (a JSON list) as Cognito puts it in ID tokens: each linked identity with
    ``primary`` and ``dateCreated`` as strings ("Understanding the identity (ID) token")."""
    try:
        entries = json.loads(attribute)
    except ValueError:
        return []
    claim = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        shaped = dict(entry)
        if isinstance(shaped.get("primary"), bool):
            shaped["primary"] = "true" if shaped["primary"] else "false"
        if isinstance(shaped.get("dateCreated"), int):
            shaped["dateCreated"] = str(shaped["dateCreated"])
        claim.append(shaped)
    return claim
