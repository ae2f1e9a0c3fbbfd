"""User sessions: Cognito's session tracking, listing and revocation.

Follows the API reference of GetUserPoolSessionConfiguration / SetUserPoolSessionConfiguration,
GetUserPoolClientSessionConfiguration / SetUserPoolClientSessionConfiguration, ListUserSessions,
RevokeUserSession, AdminListUserSessions and AdminRevokeUserSession, and the developer guide's "Managing user
sessions". A user pool has two kinds of session:

* a **token session** (``tkn...``) is a token family that has a refresh token: one sign-in's tokens for one
  app client, refreshed and rotated under one ``origin_jti`` (gateway/services/tokens.py). Revoking it revokes
  the family, so its refresh token and every access token it gave are refused at once, as RevokeToken does.
* an **SSO session** (``sso...``) is the hosted UI's sign-in session behind its cookie (an ``sso`` record of
  gateway/services/oauth.py). Revoking it deletes the record, so the cookie signs no one in any more.

A session's id is derived, never stored: ``tkn`` or ``sso`` and 25 base-36 characters of an HMAC, under a key
of the server's, of the family's ``origin_jti`` or of the SSO record's key (the SHA-256 of its cookie). It
names the session without telling either of them, and an id that names nothing of the user's is simply not
found.

Tracking is off until SetUserPoolSessionConfiguration turns it on (Cognito's default: DISABLED, MaxPerUser
20). While it is off, the listing and revoking operations answer OperationNotEnabledException ("not available
... for the current user pool configuration": the API reference names the exception and not the case), and
SetUserPoolClientSessionConfiguration too, since "session tracking must be enabled for the user pool". While
it is on, a refresh notes its time, device and address on its session, and a sign-in that starts a token
session then revokes the user's least recently used others beyond MaxPerUser - 1, as UserPoolTokenSessionConfig
documents ("the next successful authentication automatically evicts that user's least recently used token
session"). Gatehouse keeps every token family whether tracking is on or not, so sessions started before it
was turned on are listed too.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from typing import Any

import structlog

from gateway.errors import (
    FeatureUnavailableInTierException,
    InvalidParameterException,
    OperationNotEnabledException,
    ResourceNotFoundException,
)
from gateway.services.oauth import SSO_KIND
from gateway.services.pools import CLIENT_SESSION_SETTINGS, POOL_SESSION_SETTING, PoolService, PoolView
from gateway.storage.base import OAuthRecord, PoolRecord, Store, TokenFamilyRecord, UserRecord

log = structlog.get_logger("gateway.sessions")

# GetUserPoolSessionConfiguration's and GetUserPoolClientSessionConfiguration's documented defaults.
DEFAULT_MAX_PER_USER = 20
DEFAULT_SSO_MINUTES = 60
# "Amazon Cognito returns all of a user's sessions in a single page of up to 125 sessions."
PAGE_SIZE = 125
TOKEN_PREFIX = "tkn"
SSO_PREFIX = "sso"
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_ID_CHARS = 25
NOT_FOUND = "Session not found."
NOT_ENABLED = "Session tracking is not enabled for this user pool."
CURRENT = "The current session can't be revoked."


def _base36(digest: bytes, length: int) -> str:
    number = int.from_bytes(digest, "big")
    chars = []
    for _ in range(length):
        number, index = divmod(number, 36)
        chars.append(_ALPHABET[index])
    return "".join(chars)


# --- the device of a User-Agent -----------------------------------------------------------------------------

# Checked in order: the first that matches names it (Edge and Opera say Chrome too; Chrome says Safari).
_BROWSERS = (
    ("Edge", re.compile(r"Edg(?:e|A|iOS)?/")),
    ("Opera", re.compile(r"OPR/|Opera")),
    ("Firefox", re.compile(r"Firefox/|FxiOS/")),
    ("Chrome", re.compile(r"Chrome/|CriOS/")),
    ("Safari", re.compile(r"Safari/")),
)
# Browsers name the system in words; the AWS SDKs as ``os/linux#6.1``, ``os/macOS#14.0``, ``os/win32``.
_SYSTEMS = (
    ("Android", re.compile(r"Android", re.IGNORECASE)),
    ("iOS", re.compile(r"iPhone|iPad|iPod|os/ios", re.IGNORECASE)),
    ("macOS", re.compile(r"Mac OS X|Macintosh|Darwin|macOS", re.IGNORECASE)),
    ("Windows", re.compile(r"Windows|os/win", re.IGNORECASE)),
    ("Linux", re.compile(r"Linux", re.IGNORECASE)),
)
_PRODUCT = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,63}")


def describe_device(user_agent: str | None) -> str | None:
    """A session's DeviceType: "the operating system and browser or app" of the User-Agent, e.g. "Chrome on
    Windows" or "Boto3 on Linux" (the first product token names an app); None without a User-Agent."""
    if not user_agent or not user_agent.strip():
        return None
    agent = user_agent[:2048]
    system = next((name for name, pattern in _SYSTEMS if pattern.search(agent)), None)
    app: str | None = None
    if agent.startswith("Mozilla/"):
        app = next((name for name, pattern in _BROWSERS if pattern.search(agent)), None)
    else:
        found = _PRODUCT.match(agent.strip())
        app = found.group(0).split("/")[0] if found else None
    if app and system:
        return f"{app} on {system}"
    return app or system or "unknown"


@dataclass(frozen=True)
class RequestFacts:
    """Where a sign-in or refresh came from, as its session reports it."""

    device_type: str | None = None
    ip: str | None = None

    @classmethod
    def of(cls, user_agent: str | None, ip: str | None) -> RequestFacts:
        return cls(describe_device(user_agent), ip[:128] if ip else None)


class SessionService:
    """Session configuration, and a user's sessions listed and revoked."""

    def __init__(self, store: Store, pools: PoolService, key: bytes) -> None:
        self._store = store
        self._pools = pools
        self._key = key

    # --- ids ----------------------------------------------------------------------------------------------

    def _id(self, prefix: str, value: str) -> str:
        digest = hmac.new(self._key, f"{prefix}|{value}".encode(), hashlib.sha256).digest()
        return prefix + _base36(digest, _ID_CHARS)

    def token_session_id(self, origin_jti: str) -> str:
        return self._id(TOKEN_PREFIX, origin_jti)

    def sso_session_id(self, key_hash: str) -> str:
        return self._id(SSO_PREFIX, key_hash)

    # --- configuration -------------------------------------------------------------------------------------

    @staticmethod
    def tracking(pool: PoolView) -> bool:
        """Whether the pool tracks sessions (a look at its cached settings: no store read)."""
        config = pool.settings.get(POOL_SESSION_SETTING)
        return isinstance(config, dict) and config.get("UserSessionTracking") == "ENABLED"

    @staticmethod
    def max_per_user(pool: PoolView) -> int:
        config = pool.settings.get(POOL_SESSION_SETTING) or {}
        return int((config.get("TokenSession") or {}).get("MaxPerUser", DEFAULT_MAX_PER_USER))

    def pool_config(self, pool: PoolView) -> dict[str, Any]:
        """GetUserPoolSessionConfiguration's answer (and SetUserPoolSessionConfiguration's)."""
        return {
            "UserPoolId": pool.id,
            "UserSessionTracking": "ENABLED" if self.tracking(pool) else "DISABLED",
            "TokenSession": {"MaxPerUser": self.max_per_user(pool)},
        }

    @staticmethod
    def check_tier(pool: PoolView) -> None:
        # "The user pool must be in the Essentials or Plus tier. Otherwise ... FeatureUnavailableInTierException."
        if pool.settings.get("UserPoolTier", "ESSENTIALS") == "LITE":
            raise FeatureUnavailableInTierException(
                "Session management is available in the Essentials and Plus feature plans only."
            )

    async def set_pool_config(self, pool_id: str, tracking: str, max_per_user: int) -> PoolView:
        """SetUserPoolSessionConfiguration: a full replacement (the model makes every member required)."""
        pool = await self._pools.get_pool(pool_id)
        self.check_tier(pool)
        config = {"UserSessionTracking": tracking, "TokenSession": {"MaxPerUser": int(max_per_user)}}

        def change(record: PoolRecord) -> None:
            record.settings[POOL_SESSION_SETTING] = copy.deepcopy(config)

        await self._pools.change_settings(pool_id, change)
        log.info("sessions.configured", pool=pool_id, tracking=tracking, max_per_user=max_per_user)
        return await self._pools.get_pool(pool_id)

    async def client_config(self, pool_id: str, client_id: str) -> dict[str, Any]:
        """GetUserPoolClientSessionConfiguration's answer: the default 60 minutes until a Set call."""
        pool = await self._pools.get_pool(pool_id)
        await self._pools.get_client(pool_id, client_id)
        return self._client_answer(pool, client_id)

    def client_sso_minutes(self, pool: PoolView, client_id: str) -> int:
        """How long after a fresh sign-in the client silently reuses an SSO session; the default while the pool
        does not track sessions (a client's setting is then "retained but dormant")."""
        if not self.tracking(pool):
            return DEFAULT_SSO_MINUTES
        entry = (pool.settings.get(CLIENT_SESSION_SETTINGS) or {}).get(client_id) or {}
        return int(entry.get("MaxValidityMinutes", DEFAULT_SSO_MINUTES))

    def _client_answer(self, pool: PoolView, client_id: str) -> dict[str, Any]:
        entry = (pool.settings.get(CLIENT_SESSION_SETTINGS) or {}).get(client_id) or {}
        minutes = int(entry.get("MaxValidityMinutes", DEFAULT_SSO_MINUTES))
        return {"UserPoolId": pool.id, "ClientId": client_id, "SSOSession": {"MaxValidityMinutes": minutes}}

    async def set_client_config(self, pool_id: str, client_id: str, minutes: int) -> dict[str, Any]:
        """SetUserPoolClientSessionConfiguration: the pool must track sessions."""
        pool = await self._pools.get_pool(pool_id)
        await self._pools.get_client(pool_id, client_id)
        self.check_tier(pool)
        if not self.tracking(pool):
            raise OperationNotEnabledException(NOT_ENABLED)

        def change(record: PoolRecord) -> None:
            clients = dict(record.settings.get(CLIENT_SESSION_SETTINGS) or {})
            clients[client_id] = {"MaxValidityMinutes": int(minutes)}
            record.settings[CLIENT_SESSION_SETTINGS] = clients

        await self._pools.change_settings(pool_id, change)
        return self._client_answer(await self._pools.get_pool(pool_id), client_id)

    # --- sessions starting and refreshed --------------------------------------------------------------------

    async def make_room(self, pool: PoolView, username_key: str, new_origin: str) -> None:
        """Once a sign-in has started the token session ``new_origin``: revoke the user's least recently used
        other sessions beyond MaxPerUser - 1, so that the new one brings them to the limit. After the new
        family is stored, not before: of many sign-ins at once, each evicts what the others added before it
        (the last one leaves the user at the limit), and none evicts its own. Nothing when tracking is off."""
        if not self.tracking(pool):
            return
        evicted = await self._store.evict_token_sessions(
            pool.id, username_key, self.max_per_user(pool) - 1, time.time(), spare=new_origin
        )
        for origin in evicted:
            log.info("session.evicted", pool=pool.id, session=self.token_session_id(origin))

    @staticmethod
    def facts(user_agent: str | None, ip: str | None) -> RequestFacts:
        return RequestFacts.of(user_agent, ip)

    async def refreshed(self, pool: PoolView, origin_jti: str, user_agent: str | None, ip: str | None) -> None:
        """A refresh of a token session: its LastActiveDate, DeviceType and LastIPAddress (tracking only: the
        refresh path of a pool that does not track sessions writes nothing more)."""
        if self.tracking(pool):
            facts = RequestFacts.of(user_agent, ip)
            await self._store.touch_token_family(origin_jti, time.time(), facts.device_type, facts.ip)

    # --- listing and revoking -------------------------------------------------------------------------------

    def _require_tracking(self, pool: PoolView) -> None:
        if not self.tracking(pool):
            raise OperationNotEnabledException(NOT_ENABLED)

    async def _sessions(self, pool: PoolView, user: UserRecord) -> tuple[list[TokenFamilyRecord], list[OAuthRecord]]:
        """The user's live token sessions and SSO sessions. A token session of an app client deleted since is
        over and not listed: the deletion revoked it (Store.delete_client), as it did those of the client ID
        metadata document clients signed in under that app client, which are listed until then by the
        document's URL, their client_id."""
        now = time.time()
        families = [
            family
            for family in await self._store.list_token_sessions(pool.id, user.username_key, now)
            if family.created_at >= int(user.tokens_valid_after)
        ]
        sso = [
            record
            for record in await self._store.list_oauth_records(pool.id, user.username_key, SSO_KIND)
            if record.expires_at > now
            and record.data.get("sub", user.sub) == user.sub
            and float(record.data.get("created_at", 0)) >= user.tokens_valid_after
        ]
        return families, sso

    def _describe_token(self, family: TokenFamilyRecord, current: str | None) -> dict[str, Any]:
        described: dict[str, Any] = {
            "SessionId": self.token_session_id(family.origin_jti),
            "SessionType": "TOKEN",
            "ClientId": family.client_id,
            "CreateDate": family.created_at,
            "LastActiveDate": family.last_active_at or family.created_at,
        }
        if family.device_type:
            described["DeviceType"] = family.device_type[:1024]
        if family.last_ip:
            described["LastIPAddress"] = family.last_ip[:128]
        if family.sso_key_hash:
            described["OriginSessionId"] = self.sso_session_id(family.sso_key_hash)
        described["IsCurrentSession"] = family.origin_jti == current
        return described

    def _describe_sso(self, record: OAuthRecord, families: list[TokenFamilyRecord]) -> dict[str, Any]:
        created = float(record.data.get("created_at") or record.expires_at)
        # "For an SSO session, this is the most recent authentication, token grant, or token rotation": its own
        # start, or the latest activity of a token session that came through it.
        linked = [f.last_active_at or f.created_at for f in families if f.sso_key_hash == record.key_hash]
        described: dict[str, Any] = {
            "SessionId": self.sso_session_id(record.key_hash),
            "SessionType": "SSO",
        }
        client_id = record.data.get("client_id") or record.client_id
        if client_id:
            described["ClientId"] = client_id
        described["CreateDate"] = created
        described["LastActiveDate"] = max([created, *linked])
        if record.data.get("device_type"):
            described["DeviceType"] = str(record.data["device_type"])[:1024]
        if record.data.get("ip"):
            described["LastIPAddress"] = str(record.data["ip"])[:128]
        described["IsCurrentSession"] = False
        return described

    async def list_sessions(
        self, pool: PoolView, user: UserRecord, *, current_origin: str | None, offset: int
    ) -> tuple[list[dict[str, Any]], int | None]:
        """ListUserSessions / AdminListUserSessions: the user's active sessions, most recently active first,
        one page of up to 125 from ``offset``; and the offset of the next page, if any."""
        self._require_tracking(pool)
        families, sso = await self._sessions(pool, user)
        described = [self._describe_token(f, current_origin) for f in families]
        described += [self._describe_sso(r, families) for r in sso]
        described.sort(key=lambda s: (-float(s["LastActiveDate"]), -float(s["CreateDate"]), s["SessionId"]))
        page = described[offset : offset + PAGE_SIZE]
        following = offset + PAGE_SIZE if len(described) > offset + PAGE_SIZE else None
        return page, following

    async def revoke(
        self, pool: PoolView, user: UserRecord, session_id: str, *, linked: bool, current_origin: str | None
    ) -> None:
        """RevokeUserSession / AdminRevokeUserSession: the session's tokens are refused at once and it is gone
        from the lists; ``linked`` (RevokeAssociatedSessions LINKED): a token session's parent SSO session, or
        an SSO session's token sessions, too. A session of another user, or of no one, is not found (the same
        answer, so an id tells nothing of whose it is); the caller's own session (``current_origin``) cannot be
        revoked, whether named or linked, and then nothing is revoked."""
        self._require_tracking(pool)
        families, sso = await self._sessions(pool, user)
        targets: list[TokenFamilyRecord] = []
        sso_targets: list[OAuthRecord] = []
        if session_id.startswith(TOKEN_PREFIX):
            family = next((f for f in families if self.token_session_id(f.origin_jti) == session_id), None)
            if family is None:
                raise ResourceNotFoundException(NOT_FOUND)
            targets.append(family)
            if linked and family.sso_key_hash:
                sso_targets += [r for r in sso if r.key_hash == family.sso_key_hash]
        else:
            record = next((r for r in sso if self.sso_session_id(r.key_hash) == session_id), None)
            if record is None:
                raise ResourceNotFoundException(NOT_FOUND)
            sso_targets.append(record)
            if linked:
                targets += [f for f in families if f.sso_key_hash == record.key_hash]
        if current_origin is not None and any(f.origin_jti == current_origin for f in targets):
            raise InvalidParameterException(CURRENT)
        for family in targets:
            await self._store.revoke_token_family(family.origin_jti)
        for record in sso_targets:
            await self._store.take_oauth_record(SSO_KIND, record.key_hash)
        log.info(
            "session.revoked",
            pool=pool.id,
            username=user.username,
            session=session_id,
            linked=linked,
            revoked=len(targets) + len(sso_targets),
        )
