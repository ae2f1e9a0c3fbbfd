"""Verification of AWS Signature Version 4 (SigV4) requests, the way AWS services verify them.

Admin calls (and, later, calls made with temporary credentials from our own STS) arrive signed by an AWS
SDK. This module recomputes the signature from the request as received and compares it with the one the
client sent. The algorithm is AWS's, from "Signature Version 4 signing process" in the AWS General
Reference / IAM User Guide ("Create a signed AWS API request", "Elements of an AWS API request
signature", "Authentication methods: query parameters"):

    CanonicalRequest = Method \\n CanonicalURI \\n CanonicalQueryString \\n CanonicalHeaders \\n
                       SignedHeaders \\n HexEncode(SHA256(payload))
    StringToSign     = "AWS4-HMAC-SHA256" \\n X-Amz-Date \\n <date>/<region>/<service>/aws4_request \\n
                       HexEncode(SHA256(CanonicalRequest))
    SigningKey       = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")
    Signature        = HexEncode(HMAC(SigningKey, StringToSign))

The spec leaves room for interpretation in a few places (path encoding, '+' in queries, whitespace in
header values); where it does, this module does exactly what botocore's signer (``botocore.auth.SigV4Auth``
and ``SigV4QueryAuth``; for a credential scoped to ``s3``, ``S3SigV4Auth`` and ``S3SigV4QueryAuth``) does,
since boto3 is the client Gatehouse must accept unchanged. Both forms are accepted: the ``Authorization:
AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`` header, and the presigned URL
(``X-Amz-Algorithm``, ``X-Amz-Credential``, ``X-Amz-Date``, ``X-Amz-SignedHeaders``, ``X-Amz-Expires``,
``X-Amz-Signature`` query parameters).

The module is pure (no I/O, no aiohttp): a wire turns its request into a :class:`SignedRequest`, giving the
path and query string exactly as they were on the wire (for aiohttp: ``request.raw_path`` split at the
first ``?``; not ``request.path``, which is percent-decoded). Errors are the classes of
:mod:`gateway.errors`, worded as AWS words them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Final
from urllib.parse import quote, quote_from_bytes, unquote_to_bytes

from gateway.errors import (
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
)

__all__ = ["SigV4Identity", "SignedRequest", "has_signature", "verify_sigv4"]

ALGORITHM: Final = "AWS4-HMAC-SHA256"
TERMINATOR: Final = "aws4_request"
UNSIGNED_PAYLOAD: Final = "UNSIGNED-PAYLOAD"
# S3's aws-chunked upload whose chunks are not signed, a checksum trailing them (the AWS SDKs' default for an S3
# upload over https: "STREAMING-UNSIGNED-PAYLOAD-TRAILER", Amazon S3 API Reference, "Signature Calculations for
# the Authorization Header"): unsigned as UNSIGNED-PAYLOAD is, for S3 only.
UNSIGNED_PAYLOAD_TRAILER: Final = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
# AWS caps presigned URLs at seven days (X-Amz-Expires in seconds), and a URL lives at least one second.
MAX_PRESIGNED_EXPIRES: Final = 7 * 24 * 3600
MIN_PRESIGNED_EXPIRES: Final = 1
# The one service whose SigV4 differs: S3 signs the path as sent (neither normalised nor encoded again), a
# presigned URL signs the payload as UNSIGNED-PAYLOAD, and any request may leave its body unsigned
# (Amazon S3 API Reference, "Signature Calculations for the Authorization Header" and "... Query Parameters").
S3_SERVICE: Final = "s3"

_AMZ_DATE_FORMAT: Final = "%Y%m%dT%H%M%SZ"
_AMZ_DATE_RE: Final = re.compile(r"\d{8}T\d{6}Z")
_DIGITS_RE: Final = re.compile(r"\d{1,10}")
# RFC 3986 unreserved characters besides ALPHA / DIGIT: the only ones SigV4 leaves unencoded in the
# canonical query string (``quote`` always leaves ALPHA, DIGIT and '_.-~'; listed for clarity).
_QUERY_SAFE: Final = "-_.~"
# In the canonical URI '/' separates segments and stays; botocore also keeps '~' (``safe='/~'``).
_PATH_SAFE: Final = "/~"

# The presigned form's parameter names. AWS matches them case-sensitively, and so does botocore.
_Q_ALGORITHM: Final = b"X-Amz-Algorithm"
_Q_CREDENTIAL: Final = b"X-Amz-Credential"
_Q_DATE: Final = b"X-Amz-Date"
_Q_SIGNED_HEADERS: Final = b"X-Amz-SignedHeaders"
_Q_SIGNATURE: Final = b"X-Amz-Signature"
_Q_EXPIRES: Final = b"X-Amz-Expires"
_Q_SECURITY_TOKEN: Final = b"X-Amz-Security-Token"

_AMZ_HEADER_PREFIX: Final = "x-amz-"
# The one x-amz-* header a client never sends: CloudFront adds X-Amz-Cf-Id to every request it forwards to
# an origin, after the client signed it (a service behind CloudFront forwards it to /gatehouse/verify).
_UNSIGNABLE: Final = frozenset({"x-amz-cf-id"})
# The years an HTTP date can name in the 4-digit YYYY of the ISO 8601 basic format the StringToSign carries.
_MIN_YEAR: Final = 1000
_MAX_YEAR: Final = 9999


@dataclass(frozen=True)
class SignedRequest:
    """A request as it was received, in the terms SigV4 needs."""

    method: str
    path: str  # the raw path as sent on the wire (percent-encoded as received)
    query_string: str  # the raw query string, without '?'
    # Any capitalisation; looked up case-insensitively. When a header repeats, the caller joins the values
    # with ',' (an aiohttp CIMultiDict may also be passed as is: repeated keys are joined the same way).
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class SigV4Identity:
    """Who signed a request that verified, and for which region and service."""

    access_key_id: str
    region: str
    service: str
    # X-Amz-Security-Token (header, or query for a presigned URL): temporary credentials. Only carried
    # here; checking that it belongs to access_key_id is the caller's job.
    security_token: str | None


@dataclass(frozen=True)
class _Credential:
    access_key_id: str
    date: str  # YYYYMMDD
    region: str
    service: str

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/{TERMINATOR}"


@dataclass(frozen=True)
class _Signature:
    """What the client claims, from either the Authorization header or the presigned query."""

    credential: _Credential
    signed_headers: tuple[str, ...]
    signature: str
    amz_date: str  # the request's time in ISO 8601 basic format, as it enters the StringToSign
    expires: int | None  # presigned only: X-Amz-Expires, seconds
    presigned: bool
    security_token: str | None


def has_signature(request: SignedRequest) -> bool:
    """Whether the request carries a SigV4 signature at all: an Authorization header or X-Amz-Signature."""
    if _normalise_headers(request.headers).get("authorization") is not None:
        return True
    return any(key == _Q_SIGNATURE for key, _ in _parse_query(request.query_string))


def verify_sigv4(
    request: SignedRequest,
    lookup_secret: Callable[[str], str | None],
    *,
    now: datetime | None = None,
    max_skew: timedelta = timedelta(minutes=5),
    expected_service: str | None = None,
    allow_unsigned_payload: bool = False,
    regions: Collection[str] | None = None,
) -> SigV4Identity:
    """Verify the request's SigV4 signature and return who signed it.

    ``lookup_secret`` maps an access key id to its secret access key (``None`` if unknown). ``now`` (an
    aware datetime; a naive one is taken as UTC) defaults to the current time. Raises
    MissingAuthenticationTokenException, IncompleteSignatureException, UnrecognizedClientException or
    InvalidSignatureException. ``regions``: the regions the credential scope may name (any when ``None``).
    """
    headers = _normalise_headers(request.headers)
    query = _parse_query(request.query_string)
    query_keys = {key for key, _ in query}
    auth_header = headers.get("authorization")
    # X-Amz-Algorithm alone also counts as an attempt at the presigned form, so that a URL missing only
    # its signature gets a precise IncompleteSignatureException rather than "Missing Authentication Token".
    presigned = _Q_SIGNATURE in query_keys or _Q_ALGORITHM in query_keys

    if auth_header is None and not presigned:
        raise MissingAuthenticationTokenException()
    if auth_header is not None and presigned:
        # Two signatures over one request would leave it ambiguous which one was checked.
        raise IncompleteSignatureException(
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
            "Signature query string parameter or the Authorization header should be specified"
        )
    if auth_header is not None:
        claimed = _parse_authorization_header(auth_header, headers)
    else:
        claimed = _parse_presigned_query(query, headers)

    if "host" not in claimed.signed_headers:
        # Without a signed Host, a request signed for one endpoint could be replayed against another.
        raise IncompleteSignatureException("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
    credential = claimed.credential
    if credential.date != claimed.amz_date[:8]:
        raise InvalidSignatureException(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
            f"'{credential.date}' != '{claimed.amz_date[:8]}', from '{claimed.amz_date}'."
        )
    if expected_service is not None and credential.service != expected_service:
        raise InvalidSignatureException(f"Credential should be scoped to correct service: '{expected_service}'.")
    if regions is not None and credential.region not in regions:
        # AWS refuses a signature scoped to a region the endpoint does not serve, whatever the signature.
        raise InvalidSignatureException(f"Credential should be scoped to a valid region, not '{credential.region}'.")

    _check_time(claimed, _utc(now) if now is not None else datetime.now(UTC), max_skew)

    secret = lookup_secret(credential.access_key_id)
    if secret is None:
        raise UnrecognizedClientException()

    s3 = credential.service == S3_SERVICE
    body_hash = hashlib.sha256(request.body).hexdigest()
    # botocore puts the x-amz-content-sha256 header's value, when there is one, into the canonical request
    # in place of the body's hash; the signature then covers the header, not the body. So the header must
    # also be checked against the body, or a signed request's body could be swapped in transit.
    declared_hash = headers.get("x-amz-content-sha256")
    if declared_hash == UNSIGNED_PAYLOAD and not (allow_unsigned_payload or s3):
        # The JSON and query protocols always sign the body: a signature that leaves it out would let the
        # body of a captured request be replaced while the signature stays valid. Only S3 allows it.
        raise InvalidSignatureException("UNSIGNED-PAYLOAD is not accepted: the request body must be signed.")
    unsigned_payloads = (UNSIGNED_PAYLOAD, UNSIGNED_PAYLOAD_TRAILER) if s3 else (UNSIGNED_PAYLOAD,)
    if declared_hash is not None and declared_hash not in (*unsigned_payloads, body_hash):
        raise InvalidSignatureException("The provided 'x-amz-content-sha256' header does not match what was computed.")
    if declared_hash is not None:
        payload_hash = declared_hash
    elif s3 and claimed.presigned:
        # An S3 presigned URL is made before any body exists: it signs this constant, never sent.
        payload_hash = UNSIGNED_PAYLOAD
    else:
        payload_hash = body_hash

    canonical_request = "\n".join(
        [
            request.method.upper(),
            (request.path or "/") if s3 else _canonical_uri(request.path),
            _canonical_query_string(query, drop_signature=claimed.presigned),
            _canonical_headers(claimed.signed_headers, headers) + "\n",
            ";".join(claimed.signed_headers),
            payload_hash,
        ]
    )
    string_to_sign = "\n".join(
        [
            ALGORITHM,
            claimed.amz_date,
            credential.scope,
            hashlib.sha256(canonical_request.encode("utf-8", "surrogateescape")).hexdigest(),
        ]
    )
    expected = hmac.digest(
        _signing_key(secret, credential), string_to_sign.encode("utf-8", "surrogateescape"), "sha256"
    ).hex()
    # Constant-time: a byte-by-byte early exit would let a client learn the signature one byte at a time.
    provided = claimed.signature.encode("utf-8", "surrogateescape")
    if not hmac.compare_digest(expected.encode("ascii"), provided):
        raise InvalidSignatureException()
    unsigned = sorted(
        name
        for name in headers
        if name.startswith(_AMZ_HEADER_PREFIX) and name not in claimed.signed_headers and name not in _UNSIGNABLE
    )
    if unsigned:
        # "Any x-amz-* headers that you plan to include in your request must also be added" to the signed
        # headers (IAM User Guide, "Create a signed AWS API request"); botocore signs them all. An unsigned
        # one could be added or changed in transit: X-Amz-Target names the operation on the JSON wires, so
        # a signed DescribeUserPool would otherwise replay as DeleteUserPool. Checked once the signature
        # matched: a request changed in transit fails as any other does (InvalidSignatureException).
        raise IncompleteSignatureException(
            f"SignedHeaders must include {', '.join(unsigned)}: every x-amz-* header of the request must be signed."
        )

    return SigV4Identity(
        access_key_id=credential.access_key_id,
        region=credential.region,
        service=credential.service,
        security_token=claimed.security_token,
    )


# --- parsing what the client claims --------------------------------------------------------------------


def _parse_authorization_header(value: str, headers: Mapping[str, str]) -> _Signature:
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        # Not echoed: a header that is not SigV4 may well be a bearer token or a password.
        raise IncompleteSignatureException(
            f"Authorization header requires the '{ALGORITHM}' algorithm (AWS Signature Version 4)."
        )

    params: dict[str, str] = {}
    for component in rest.split(","):
        component = component.strip()
        if not component:
            continue
        key, sep, param = component.partition("=")
        if not sep:
            # AWS's wording; it hashes the header instead of echoing it.
            digest = base64.b64encode(hashlib.sha256(value.encode("utf-8", "surrogateescape")).digest())
            raise IncompleteSignatureException(
                "Invalid key=value pair (missing equal-sign) in Authorization header "
                f"(hashed with SHA-256 and encoded with Base64): '{digest.decode('ascii')}'."
            )
        if key.strip() in params:
            raise IncompleteSignatureException(
                f"Authorization header has a duplicate '{key.strip()}' parameter. Authorization={value}"
            )
        params[key.strip()] = param.strip()

    # AWS lists every missing piece at once, then the header (which holds the access key id and the
    # signature, never the secret key).
    problems = [
        f"Authorization header requires '{name}' parameter."
        for name in ("Credential", "Signature", "SignedHeaders")
        if not params.get(name)
    ]
    amz_date = _date_from_headers(headers)
    if amz_date is None:
        problems.append("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
    if problems or amz_date is None:
        raise IncompleteSignatureException(" ".join([*problems, f"Authorization={value}"]))

    return _Signature(
        credential=_parse_credential(params["Credential"]),
        signed_headers=_parse_signed_headers(params["SignedHeaders"]),
        signature=params["Signature"],
        amz_date=amz_date,
        expires=None,
        presigned=False,
        security_token=headers.get("x-amz-security-token"),
    )


def _parse_presigned_query(query: list[tuple[bytes, bytes]], headers: Mapping[str, str]) -> _Signature:
    values: dict[bytes, str] = {}
    for key, raw in query:
        if key in values and key.startswith(b"X-Amz-"):
            # Two different credentials or signatures in one URL: refuse rather than pick one.
            raise IncompleteSignatureException(
                f"AWS query-string parameter '{key.decode('ascii', 'replace')}' must appear only once."
            )
        values.setdefault(key, raw.decode("utf-8", "replace"))

    for name in (_Q_ALGORITHM, _Q_CREDENTIAL, _Q_SIGNATURE, _Q_SIGNED_HEADERS, _Q_DATE):
        if not values.get(name):
            raise IncompleteSignatureException(
                f"AWS query-string parameters must include '{name.decode('ascii')}'. "
                "Re-examine the query-string parameters."
            )
    if values[_Q_ALGORITHM] != ALGORITHM:
        raise IncompleteSignatureException(
            f'X-Amz-Algorithm only supports "{ALGORITHM}"; got "{values[_Q_ALGORITHM]}".'
        )
    amz_date = _parse_amz_date(values[_Q_DATE])

    expires: int | None = None
    raw_expires = values.get(_Q_EXPIRES)
    if raw_expires is not None:
        if not _DIGITS_RE.fullmatch(raw_expires):
            raise IncompleteSignatureException("X-Amz-Expires should be a number")
        expires = int(raw_expires)
        if expires < MIN_PRESIGNED_EXPIRES:
            raise IncompleteSignatureException("X-Amz-Expires must be at least 1 second")
        if expires > MAX_PRESIGNED_EXPIRES:
            raise IncompleteSignatureException(
                f"X-Amz-Expires must be less than a week (in seconds) that is {MAX_PRESIGNED_EXPIRES}"
            )

    return _Signature(
        credential=_parse_credential(values[_Q_CREDENTIAL]),
        signed_headers=_parse_signed_headers(values[_Q_SIGNED_HEADERS]),
        signature=values[_Q_SIGNATURE],
        amz_date=amz_date,
        expires=expires,
        presigned=True,
        security_token=values.get(_Q_SECURITY_TOKEN, headers.get("x-amz-security-token")),
    )


def _parse_credential(value: str) -> _Credential:
    parts = value.split("/")
    if len(parts) != 5 or not all(parts):
        raise IncompleteSignatureException(
            "Credential must have exactly 5 slash-delimited elements, "
            f"e.g. keyid/date/region/service/term, got '{value}'"
        )
    access_key_id, date, region, service, terminator = parts
    if terminator != TERMINATOR:
        raise IncompleteSignatureException(
            f"Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{terminator}'."
        )
    if not re.fullmatch(r"\d{8}", date):
        raise IncompleteSignatureException(f"Credential should be scoped to a valid date (YYYYMMDD), not '{date}'.")
    return _Credential(access_key_id=access_key_id, date=date, region=region, service=service)


def _parse_signed_headers(value: str) -> tuple[str, ...]:
    names = value.split(";")
    if not all(name.strip() for name in names):
        raise IncompleteSignatureException(f"SignedHeaders has an empty header name: '{value}'.")
    # Lower-cased, de-duplicated and sorted, as botocore builds the list (signed_headers()); for a
    # conforming client this is the list exactly as sent.
    return tuple(sorted({name.strip().lower() for name in names}))


def _date_from_headers(headers: Mapping[str, str]) -> str | None:
    """The request time, ISO 8601 basic format: X-Amz-Date, else the HTTP Date header (the spec's order)."""
    amz_date = headers.get("x-amz-date")
    if amz_date is not None:
        return _parse_amz_date(amz_date.strip())
    http_date = headers.get("date")
    if http_date is None:
        return None
    # botocore, when the request has a Date header, sends it in RFC 7231 form and signs the same instant
    # in basic format (the StringToSign always carries the basic format).
    try:
        # OverflowError: an instant that moves out of datetime's range once taken to UTC, e.g. year 9999
        # at -2359.
        moment = _utc(parsedate_to_datetime(http_date))
    except (TypeError, ValueError, IndexError, OverflowError):
        moment = None
    if moment is None or not _MIN_YEAR <= moment.year <= _MAX_YEAR:
        # A year of fewer than four digits would be formatted unpadded, and match no credential scope.
        raise IncompleteSignatureException(
            f"Date must be an HTTP date (RFC 7231) or X-Amz-Date must be given. Got '{http_date}'."
        )
    return moment.strftime(_AMZ_DATE_FORMAT)


def _parse_amz_date(value: str) -> str:
    if not _AMZ_DATE_RE.fullmatch(value):
        raise IncompleteSignatureException(
            f"Date must be in ISO-8601 'basic format'. Got '{value}'. See http://en.wikipedia.org/wiki/ISO_8601"
        )
    try:
        _amz_datetime(value)
    except ValueError:  # the right shape but no such instant, e.g. month 13
        raise IncompleteSignatureException(
            f"Date must be in ISO-8601 'basic format'. Got '{value}'. See http://en.wikipedia.org/wiki/ISO_8601"
        ) from None
    return value


# --- time ---------------------------------------------------------------------------------------------


def _check_time(claimed: _Signature, now: datetime, max_skew: timedelta) -> None:
    signed_at = _amz_datetime(claimed.amz_date)
    now_text = now.strftime(_AMZ_DATE_FORMAT)
    skew_text = _duration_text(max_skew)

    # A presigned URL is meant to be used later, up to X-Amz-Expires after signing; a header-signed
    # request is used at once, so only clock skew is allowed in the past. Either way a signature from the
    # future (beyond the skew) is refused: it would stay valid longer than its signer intended.
    if signed_at > now + max_skew:
        raise InvalidSignatureException(
            f"Signature not yet current: {claimed.amz_date} is still later than "
            f"{(now + max_skew).strftime(_AMZ_DATE_FORMAT)} ({now_text} + {skew_text}.)"
        )
    if claimed.presigned and claimed.expires is not None:
        lifetime = timedelta(seconds=claimed.expires)
        if now > signed_at + lifetime:
            raise InvalidSignatureException(
                f"Signature expired: {claimed.amz_date} is now earlier than "
                f"{(now - lifetime).strftime(_AMZ_DATE_FORMAT)} ({now_text} - {claimed.expires} sec.)"
            )
        return
    if signed_at < now - max_skew:
        raise InvalidSignatureException(
            f"Signature expired: {claimed.amz_date} is now earlier than "
            f"{(now - max_skew).strftime(_AMZ_DATE_FORMAT)} ({now_text} - {skew_text}.)"
        )


def _amz_datetime(value: str) -> datetime:
    """``YYYYMMDDTHHMMSSZ`` (already matched by _AMZ_DATE_RE) as an aware UTC datetime; ValueError for a
    shape that names no instant. Sliced by hand: ``strptime`` costs more than the rest of the parsing."""
    return datetime(
        int(value[0:4]), int(value[4:6]), int(value[6:8]), int(value[9:11]), int(value[11:13]), int(value[13:15]),
        tzinfo=UTC,
    )  # fmt: skip


def _duration_text(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} sec"


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


# --- the canonical request ----------------------------------------------------------------------------


def _normalise_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Lower-cased names; repeated names (a multidict, or two spellings of one name) joined with ','."""
    normalised: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        normalised[key] = f"{normalised[key]},{value}" if key in normalised else value
    return normalised


def _parse_query(query_string: str) -> list[tuple[bytes, bytes]]:
    """Split the raw query into percent-decoded (name, value) byte pairs, keeping repeats and order.

    '+' is decoded as a space: botocore puts ``request.params`` on the wire with ``urlencode`` (form
    encoding, space -> '+', '+' -> '%2B') but signs them RFC 3986-encoded (space -> '%20'), so only
    decoding '+' as a space and re-encoding yields what it signed. Bytes rather than str so that
    percent-escapes that are not UTF-8 survive the round trip unchanged.
    """
    pairs: list[tuple[bytes, bytes]] = []
    for component in query_string.split("&"):
        if not component:
            continue  # "a=1&&b=2" or a trailing '&': no parameter there
        name, _, value = component.partition("=")
        pairs.append((_unquote_plus_bytes(name), _unquote_plus_bytes(value)))
    return pairs


def _unquote_plus_bytes(text: str) -> bytes:
    return unquote_to_bytes(text.replace("+", " ").encode("utf-8", "surrogateescape"))


def _canonical_query_string(query: list[tuple[bytes, bytes]], *, drop_signature: bool) -> str:
    # Names and values URI-encoded (RFC 3986 unreserved chars left alone, everything else %XX with
    # upper-case hex), then sorted by name and, for a repeated name, by value; sorting the encoded form,
    # as botocore does. A presigned URL's own X-Amz-Signature is not part of what it signs.
    encoded = sorted(
        (quote_from_bytes(name, safe=_QUERY_SAFE), quote_from_bytes(value, safe=_QUERY_SAFE))
        for name, value in query
        if not (drop_signature and name == _Q_SIGNATURE)
    )
    return "&".join(f"{name}={value}" for name, value in encoded)


def _canonical_uri(raw_path: str) -> str:
    # botocore (non-S3): remove dot segments and empty segments from the path as it is on the wire, then
    # URI-encode it (keeping '/' and '~'). The wire path is already percent-encoded once, so segments end
    # up encoded twice, as the spec requires for every service but S3 ('%20' becomes '%2520').
    normalised = _remove_dot_segments(raw_path) if raw_path else "/"
    return quote(normalised.encode("utf-8", "surrogateescape"), safe=_PATH_SAFE)


def _remove_dot_segments(path: str) -> str:
    # RFC 3986 §5.2.4, plus collapsing '//' (AWS services want consecutive slashes removed); a copy of
    # botocore.utils.remove_dot_segments so the two can never disagree.
    output: list[str] = []
    for segment in path.split("/"):
        if not segment or segment == ".":
            continue
        if segment == "..":
            if output:
                output.pop()
        else:
            output.append(segment)
    first = "/" if path.startswith("/") else ""
    last = "/" if path.endswith("/") and output else ""
    return first + "/".join(output) + last


def _canonical_headers(signed_headers: tuple[str, ...], headers: Mapping[str, str]) -> str:
    # name:value, lower-case names in sorted order; values trimmed and inner runs of whitespace collapsed
    # to one space (str.split() with no argument, exactly as botocore's _header_value does). A signed
    # header the request lacks is signed as empty, which can only fail to match.
    return "\n".join(f"{name}:{' '.join(headers.get(name, '').split())}" for name in signed_headers)


def _signing_key(secret: str, credential: _Credential) -> bytes:
    # Region and service come from the client's header; "surrogateescape" keeps stray non-UTF-8 bytes
    # (as aiohttp decodes them) from raising instead of simply failing to match.
    # hmac.digest: the one-shot C implementation, several times cheaper than hmac.new(...).digest().
    key = hmac.digest(f"AWS4{secret}".encode(), credential.date.encode("ascii"), "sha256")
    for part in (credential.region, credential.service, TERMINATOR):
        key = hmac.digest(key, part.encode("utf-8", "surrogateescape"), "sha256")
    return key
