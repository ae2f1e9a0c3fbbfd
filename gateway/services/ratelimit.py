"""Rate limits on the public (unsigned) Cognito operations: token buckets per app client and per source address.

Cognito throttles its public API with per-account quotas ("Quotas in Amazon Cognito": operations answer
``TooManyRequestsException`` past their rate). Gatehouse keeps two token buckets for every unsigned call
(InitiateAuth, SignUp, ForgotPassword, GetUser, ...): one for the app client the call names (``ClientId``) and
one for the address it comes from. A bucket holds up to ``burst`` tokens and refills at ``rate`` tokens a
second; a call takes one token from each, and a call that finds either bucket empty is refused before any
work is done. Signed admin calls are never limited here: their callers hold the admin key.

The counters are per process. With ``gatehouse serve --workers N`` (or N gateways behind a load balancer)
each process keeps its own buckets, so the effective limit is up to N times the configured one. That is a
deliberate trade: a shared counter would cost a store write on every public call, and these limits are a
guard against floods, not an exact quota.

The source address is the TCP peer. ``X-Forwarded-For`` is believed only when the peer is one of the
configured trusted proxies (``trusted_proxies``, CIDRs): then the address is the right-most entry of that
header that is not itself a trusted proxy (the left-most entries are whatever the client chose to send).

Memory is bounded: at most ``max_buckets`` buckets of each kind are kept, the least recently used dropped
first; a dropped bucket comes back full, which only ever errs towards letting a call through. Their keys are
bounded too, since the caller chooses them: a client bucket is keyed by a ``ClientId`` only when it is one an
app client can have (botocore's ClientIdType: 1 to 128 of ``[\\w+]``), every other value shares one bucket
(such a call fails its validation anyway); an address is the peer's or a plain IP address without an IPv6
zone (a zone, ``%...``, may be any length). The address bucket is taken first, so that a call refused there
leaves nothing in the client buckets.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gateway.errors import TooManyRequestsException

if TYPE_CHECKING:
    # Only for annotations: gateway.settings imports this module, and prometheus_client must not be imported
    # before `gatehouse serve --workers N` has chosen its multi-process directory (gateway/cli.py).
    from multidict import CIMultiDictProxy

    from gateway.metrics import Metrics

__all__ = ["RateLimitSettings", "RateLimiter", "TokenBuckets", "client_key", "source_address"]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# botocore's ClientIdType: min 1, max 128, pattern [\w+]+ (Java's \w, ASCII only).
_CLIENT_ID = re.compile(r"[A-Za-z0-9_+]{1,128}")
# The one bucket of every ClientId that is not a ClientIdType (no app client has it): never a valid one.
_MALFORMED_CLIENT_ID = ""


@dataclass(frozen=True)
class RateLimitSettings:
    """Limits on unsigned calls; a rate of 0 turns that limit off.

    The defaults sit well above what one app or one office needs (Cognito's own default quota for sign-ins is
    120 requests a second per account) and far below what a password-spraying script sends."""

    per_client_rate: float = 200.0
    per_client_burst: int = 2000
    per_address_rate: float = 100.0
    per_address_burst: int = 1000
    trusted_proxies: tuple[str, ...] = ()
    max_buckets: int = 100_000


class TokenBuckets:
    """Token buckets keyed by a string, in one process's memory (see the module docstring)."""

    __slots__ = ("_buckets", "_burst", "_clock", "_max", "_rate")

    def __init__(self, rate: float, burst: int, *, max_buckets: int, clock: Callable[[], float] = time.monotonic):
        self._rate = float(rate)
        self._burst = float(max(burst, 1))
        self._max = max(max_buckets, 1)
        self._clock = clock
        # key -> [tokens, last refill time]; a list so the hot path updates it in place.
        self._buckets: OrderedDict[str, list[float]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self._rate > 0

    def take(self, key: str) -> bool:
        """Take one token for ``key``; False when its bucket is empty (the call is to be refused)."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max:
                self._buckets.popitem(last=False)
            self._buckets[key] = [self._burst - 1.0, now]
            return True
        self._buckets.move_to_end(key)
        tokens = min(self._burst, bucket[0] + (now - bucket[1]) * self._rate)
        bucket[1] = now
        if tokens < 1.0:
            bucket[0] = tokens
            return False
        bucket[0] = tokens - 1.0
        return True


def client_key(client_id: str) -> str:
    """The client bucket a ``ClientId`` takes from: its own when it is a ClientIdType, else the shared one, so
    that a value the caller made up (of any length) is never kept."""
    return client_id if _CLIENT_ID.fullmatch(client_id) else _MALFORMED_CLIENT_ID


def _networks(cidrs: Iterable[str]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def _in(address: str, networks: tuple[IPNetwork, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in network for network in networks)


def source_address(peer: str | None, forwarded_for: str | None, trusted: tuple[IPNetwork, ...]) -> str | None:
    """The caller's address: the peer, or -- only when the peer is a trusted proxy -- the right-most
    ``X-Forwarded-For`` entry that is not a trusted proxy. An entry with an IPv6 zone (``fe80::1%eth0``) is
    refused as a mangled one: a zone means something only on the host that wrote it, and ``ipaddress`` takes
    one of any length, which would become a rate-limit key and the call's source address."""
    if not trusted or not forwarded_for or peer is None or not _in(peer, trusted):
        return peer
    for entry in reversed(forwarded_for.split(",")):
        candidate = entry.strip()
        if not candidate:
            continue
        try:
            if "%" in candidate:
                raise ValueError(candidate)
            ipaddress.ip_address(candidate)
        except ValueError:
            return peer  # a mangled header: fall back to what the socket says
        if not _in(candidate, trusted):
            return candidate
    return peer


@dataclass
class RateLimiter:
    """The per-client and per-address buckets of one process, and the metric of refusals."""

    settings: RateLimitSettings
    metrics: Metrics
    trusted_proxies: tuple[IPNetwork, ...] = field(init=False)
    clients: TokenBuckets = field(init=False)
    addresses: TokenBuckets = field(init=False)

    def __post_init__(self) -> None:
        s = self.settings
        self.trusted_proxies = _networks(s.trusted_proxies)
        self.clients = TokenBuckets(s.per_client_rate, s.per_client_burst, max_buckets=s.max_buckets)
        self.addresses = TokenBuckets(s.per_address_rate, s.per_address_burst, max_buckets=s.max_buckets)
        self.refused = self.metrics.counter(
            "gatehouse_rate_limited",
            "Unsigned calls refused with TooManyRequestsException, by operation and limit (client or address).",
            ["operation", "limit"],
        )

    def address_of(self, peer: str | None, headers: CIMultiDictProxy[str]) -> str | None:
        """The caller's address (see ``source_address``). Every ``X-Forwarded-For`` line is read, joined in
        order: a proxy may add a line of its own rather than append to the client's (RFC 9110 §5.3: several
        lines of a field are one list), and reading the first alone would take the client's own choice."""
        if not self.trusted_proxies:
            return peer
        return source_address(peer, ",".join(headers.getall("X-Forwarded-For", ())), self.trusted_proxies)

    def check(self, operation: str, params: Mapping[str, object], address: str | None) -> None:
        """Take a token for the call's address, then for its client, or raise TooManyRequestsException. The
        address first: a flood from one address is refused before any of its ClientIds is kept."""
        if address is not None and self.addresses.enabled and not self.addresses.take(address):
            self.metrics.inc(self.refused, operation=operation, limit="address")
            raise TooManyRequestsException("Rate exceeded for this source address.")
        client_id = params.get("ClientId")
        if isinstance(client_id, str) and self.clients.enabled and not self.clients.take(client_key(client_id)):
            self.metrics.inc(self.refused, operation=operation, limit="client")
            raise TooManyRequestsException("Rate exceeded for this app client.")
