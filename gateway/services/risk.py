"""Threat protection: Cognito's advanced security features, computed from signals a person can follow.

A pool turns it on with ``UserPoolAddOns.AdvancedSecurityMode``: ``AUDIT`` assesses and records every sign-in
and never changes its outcome; ``ENFORCED`` also applies the actions of the pool's (or the app client's) risk
configuration (SetRiskConfiguration / DescribeRiskConfiguration):

* **Account takeover** (``AccountTakeoverRiskConfiguration``): each sign-in whose password (or SRP proof) is
  right gets a risk level from these signals, each recorded as a reason on the user's auth event:

  - *new device*: the device fingerprint (a hash of ``EncodedData``, else of the ``User-Agent`` in
    ContextData's headers) was never seen in this user's earlier successful sign-ins;
  - *new network*: neither was the address's network (its /24, or /48 for IPv6);
  - *failure velocity*: failed attempts on the account in the last 15 minutes (3 or more, 10 or more);
  - *impossible travel*: the location (CloudFront-Viewer-Latitude/-Longitude headers in ContextData) is
    farther from the last successful sign-in's than a flight could have gone since.

  Points: a new device 1, a new network 1, 3+ recent failures 1 (10+: 2), impossible travel 3; 0 is Low,
  1 Medium, 2 or more High. A user's first sign-in has nothing to compare with, so it is never "new". The
  level's EventAction decides: NO_ACTION, MFA_IF_CONFIGURED (a TOTP challenge if the user has TOTP),
  MFA_REQUIRED (a TOTP challenge, or refused when the user has none), BLOCK (refused); ``Notify`` sends the
  NotifyConfiguration's email template through the messenger.
* **Compromised credentials** (``CompromisedCredentialsRiskConfiguration``): a password from the breached
  passwords corpus (:mod:`gateway.services.breached`) at sign-in (USER_PASSWORD_AUTH and
  ADMIN_USER_PASSWORD_AUTH: SRP never shows the password), sign-up and password changes. BLOCK refuses a new
  password with InvalidPasswordException ("Provided password cannot be used for security reasons.") and, at
  sign-in, sets the user to RESET_REQUIRED and answers PasswordResetRequiredException, as Cognito documents.
* **IP exceptions** (``RiskExceptionConfiguration``): addresses in BlockedIPRangeList are always refused;
  SkippedIPRangeList addresses are never scored.

Every sign-in attempt of an existing user of such a pool is one auth event (AdminListUserAuthEvents), updated
as its challenges are answered; feedback (AdminUpdateAuthEventFeedback, UpdateAuthEventFeedback with the
FeedbackToken from the notification email) marks a device and network as the user's own (Valid) or as an
attacker's (Invalid: never trusted afterwards). Pools with the mode OFF pay one dict look-up per sign-in.

The IP address scored is ContextData.IpAddress for the admin API (the end user's address as the app server
saw it), UserContextData.IpAddress for public calls of clients with EnablePropagateAdditionalUserContextData
(Cognito's rule; only a client with a secret may have it), and otherwise the caller's own address (the one the
API and the hosted pages both take: X-Forwarded-For only from a trusted proxy). An IPv4-mapped IPv6 address is
its IPv4 address; a zone index (``fe80::1%eth0``), brackets and a port are read through, and an address that
cannot be read at all is refused wherever BlockedIPRangeList has ranges (no spelling gets round a block), at
InitiateAuth and at each challenge answer alike. Headers (device name, location) come from the admin API's
ContextData only; what they say is text, never markup, in a notification email's HTML.
"""

from __future__ import annotations

import copy
import dataclasses
import ipaddress
import math
import os
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape as html_escape
from typing import TYPE_CHECKING, Any, Final

import structlog

from gateway.errors import (
    CodeDeliveryFailureException,
    InvalidParameterException,
    InvalidPasswordException,
    NotAuthorizedException,
    PasswordResetRequiredException,
    ResourceNotFoundException,
    UserNotFoundException,
    UserPoolAddOnNotEnabledException,
)
from gateway.ids import sha256_hex
from gateway.metrics import Metrics
from gateway.services.breached import BreachedPasswords
from gateway.services.change_stamp import ChangeStamps
from gateway.services.cimd import app_client_id
from gateway.services.log_delivery import export_notification_error, export_user_activity
from gateway.services.messaging import EmailMessage, Messenger, check_address_header
from gateway.services.pools import ClientView, PoolService, PoolView
from gateway.services.risk_feedback import FEEDBACK_VALUES, feedback_link
from gateway.services.short_cache import ShortCache
from gateway.storage.base import AuthEventRecord, NotFound, RiskConfigurationRecord, Store, UserRecord, VersionConflict

if TYPE_CHECKING:
    from gateway.services.auth import AuthContext

log = structlog.get_logger("gateway.risk")

OFF, AUDIT, ENFORCED = "OFF", "AUDIT", "ENFORCED"
LOW, MEDIUM, HIGH = "Low", "Medium", "High"
COMPROMISED_EVENTS: Final = ("SIGN_IN", "PASSWORD_CHANGE", "SIGN_UP")
SECURITY_REASONS_MESSAGE: Final = "Unable to login because of security reasons."
COMPROMISED_PASSWORD_MESSAGE: Final = "Provided password cannot be used for security reasons."
# How long a process trusts the risk configuration it read (as PoolService does pools).
CACHE_SECONDS: Final = 2.0
# How many pools' and clients' risk configurations a process keeps at most (the oldest read goes first).
CONFIG_CACHE_SIZE: Final = 4096
FAILURE_WINDOW_SECONDS: Final = 900.0
HISTORY_EVENTS: Final = 50
# Faster than an airliner, over a distance that geolocation error cannot explain.
IMPOSSIBLE_SPEED_KMH: Final = 900.0
IMPOSSIBLE_MIN_KM: Final = 500.0
_EARTH_RADIUS_KM: Final = 6371.0


def security_mode(pool: PoolView) -> str:
    """UserPoolAddOns.AdvancedSecurityMode: OFF, AUDIT or ENFORCED."""
    add_ons = pool.settings.get("UserPoolAddOns")
    if not add_ons:
        return OFF
    return str(add_ons.get("AdvancedSecurityMode") or OFF)


def new_event_id(now: float) -> str:
    """A UUID version 7 (RFC 9562 §5.7): 48 bits of milliseconds first, so ids sort by creation time."""
    value = (int(now * 1000) & ((1 << 48) - 1)) << 80
    value |= int.from_bytes(os.urandom(10), "big") & ((1 << 80) - 1)
    value &= ~(0xF << 76)
    value |= 0x7 << 76  # version
    value &= ~(0x3 << 62)
    value |= 0x2 << 62  # variant
    return str(uuid.UUID(int=value))


# --- the signals of one sign-in ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SignInFacts:
    """What is known of where a sign-in comes from."""

    ip: str | None = None
    network: str | None = None
    device: str | None = None
    device_name: str | None = None
    city: str | None = None
    country: str | None = None
    timezone: str | None = None
    latitude: float | None = None
    longitude: float | None = None

    def context_json(self) -> dict[str, str]:
        """EventContextDataType."""
        members = {
            "IpAddress": self.ip,
            "DeviceName": self.device_name,
            "City": self.city,
            "Country": self.country,
            "Timezone": self.timezone,
        }
        return {k: v for k, v in members.items() if v}


def _parse_ip(ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The address ``ip`` names; an IPv4-mapped IPv6 address (``::ffff:192.0.2.1``, RFC 4291 §2.5.5.2, how
    dual-stack sockets report IPv4 callers) is its IPv4 address, so that IPv4 ranges and networks hold for it.
    The spellings an app's server may pass on as it saw them are read too: a zone index (``fe80::1%eth0``,
    RFC 4007 §11, or ``%25eth0`` as in a URI, RFC 6874), brackets and a port (``[2001:db8::1]:443``,
    ``192.0.2.1:443``). Anything else (a list of addresses, zero-padded octets) raises ValueError."""
    text = ip.strip()
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            raise ValueError(ip)
        text = host
    elif text.count(":") == 1:  # an IPv4 address and a port (an IPv6 address has two colons at least)
        host, _, port = text.partition(":")
        if not port.isdigit():
            raise ValueError(ip)
        text = host
    # The zone says which interface a link-local address was reached on; the address is the same in any zone.
    text = text.partition("%")[0]
    address = ipaddress.ip_address(text)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _readable(ip: str | None) -> bool:
    if not ip:
        return True  # no address at all: nothing to match
    try:
        _parse_ip(ip)
    except ValueError:
        return False
    return True


def _network(ip: str | None) -> str | None:
    if not ip:
        return None
    try:
        address = _parse_ip(ip)
    except ValueError:
        return None
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def _float(value: str | None) -> float | None:
    try:
        number = float(value) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) else None


def facts_from_context(context: Mapping[str, Any] | None, ip: str | None) -> SignInFacts:
    """The facts in ContextData / UserContextData (HttpHeaders only in the former), for address ``ip``."""
    context = context or {}
    headers: dict[str, str] = {}
    for header in context.get("HttpHeaders") or []:
        if isinstance(header, Mapping) and header.get("headerName"):
            headers[str(header["headerName"]).lower()] = str(header.get("headerValue") or "")[:512]
    encoded = context.get("EncodedData")
    agent = headers.get("user-agent")
    fingerprint = encoded or agent
    latitude = _float(headers.get("cloudfront-viewer-latitude"))
    longitude = _float(headers.get("cloudfront-viewer-longitude"))
    if latitude is None or longitude is None or not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        latitude = longitude = None
    return SignInFacts(
        ip=ip,
        network=_network(ip),
        device=sha256_hex(str(fingerprint))[:32] if fingerprint else None,
        device_name=(agent or ("Device " + sha256_hex(str(encoded))[:8] if encoded else None)),
        city=headers.get("cloudfront-viewer-city"),
        country=headers.get("cloudfront-viewer-country"),
        timezone=headers.get("cloudfront-viewer-time-zone"),
        latitude=latitude,
        longitude=longitude,
    )


def _distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance (haversine)."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * _EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


@dataclass(frozen=True)
class Assessment:
    level: str
    reasons: tuple[str, ...]


def _notes(event: AuthEventRecord) -> dict[str, Any]:
    notes = event.event.get("Gatehouse")
    return notes if isinstance(notes, dict) else {}


def _trusted(event: AuthEventRecord) -> bool:
    """A sign-in whose device and network count as the user's own: it passed, or was confirmed as valid,
    and nobody said it was not the user."""
    feedback = (event.event.get("EventFeedback") or {}).get("FeedbackValue")
    if feedback == "Invalid":
        return False
    return feedback == "Valid" or (
        event.event.get("EventType") == "SignIn" and event.event.get("EventResponse") == "Pass"
    )


def assess(facts: SignInFacts, history: Sequence[AuthEventRecord], now: float) -> Assessment:
    """The risk level of a sign-in and the reasons for it, from the user's recent events (newest first)."""
    points = 0
    reasons: list[str] = []
    trusted = [e for e in history if _trusted(e)]
    if trusted:
        devices = {_notes(e).get("device") for e in trusted}
        if facts.device and facts.device not in devices:
            points += 1
            reasons.append(f"new device ({facts.device_name or 'unknown'})")
        networks = {_notes(e).get("network") for e in trusted}
        if facts.network and facts.network not in networks:
            points += 1
            reasons.append(f"new network ({facts.network})")
    failures = sum(
        1 for e in history if e.event.get("EventResponse") == "Fail" and now - e.created_at <= FAILURE_WINDOW_SECONDS
    )
    if failures >= 3:
        points += 2 if failures >= 10 else 1
        reasons.append(f"{failures} failed attempts in the last {int(FAILURE_WINDOW_SECONDS // 60)} minutes")
    if facts.latitude is not None and facts.longitude is not None:
        located = next((e for e in trusted if _notes(e).get("lat") is not None), None)
        if located is not None:
            notes = _notes(located)
            km = _distance_km((float(notes["lat"]), float(notes["lon"])), (facts.latitude, facts.longitude))
            hours = max(now - located.created_at, 1.0) / 3600
            if km >= IMPOSSIBLE_MIN_KM and km / hours > IMPOSSIBLE_SPEED_KMH:
                points += 3
                reasons.append(f"impossible travel ({km:.0f} km in {hours * 60:.0f} minutes)")
    level = HIGH if points >= 2 else MEDIUM if points == 1 else LOW
    return Assessment(level, tuple(reasons))


# --- the risk configuration --------------------------------------------------------------------------------

_CONFIG_MEMBERS: Final = (
    "CompromisedCredentialsRiskConfiguration",
    "AccountTakeoverRiskConfiguration",
    "RiskExceptionConfiguration",
)
_NOTIFY_EMAIL_FOR: Final = {
    "BLOCK": "BlockEmail",
    "MFA_IF_CONFIGURED": "MfaEmail",
    "MFA_REQUIRED": "MfaEmail",
    "NO_ACTION": "NoActionEmail",
}


def _cidrs(values: Sequence[str], member: str) -> list[str]:
    """Addresses or CIDR blocks (RiskExceptionConfigurationType: "in CIDR notation"): a prefix length, never
    the netmask or hostmask that Python's parser would also take (``10.0.0.0/255.0.0.0``)."""
    for value in values:
        try:
            _, slash, prefix = value.partition("/")
            if slash and not prefix.isdecimal():
                raise ValueError(value)
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise InvalidParameterException(f"Invalid IP range in {member}: {value!r} is not a CIDR block.") from None
    return list(values)


def check_context_data_propagation(request: Mapping[str, Any], has_secret: bool) -> None:
    """CreateUserPoolClient / UpdateUserPoolClient: EnablePropagateAdditionalUserContextData only "in an app
    client that has a client secret" (botocore's model). It makes UserContextData.IpAddress believed, which only
    the app's server, the one holder of the secret, may be trusted to set."""
    if request.get("EnablePropagateAdditionalUserContextData") and not has_secret:
        raise InvalidParameterException(
            "EnablePropagateAdditionalUserContextData can only be enabled for an app client with a client secret."
        )


def validate_risk_configuration(request: Mapping[str, Any]) -> dict[str, Any]:
    """The members of a SetRiskConfiguration request to keep, after the checks the model cannot make."""
    config: dict[str, Any] = {k: copy.deepcopy(request[k]) for k in _CONFIG_MEMBERS if request.get(k) is not None}
    exceptions = config.get("RiskExceptionConfiguration")
    if exceptions is not None:
        for member in ("BlockedIPRangeList", "SkippedIPRangeList"):
            if member in exceptions:
                _cidrs(exceptions[member], member)
    takeover = config.get("AccountTakeoverRiskConfiguration")
    if takeover is not None:
        actions = takeover.get("Actions") or {}
        if not any(actions.get(level) for level in ("LowAction", "MediumAction", "HighAction")):
            raise InvalidParameterException("AccountTakeoverRiskConfiguration.Actions must set at least one action.")
        notifying = [
            level for level in ("LowAction", "MediumAction", "HighAction") if (actions.get(level) or {}).get("Notify")
        ]
        notify = takeover.get("NotifyConfiguration")
        if notifying and notify is None:
            raise InvalidParameterException(f"NotifyConfiguration is required when {notifying[0]} notifies the user.")
        for level in notifying:
            email = _NOTIFY_EMAIL_FOR[actions[level]["EventAction"]]
            if notify is not None and not notify.get(email):
                action = actions[level]["EventAction"]
                raise InvalidParameterException(
                    f"NotifyConfiguration.{email} is required when {level} is {action} with Notify."
                )
        if notify is not None:
            # "Administrator <admin@example.com>" or a plain address (NotifyConfigurationType): refused here
            # when no email could carry it, rather than at every sign-in that notifies.
            for member in ("From", "ReplyTo"):
                check_address_header(notify.get(member), f"NotifyConfiguration.{member}")
            for email in ("BlockEmail", "MfaEmail", "NoActionEmail"):
                template = notify.get(email)
                if template is not None and not (template.get("TextBody") or template.get("HtmlBody")):
                    raise InvalidParameterException(f"NotifyConfiguration.{email} needs a TextBody or an HtmlBody.")
    credentials = config.get("CompromisedCredentialsRiskConfiguration")
    if credentials is not None and "EventFilter" in credentials:
        if not credentials["EventFilter"]:
            raise InvalidParameterException("EventFilter must name at least one event when given.")
        credentials["EventFilter"] = list(dict.fromkeys(credentials["EventFilter"]))
    return config


def _action(config: Mapping[str, Any], level: str) -> tuple[str, bool]:
    """The account-takeover EventAction and Notify for a risk level (NO_ACTION when not configured)."""
    actions = (config.get("AccountTakeoverRiskConfiguration") or {}).get("Actions") or {}
    action = actions.get(f"{level}Action") or {}
    return str(action.get("EventAction") or "NO_ACTION"), bool(action.get("Notify"))


def _compromised_action(config: Mapping[str, Any], event: str) -> str | None:
    """BLOCK or NO_ACTION when passwords are checked at ``event`` (SIGN_IN, SIGN_UP, PASSWORD_CHANGE), else None.
    Without a configuration passwords are still checked and recorded, with no action (the filter defaults to
    every event, as the API documents)."""
    credentials = config.get("CompromisedCredentialsRiskConfiguration")
    if credentials is None:
        return "NO_ACTION"
    if event not in (credentials.get("EventFilter") or COMPROMISED_EVENTS):
        return None
    return str((credentials.get("Actions") or {}).get("EventAction") or "NO_ACTION")


def _in_ranges(ip: str | None, ranges: Sequence[str] | None) -> bool:
    if not ip or not ranges:
        return False
    try:
        address = _parse_ip(ip)
    except ValueError:
        return False
    # Both spellings of an IPv4 address, so that a range written either way holds for it.
    forms: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [address]
    if isinstance(address, ipaddress.IPv4Address):
        forms.append(ipaddress.IPv6Address(f"::ffff:{address}"))
    for cidr in ranges:
        try:
            network = ipaddress.ip_network(cidr, strict=False)
            if any(form in network for form in forms):
                return True
        except ValueError:
            continue
    return False


# --- the service ------------------------------------------------------------------------------------------


class RiskService:
    """Risk configurations, risk decisions at sign-in, compromised passwords and auth events."""

    def __init__(
        self,
        store: Store,
        pools: PoolService,
        messenger: Messenger | None,
        metrics: Metrics,
        *,
        breached: BreachedPasswords | None = None,
        default_email_sender: str = "no-reply@verificationemail.com",
    ) -> None:
        self.store = store
        self.pools = pools
        self.messenger = messenger
        self.metrics = metrics
        self.breached = breached or BreachedPasswords()
        self.default_email_sender = default_email_sender
        # Where the notification emails' feedback links point (set by the container: the public URL).
        self.public_url: str | None = None
        # Read for CACHE_SECONDS, under the store's change stamp (gateway/services/change_stamp.py): a block
        # switched on by any process sharing the store holds at once. Shared by the container.
        self.stamps = ChangeStamps()
        # Each entry: the stamp it was read under, the configuration and when it was set. Bounded (an entry per
        # pool and client ever signed in to would otherwise outlive them); the stamp is checked here, as the
        # container replaces ``stamps`` after construction.
        self._configs: ShortCache[tuple[str, str], tuple[int, dict[str, Any], float | None]] = ShortCache(
            CACHE_SECONDS, CONFIG_CACHE_SIZE
        )
        self.decisions = metrics.counter(
            "gatehouse_risk_decisions",
            "Sign-ins assessed by threat protection, by user pool, risk level and the action taken.",
            ["pool", "level", "action"],
        )
        self.compromised = metrics.counter(
            "gatehouse_compromised_credentials",
            "Passwords found in the breached-passwords corpus, by user pool, event and action.",
            ["pool", "event", "action"],
        )

    # --- configuration ---------------------------------------------------------------------------------

    async def _stored(self, pool_id: str, client_id: str | None) -> tuple[dict[str, Any], float | None]:
        key = (pool_id, client_id or "")
        stamp = self.stamps.read()
        cached = self._configs.get(key)
        if cached is not None and cached[0] == stamp:
            return cached[1], cached[2]
        record = await self.store.get_risk_configuration(pool_id, client_id)
        config, updated = (record.config, record.updated_at) if record is not None else ({}, None)
        self._configs.put(key, (stamp, config, updated))
        return config, updated

    async def effective(self, pool_id: str, client_id: str | None) -> tuple[dict[str, Any], float | None]:
        """The client's configuration when it has one, else the pool's. A metadata document client is held to
        its policy's app client's (callers pass :func:`~gateway.services.cimd.app_client_id`)."""
        if client_id:
            config, updated = await self._stored(pool_id, client_id)
            if config:
                return config, updated
        return await self._stored(pool_id, None)

    async def set_configuration(
        self, pool_id: str, client_id: str | None, request: Mapping[str, Any]
    ) -> dict[str, Any]:
        """SetRiskConfiguration: replaces the pool's (or the client's) configuration; no member at all clears it."""
        await self.pools.get_pool(pool_id)
        if client_id:
            await self.pools.get_client(pool_id, client_id)
        config = validate_risk_configuration(request)
        now = time.time()
        try:
            await self.store.put_risk_configuration(RiskConfigurationRecord(pool_id, client_id or None, config, now))
        except NotFound as exc:
            raise ResourceNotFoundException(f"User pool {pool_id} does not exist.") from exc
        self._configs.drop((pool_id, client_id or ""))
        self.stamps.bump()
        log.info("risk.configuration_set", pool=pool_id, client=client_id, members=sorted(config))
        return self._configuration_type(pool_id, client_id, config, now)

    async def describe_configuration(self, pool_id: str, client_id: str | None) -> dict[str, Any]:
        await self.pools.get_pool(pool_id)
        if client_id:
            await self.pools.get_client(pool_id, client_id)
        config, updated = await self.effective(pool_id, client_id)
        return self._configuration_type(pool_id, client_id, config, updated)

    @staticmethod
    def _configuration_type(
        pool_id: str, client_id: str | None, config: Mapping[str, Any], updated: float | None
    ) -> dict[str, Any]:
        """RiskConfigurationType."""
        result: dict[str, Any] = {"UserPoolId": pool_id, **copy.deepcopy(dict(config))}
        if client_id:
            result["ClientId"] = client_id
        if updated is not None:
            result["LastModifiedDate"] = updated
        return result

    # --- sign-in hooks (called by the auth service; each returns at once for pools with the mode OFF) ---

    def _address(self, ctx: AuthContext) -> str | None:
        context = ctx.context_data or {}
        given = context.get("IpAddress")
        # A public client's UserContextData is whatever its caller typed: believed only from a client with a
        # secret (see check_context_data_propagation), however the setting came to be stored.
        propagated = ctx.client.secret is not None and ctx.client.settings.get(
            "EnablePropagateAdditionalUserContextData"
        )
        if given and (ctx.admin or propagated):
            return str(given)
        return ctx.source_ip

    def _facts(self, ctx: AuthContext) -> SignInFacts:
        facts = ctx.signals.get("facts")
        if not isinstance(facts, SignInFacts):
            context = ctx.context_data
            if context and not ctx.admin:
                # UserContextDataType is IpAddress and EncodedData (botocore's model): headers are what the app's
                # server saw (the admin API's ContextData); a public caller's would be whatever it typed.
                context = {k: v for k, v in context.items() if k in ("IpAddress", "EncodedData")}
            facts = facts_from_context(context, self._address(ctx))
            ctx.signals["facts"] = facts
        return facts

    async def screen(
        self,
        ctx: AuthContext,
        username: str | None,
        find: Callable[[PoolView, str], Awaitable[UserRecord | None]],
    ) -> None:
        """Before a sign-in: addresses in BlockedIPRangeList are refused (ENFORCED), or marked so that the
        sign-in's event records the decision it would have had (AUDIT)."""
        if not await self._ip_blocked(ctx):
            return
        user = await find(ctx.pool, username) if username else None
        if user is not None:
            await self._insert(ctx, user, "SignIn", "Fail", Assessment(HIGH, ()), action="BLOCK")
        raise NotAuthorizedException(SECURITY_REASONS_MESSAGE)

    async def screen_answer(self, ctx: AuthContext) -> None:
        """Before a challenge answer (after :meth:`resume`): an address in BlockedIPRangeList is refused at every
        step of a sign-in, not only at its start, whichever address the first step came from."""
        if not await self._ip_blocked(ctx):
            return
        event_id = ctx.signals.get("event_id")
        if event_id is not None:
            await self._update(ctx.pool.id, str(event_id), "Fail", "Failure")
        raise NotAuthorizedException(SECURITY_REASONS_MESSAGE)

    async def _ip_blocked(self, ctx: AuthContext) -> bool:
        """Whether the request's address is in BlockedIPRangeList and the mode is ENFORCED (then the caller
        refuses it); in AUDIT the sign-in is marked so that its event records the decision it would have had."""
        mode = security_mode(ctx.pool)
        if mode == OFF:
            return False
        config, _ = await self.effective(ctx.pool.id, app_client_id(ctx.client))
        facts = self._facts(ctx)
        blocked = (config.get("RiskExceptionConfiguration") or {}).get("BlockedIPRangeList")
        # An address that cannot be read cannot be shown to be outside the blocked ranges: it is refused as if in
        # them, so that no spelling gets round a block. (It is never in the skipped ranges either.)
        unreadable = bool(blocked) and not _readable(facts.ip)
        if not unreadable and not _in_ranges(facts.ip, blocked):
            return False
        log.info(
            "risk.blocked_ip", pool=ctx.pool.id, client=ctx.client.id, ip=facts.ip, mode=mode, unreadable=unreadable
        )
        ctx.signals["ip_blocked"] = True
        if mode != ENFORCED:
            self.metrics.inc(self.decisions, pool=ctx.pool.id, level=HIGH, action="AUDIT")
            return False
        self.metrics.inc(self.decisions, pool=ctx.pool.id, level=HIGH, action="BLOCK")
        return True

    def resume(self, ctx: AuthContext, state: Mapping[str, Any]) -> None:
        """A challenge answer continues the sign-in whose event its session carries."""
        event_id = state.get("risk_event")
        if event_id:
            ctx.signals["event_id"] = event_id
            ctx.signals["mfa"] = bool(state.get("risk_mfa"))
        if state.get("risk_ip_blocked"):
            ctx.signals["ip_blocked"] = True

    async def check_sign_in_password(self, ctx: AuthContext, user: UserRecord, password: str) -> None:
        """A proven password at sign-in, against the breached corpus. BLOCK (ENFORCED) resets the user."""
        mode = security_mode(ctx.pool)
        if mode == OFF:
            return
        config, _ = await self.effective(ctx.pool.id, app_client_id(ctx.client))
        action = _compromised_action(config, "SIGN_IN")
        if action is None or not await self.breached.is_compromised(password):
            return
        ctx.signals["compromised"] = True
        enforced = mode == ENFORCED and action == "BLOCK"
        self.metrics.inc(
            self.compromised, pool=ctx.pool.id, event="SIGN_IN", action=action if mode == ENFORCED else "AUDIT"
        )
        log.info(
            "risk.compromised_password", pool=ctx.pool.id, username=user.username, during="SIGN_IN", blocked=enforced
        )
        if not enforced:
            return
        await self._reset_required(user)
        await self._insert(
            ctx, user, "SignIn", "Fail", Assessment(HIGH, ("compromised password",)), decision="Block", action="BLOCK"
        )
        raise PasswordResetRequiredException()

    async def _reset_required(self, user: UserRecord) -> None:
        for _ in range(5):
            try:
                await self.store.update_user(dataclasses.replace(user, status="RESET_REQUIRED", updated_at=time.time()))
                return
            except VersionConflict:
                fresh = await self.store.get_user(user.pool_id, user.username_key)
                if fresh is None:
                    return
                user = fresh

    async def assess_sign_in(self, ctx: AuthContext, user: UserRecord, has_totp: bool) -> bool:
        """Once the first factor is proven: the risk level and its action. True when the user must answer a
        TOTP challenge because of the risk; raises NotAuthorizedException when the sign-in is blocked."""
        mode = security_mode(ctx.pool)
        if mode == OFF:
            return False
        if "event_id" in ctx.signals:  # a later step of a sign-in already assessed
            return bool(ctx.signals.get("mfa"))
        config, _ = await self.effective(ctx.pool.id, app_client_id(ctx.client))
        facts = self._facts(ctx)
        now = time.time()
        skipped = (config.get("RiskExceptionConfiguration") or {}).get("SkippedIPRangeList")
        if _in_ranges(facts.ip, skipped):
            assessment = Assessment(LOW, ("address in SkippedIPRangeList: not scored",))
        else:
            history = await self.store.list_auth_events(ctx.pool.id, user.username_key, None, HISTORY_EVENTS)
            assessment = assess(facts, history.items, now)
        action, notify = _action(config, assessment.level)
        ctx.signals["assessment"] = assessment
        log.info(
            "risk.assessed",
            pool=ctx.pool.id,
            client=ctx.client.id,
            username=user.username,
            level=assessment.level,
            reasons=list(assessment.reasons),
            action=action,
            mode=mode,
        )
        if mode != ENFORCED:
            self.metrics.inc(self.decisions, pool=ctx.pool.id, level=assessment.level, action="AUDIT")
            ctx.signals["action"] = "NO_ACTION"
            return False
        self.metrics.inc(self.decisions, pool=ctx.pool.id, level=assessment.level, action=action)
        ctx.signals["action"] = action
        blocked = action == "BLOCK" or (action == "MFA_REQUIRED" and not has_totp)
        if notify:
            await self._notify(ctx, user, config, "BLOCK" if blocked else action, facts, now)
        if blocked:
            await self._insert(ctx, user, "SignIn", "Fail", assessment, action=action)
            raise NotAuthorizedException(SECURITY_REASONS_MESSAGE)
        mfa = action in ("MFA_REQUIRED", "MFA_IF_CONFIGURED") and has_totp
        ctx.signals["mfa"] = mfa
        return mfa

    async def challenge_issued(self, ctx: AuthContext, user: UserRecord | None, state: dict[str, Any]) -> None:
        """A challenge follows a sign-in step: the event is InProgress, and its id travels in the session."""
        if not ctx.signals or user is None:
            return
        if ctx.signals.get("ip_blocked"):
            state["risk_ip_blocked"] = True
        event_id = ctx.signals.get("event_id")
        if event_id is None and "assessment" in ctx.signals:
            event_id = await self._insert(ctx, user, "SignIn", "InProgress", ctx.signals["assessment"])
        if event_id is not None:
            state["risk_event"] = event_id
            state["risk_mfa"] = bool(ctx.signals.get("mfa"))

    async def sign_in_passed(self, ctx: AuthContext, user: UserRecord) -> None:
        """Tokens issued: the sign-in's event is Pass."""
        if not ctx.signals:
            return
        event_id = ctx.signals.get("event_id")
        if event_id is not None:
            await self._update(ctx.pool.id, str(event_id), "Pass", "Success")
        elif "assessment" in ctx.signals:
            await self._insert(ctx, user, "SignIn", "Pass", ctx.signals["assessment"])

    async def sign_in_failed(self, ctx: AuthContext, user: UserRecord) -> None:
        """A wrong password, SRP proof or MFA code of an existing user."""
        if security_mode(ctx.pool) == OFF:
            return
        event_id = ctx.signals.get("event_id")
        if event_id is not None:
            await self._update(ctx.pool.id, str(event_id), "Fail", "Failure")
            return
        facts = self._facts(ctx)
        history = await self.store.list_auth_events(ctx.pool.id, user.username_key, None, HISTORY_EVENTS)
        await self._insert(ctx, user, "SignIn", "Fail", assess(facts, history.items, time.time()), password_ok=False)

    # --- passwords outside sign-in -------------------------------------------------------------------------

    async def screen_new_password(
        self, pool: PoolView, client: ClientView | None, password: str, event: str, user: UserRecord | None = None
    ) -> bool:
        """A password being chosen (SIGN_UP, PASSWORD_CHANGE), against the breached corpus: True when it is in
        it; InvalidPasswordException when the configuration blocks it (ENFORCED). A password change of an
        existing ``user`` is recorded as a PasswordChange event."""
        mode = security_mode(pool)
        if mode == OFF:
            return False
        config, _ = await self.effective(pool.id, client.id if client else None)
        action = _compromised_action(config, event)
        compromised = action is not None and await self.breached.is_compromised(password)
        blocked = compromised and mode == ENFORCED and action == "BLOCK"
        if compromised:
            self.metrics.inc(
                self.compromised, pool=pool.id, event=event, action=str(action) if mode == ENFORCED else "AUDIT"
            )
            log.info("risk.compromised_password", pool=pool.id, during=event, blocked=blocked)
        if user is not None and event == "PASSWORD_CHANGE":
            await self._record_plain(pool, client, user, "PasswordChange", "Fail" if blocked else "Pass", compromised)
        if blocked:
            raise InvalidPasswordException(COMPROMISED_PASSWORD_MESSAGE)
        return compromised

    async def signed_up(self, pool: PoolView, client: ClientView, user: UserRecord, compromised: bool) -> None:
        """A SignUp event for the new user."""
        if security_mode(pool) != OFF:
            await self._record_plain(pool, client, user, "SignUp", "Pass", compromised)

    async def forgot_password(self, pool: PoolView, client: ClientView, user: UserRecord) -> None:
        """A ForgotPassword event for the user a reset code was sent to."""
        if security_mode(pool) != OFF:
            await self._record_plain(pool, client, user, "ForgotPassword", "Pass", False)

    # --- events -------------------------------------------------------------------------------------------

    async def _record_plain(
        self, pool: PoolView, client: ClientView | None, user: UserRecord, kind: str, response: str, compromised: bool
    ) -> None:
        now = time.time()
        event = {
            "EventType": kind,
            "EventResponse": response,
            "EventRisk": {
                "RiskDecision": "Block" if response == "Fail" else "NoRisk",
                "RiskLevel": HIGH if compromised else LOW,
                "CompromisedCredentialsDetected": compromised,
            },
            "ChallengeResponses": [],
            "EventContextData": {},
            "Gatehouse": {
                "reasons": ["compromised password"] if compromised else [],
                "client": client.id if client else None,
            },
        }
        await self._add(pool, user, AuthEventRecord(pool.id, user.username_key, new_event_id(now), now, event))

    async def _insert(
        self,
        ctx: AuthContext,
        user: UserRecord,
        kind: str,
        response: str,
        assessment: Assessment,
        *,
        decision: str | None = None,
        action: str | None = None,
        password_ok: bool = True,
    ) -> str:
        now = time.time()
        facts = self._facts(ctx)
        token = str(ctx.signals.get("notified_token") or secrets.token_urlsafe(24))
        reasons = list(assessment.reasons)
        if ctx.signals.get("ip_blocked"):
            decision = "Block"
            reasons.insert(0, "address in BlockedIPRangeList")
        event = {
            "EventType": kind,
            "EventResponse": response,
            "EventRisk": {
                "RiskDecision": decision or ("AccountTakeover" if assessment.reasons else "NoRisk"),
                "RiskLevel": assessment.level,
                "CompromisedCredentialsDetected": bool(ctx.signals.get("compromised")),
            },
            "ChallengeResponses": [
                {"ChallengeName": "Password", "ChallengeResponse": "Success" if password_ok else "Failure"}
            ],
            "EventContextData": facts.context_json(),
            "Gatehouse": {
                "reasons": reasons,
                "action": action or ctx.signals.get("action"),
                "client": ctx.client.id,
                "device": facts.device,
                "network": facts.network,
                "lat": facts.latitude,
                "lon": facts.longitude,
                "feedback_token": sha256_hex(token),
            },
        }
        event_id = str(ctx.signals.get("pending_event_id") or new_event_id(now))
        await self._add(ctx.pool, user, AuthEventRecord(ctx.pool.id, user.username_key, event_id, now, event))
        ctx.signals["event_id"] = event_id
        return event_id

    async def _add(self, pool: PoolView, user: UserRecord, record: AuthEventRecord) -> None:
        try:
            await self.store.add_auth_event(record)
        except NotFound:
            log.info("risk.event_without_user", pool=record.pool_id)
            return
        export_user_activity(
            pool,
            event_id=record.event_id,
            created_at=record.created_at,
            event=record.event,
            sub=user.sub,
            username=user.username,
        )

    async def _update(self, pool_id: str, event_id: str, response: str, mfa: str) -> None:
        record = await self.store.get_auth_event(pool_id, event_id)
        if record is None:
            return
        record.event["EventResponse"] = response
        record.event.setdefault("ChallengeResponses", []).append({"ChallengeName": "Mfa", "ChallengeResponse": mfa})
        await self.store.update_auth_event(record)

    @staticmethod
    def auth_event_type(record: AuthEventRecord) -> dict[str, Any]:
        """AuthEventType, plus the reasons for its risk level (EventRisk.RiskReasons: Gatehouse's own member,
        which SDKs ignore)."""
        event = record.event
        result: dict[str, Any] = {
            "EventId": record.event_id,
            "EventType": event.get("EventType", "SignIn"),
            "CreationDate": record.created_at,
            "EventResponse": event.get("EventResponse", "Pass"),
            "EventRisk": {**event.get("EventRisk", {}), "RiskReasons": list(_notes(record).get("reasons") or [])},
            "ChallengeResponses": list(event.get("ChallengeResponses") or []),
            "EventContextData": dict(event.get("EventContextData") or {}),
        }
        if event.get("EventFeedback"):
            result["EventFeedback"] = dict(event["EventFeedback"])
        return result

    def _require_enabled(self, pool: PoolView) -> None:
        if security_mode(pool) == OFF:
            raise UserPoolAddOnNotEnabledException()

    async def list_events(
        self, pool: PoolView, user: UserRecord, before: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        """AdminListUserAuthEvents."""
        self._require_enabled(pool)
        page = await self.store.list_auth_events(pool.id, user.username_key, before, limit)
        return [self.auth_event_type(e) for e in page.items], page.next_token

    async def set_feedback(
        self, pool: PoolView, user: UserRecord | None, event_id: str, value: str, *, token: str | None
    ) -> None:
        """AdminUpdateAuthEventFeedback (``token`` None) and UpdateAuthEventFeedback (the FeedbackToken)."""
        self._require_enabled(pool)
        record = await self.store.get_auth_event(pool.id, event_id)
        if user is None or record is None or record.username_key != user.username_key:
            if token is not None:
                raise NotAuthorizedException("Invalid feedback token or event.")
            if user is None:
                raise UserNotFoundException()
            raise ResourceNotFoundException("Auth event not found.")
        if token is not None:
            expected = _notes(record).get("feedback_token")
            if not isinstance(expected, str) or not secrets.compare_digest(expected, sha256_hex(token)):
                raise NotAuthorizedException("Invalid feedback token or event.")
        record.event["EventFeedback"] = {
            "FeedbackValue": value,
            "Provider": "USER" if token is not None else "ADMIN",
            "FeedbackDate": time.time(),
        }
        await self.store.update_auth_event(record)
        log.info("risk.feedback", pool=pool.id, username=user.username, event_id=event_id, value=value)

    # --- notifications ------------------------------------------------------------------------------------

    async def _notify(
        self, ctx: AuthContext, user: UserRecord, config: Mapping[str, Any], action: str, facts: SignInFacts, now: float
    ) -> None:
        """The NotifyConfiguration email for ``action``, to the user's email, through the messenger. The
        event is made first so the email can carry its id and feedback token."""
        notify = (config.get("AccountTakeoverRiskConfiguration") or {}).get("NotifyConfiguration") or {}
        template = notify.get(_NOTIFY_EMAIL_FOR.get(action, "NoActionEmail"))
        to = user.attributes.get("email")
        if not template or not to or self.messenger is None:
            return
        # The event id is fixed now so the email can name it; the event is written with it.
        event_id = new_event_id(now)
        ctx.signals["pending_event_id"] = event_id
        token = secrets.token_urlsafe(24)
        values = {
            "{username}": user.username,
            "{ip-address}": facts.ip or "",
            "{city}": facts.city or "",
            "{country}": facts.country or "",
            "{device-name}": facts.device_name or "",
            "{login-time}": datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
            "{event-id}": event_id,
            "{feedback-token}": token,
        }
        if self.public_url is not None:
            for answer in FEEDBACK_VALUES:
                link = feedback_link(self.public_url, ctx.pool.id, user.username, event_id, token, answer)
                values[f"{{one-click-link-{answer}}}"] = link

        def render(text: str, *, as_html: bool = False) -> str:
            # The values are the requester's words (a User-Agent, CloudFront location headers, a username):
            # text in an HTML body, never markup, or a blocked attacker could write links into the user's
            # security email.
            for placeholder, value in values.items():
                text = text.replace(placeholder, html_escape(value) if as_html else value)
            return text

        # NotifyConfigurationType: From, else the SES identity SourceArn names when it is an address (a domain
        # identity, "identity/example.com", is no sender); ReplyTo becomes the message's Reply-To.
        identity = str(notify.get("SourceArn", "")).rpartition("/")[2]
        sender = str(notify.get("From") or (identity if "@" in identity else "") or self.default_email_sender)
        reply_to = str(notify["ReplyTo"]) if notify.get("ReplyTo") else None
        text = render(str(template.get("TextBody") or template.get("HtmlBody") or ""))
        html = render(str(template["HtmlBody"]), as_html=True) if template.get("HtmlBody") else None
        subject = str(template.get("Subject", ""))
        try:
            await self.messenger.email.send(
                EmailMessage(to=to, sender=sender, subject=subject, text=text, html=html, reply_to=reply_to)
            )
        except CodeDeliveryFailureException:  # a lost notification must not change the sign-in's outcome
            log.warning("risk.notify_failed", pool=ctx.pool.id, username=user.username)
            export_notification_error(ctx.pool, "Email", "threat protection notification")
            return
        ctx.signals["notified_token"] = token
