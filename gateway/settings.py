"""Server settings: what `gatehouse serve` is started with.

Settings come from the command line, the environment and the ``server:`` section of the config file, in
that order of precedence. Secrets are wrapped in :class:`Secret` so they never show up in a repr or a log.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from gateway.services.code_limits import CodeSendLimitSettings
from gateway.services.custom_sender import KmsSettings
from gateway.services.front_door import FrontDoorApp
from gateway.services.passwords import Argon2Params
from gateway.services.ratelimit import RateLimitSettings
from gateway.services.triggers import LambdaSettings


class Secret:
    """A string whose repr hides the value (Starlette's ``Secret``)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def postgres_url_problem(url: str) -> str | None:
    """What is wrong with a database URL, or None (libpq's URI form: postgresql://user:password@host/database,
    with several ``host:port`` separated by commas; PostgreSQL's "Connection URIs"). The problem is said without
    the URL, which holds a password: a port or a host the driver cannot read was a traceback."""
    if not url.startswith(("postgresql://", "postgres://")):
        return "expected a PostgreSQL URL (postgresql://user:password@host:port/database)"
    hosts = url.partition("://")[2].partition("/")[0].partition("?")[0].rpartition("@")[2]
    for host in hosts.split(","):
        if host.startswith("["):
            address, closed, port = host[1:].partition("]")
            if not closed or not address or (port and not port.startswith(":")):
                return "expected an IPv6 address in brackets ([::1]:5432) after the @"
            port = port[1:]
        else:
            port = host.partition(":")[2]
        if port and not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
            return "expected a port number from 1 to 65535 after each host"
    return None


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 25
    username: str | None = None
    password: Secret | None = None
    use_tls: bool = False
    start_tls: bool | None = None
    timeout: float = 10.0


@dataclass(frozen=True)
class SmsWebhookSettings:
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float = 10.0


@dataclass(frozen=True)
class Settings:
    """Everything a running Gatehouse needs to know about its deployment."""

    data_dir: Path = Path(".gatehouse")
    host: str = "127.0.0.1"
    port: int = 9229
    public_url: str | None = None
    workers: int = 1
    region: str = "us-east-1"
    account_id: str = "000000000000"
    admin_access_key_id: str | None = None
    admin_secret_access_key: Secret | None = None
    database_path: Path | None = None
    # A PostgreSQL database shared by every Gatehouse server (gateway/storage/postgres); None: the SQLite file
    # under the data dir. Env GATEHOUSE_DATABASE_URL or the config file's server.database_url.
    database_url: Secret | None = None
    # The most connections each process keeps to that database (the config file's server.database_pool_size): a
    # database's own limit (PostgreSQL's max_connections, 100 by default) is shared by every process of every server.
    database_pool_size: int = 10
    argon2: Argon2Params = field(default_factory=Argon2Params)
    smtp: SmtpSettings | None = None
    sms_webhook: SmsWebhookSettings | None = None
    # Where user pools' Lambda triggers are invoked (config file server.lambda; gateway/services/triggers.py).
    lambda_invoke: LambdaSettings = field(default_factory=LambdaSettings)
    # Where custom sender triggers' codes are encrypted (config file server.kms; gateway/services/custom_sender.py).
    kms: KmsSettings = field(default_factory=KmsSettings)
    default_email_sender: str = "no-reply@verificationemail.com"
    max_body_bytes: int = 1024 * 1024
    config_path: Path | None = None
    # The apps behind the front door (the config file's front_door.apps).
    front_door: tuple[FrontDoorApp, ...] = ()
    log_json: bool = True
    log_level: str = "info"
    # How long a process trusts its cached signing keys before asking the store again, so that a key made by
    # `gatehouse keys rotate` (or another process) is used within this many seconds. Env GATEHOUSE_KEY_CACHE_SECONDS.
    key_cache_seconds: float = 60.0
    # The JWK Sets' Cache-Control max-age. A rotated key is published at once and signs only after this plus
    # key_cache_seconds (gateway/services/tokens.py SigningKeys). Env GATEHOUSE_JWKS_MAX_AGE_SECONDS.
    jwks_max_age_seconds: float = 300.0
    # Token buckets on unsigned calls, per app client and per source address (config file server.rate_limits).
    rate_limits: RateLimitSettings = field(default_factory=RateLimitSettings)
    # How long an OAuth authorization code may be redeemed (Cognito: 5 minutes). Env GATEHOUSE_OAUTH_CODE_SECONDS.
    oauth_code_seconds: float = 300.0
    # Identity pools' public login providers' endpoints (JSON, see gateway/services/social_logins.py), for a
    # local stand-in or a proxy. Env GATEHOUSE_SOCIAL_ENDPOINTS.
    social_endpoints: str | None = None
    # The per-user limit on SMS and email codes sent (config file server.code_send_limits).
    code_send_limits: CodeSendLimitSettings = field(default_factory=CodeSendLimitSettings)
    # How long a user import job's PreSignedUrl accepts its CSV file after CreateUserImportJob (an S3 pre-signed
    # URL's X-Amz-Expires). Env GATEHOUSE_USER_IMPORT_URL_SECONDS.
    user_import_url_seconds: float = 3600.0
    # The largest CSV file a user import job accepts: Cognito's limit, 100 MB. Env GATEHOUSE_USER_IMPORT_MAX_BYTES.
    user_import_max_bytes: int = 100 * 1000 * 1000
    # Free space the data directory's file system must keep for /health to answer 200: below it the store may
    # fail to write what it is given (SQLite: "database or disk is full"). Env GATEHOUSE_MIN_FREE_BYTES.
    min_free_bytes: int = 16 * 1024 * 1024
    # How long an upload to a PreSignedUrl may send nothing before it is cut off (S3's RequestTimeout), so that
    # a stalled client does not hold one of the uploads a process takes at once. Env
    # GATEHOUSE_USER_IMPORT_IDLE_SECONDS.
    user_import_idle_seconds: float = 60.0
    # Whether client ID metadata documents may be fetched from private, loopback and link-local addresses (a
    # development setup serving them on localhost); refused by default. Env GATEHOUSE_CIMD_PRIVATE_ADDRESSES=1.
    cimd_private_addresses: bool = False

    @property
    def issuer_base(self) -> str:
        """The scheme, host and port that token issuers start with (``iss`` = this + ``/{poolId}``)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "localhost" if self.host in ("0.0.0.0", "::", "") else self.host
        if ":" in host:
            host = f"[{host}]"  # an IPv6 address: bare, its colons would read as a port (RFC 3986 §3.2.2)
        return f"http://{host}:{self.port}"

    @property
    def database(self) -> Path:
        return self.database_path or self.data_dir / "gatehouse.db"


def admin_credentials_from_env(environ: os._Environ[str] | dict[str, str] | None = None) -> tuple[str, Secret] | None:
    env = os.environ if environ is None else environ
    key_id = env.get("GATEHOUSE_ADMIN_ACCESS_KEY_ID")
    secret = env.get("GATEHOUSE_ADMIN_SECRET_ACCESS_KEY")
    if key_id and secret:
        return key_id, Secret(secret)
    return None
