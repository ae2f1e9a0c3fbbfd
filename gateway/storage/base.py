"""The one Store protocol every backend implements, and the records it keeps.

Services own all behaviour; a store only keeps records and enforces the few invariants that must hold under
concurrent writers (unique usernames and aliases, single-use codes, one successor per refresh token,
optimistic versions). Those invariants are stated per method and checked by ``tests/storage/conformance.py``,
which every backend runs. Nothing here assumes SQLite: timestamps are float seconds since the epoch (UTC),
structured settings travel as JSON-compatible dicts, and every method is a single atomic unit of work.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

JSONDict = dict[str, Any]
T = TypeVar("T")


class StoreError(Exception):
    """Base of the store's own errors; services translate them into wire errors."""


class AlreadyExists(StoreError):
    """A unique key is taken. ``key`` names which: "id", "name", "username", or "alias:<attribute>"."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class VersionConflict(StoreError):
    """The record changed since it was read (optimistic concurrency); re-read and retry."""


class NotFound(StoreError):
    """The record to update or delete does not exist."""


# --- records --------------------------------------------------------------------------------------------


@dataclass
class PoolRecord:
    """A user pool. ``settings`` holds Cognito's UserPoolType members (Policies, Schema, ...) as JSON."""

    id: str
    name: str
    settings: JSONDict
    created_at: float
    updated_at: float
    version: int = 0


@dataclass
class ClientRecord:
    """An app client. ``settings`` holds Cognito's UserPoolClientType members except ClientSecret.

    ``secrets``: the client's active secrets once it was rotated (AddUserPoolClientSecret), oldest first, each
    ``{"id", "value", "created"}``; ``secret`` is then the first one's value. None: ``secret`` is the only one.
    """

    pool_id: str
    id: str
    name: str
    secret: str | None
    settings: JSONDict
    created_at: float
    updated_at: float
    version: int = 0
    secrets: list[JSONDict] | None = None


@dataclass(slots=True)
class UserRecord:
    """A user of a pool.

    ``username`` is the name as stored (and shown); ``username_key`` is what uniqueness and look-ups use
    (lower-cased when the pool's usernames are case-insensitive). ``aliases`` maps an alias attribute
    ("email", "phone_number", "preferred_username") to its normalised value; the store keeps each
    (pool, attribute, value) unique. ``secrets`` holds sealed credential material (SRP verifier, MFA secrets)
    that only services read; ``password_history`` holds earlier password hashes, newest first.
    """

    pool_id: str
    username: str
    username_key: str
    sub: str
    status: str
    enabled: bool
    attributes: dict[str, str]
    password_hash: str | None
    created_at: float
    updated_at: float
    password_updated_at: float | None = None
    temporary_password_expires_at: float | None = None
    tokens_valid_after: float = 0.0
    aliases: dict[str, str] = field(default_factory=dict)
    secrets: JSONDict = field(default_factory=dict)
    password_history: list[str] = field(default_factory=list)
    settings: JSONDict = field(default_factory=dict)
    version: int = 0


@dataclass(slots=True)
class GroupRecord:
    pool_id: str
    name: str
    description: str | None
    role_arn: str | None
    precedence: int | None
    created_at: float
    updated_at: float


@dataclass
class CodeRecord:
    """A one-time code (sign-up confirmation, password reset, attribute verification, ...).

    One live code per (pool, username_key, purpose): issuing a new one replaces the old. Only a hash of the
    code is kept. ``attempts`` counts wrong guesses so a code can be burned after too many.
    """

    pool_id: str
    username_key: str
    purpose: str
    code_hash: str
    expires_at: float
    attempts: int = 0
    data: JSONDict = field(default_factory=dict)


@dataclass
class AuthSessionRecord:
    """The server side of a challenge ``Session``: only its hash is the key."""

    session_hash: str
    pool_id: str
    client_id: str
    username_key: str
    state: JSONDict
    expires_at: float


@dataclass(slots=True)
class TokenFamilyRecord:
    """Every token minted from one authentication shares its ``origin_jti``; revoking it refuses them all."""

    origin_jti: str
    pool_id: str
    client_id: str
    username_key: str
    auth_time: float
    created_at: float
    expires_at: float
    revoked: bool = False
    # The scopes an OAuth grant gave the family (a refresh grants the same); None outside /oauth2/token.
    scopes: list[str] | None = None
    # What a user session's description reports (written with the family, and on refreshes while the pool
    # tracks sessions; read only by list_token_sessions, never on the hot paths): the latest activity, the
    # device and address it came from, and the hosted-UI session (its oauth_records key) it originated from.
    last_active_at: float | None = None
    device_type: str | None = None
    last_ip: str | None = None
    sso_key_hash: str | None = None
    # The device the family's sign-in came from (a device proof's key, or the NewDeviceMetadata key it was
    # handed; migration 0027): its refresh tokens are that device's. None: a family with no device, or one made
    # before 0027.
    device_key: str | None = None
    # What has become of ``device_key``: a device of the family's user (ConfirmDevice), or a forgotten key
    # (forget_device). Not stored: read with the family by get_refresh_token_with_user only, False elsewhere.
    device_confirmed: bool = False
    device_forgotten: bool = False


@dataclass(frozen=True)
class UsedCodeRecord:
    """The marker of a sealed authorization code that a failed redemption used up (:meth:`Store.burn_code`):
    its hash and the code's own expiry. ``origin_jti`` is None for those; markers written by earlier
    releases, whose redemptions left one too, name the token family the redemption started."""

    code_hash: str
    origin_jti: str | None
    expires_at: float


@dataclass(slots=True)
class RefreshTokenRecord:
    """An opaque refresh token, kept as a hash. ``replaced_by`` is set once when it is rotated."""

    token_hash: str
    origin_jti: str
    pool_id: str
    client_id: str
    username_key: str
    created_at: float
    expires_at: float
    replaced_by: str | None = None
    replaced_at: float | None = None
    data: JSONDict = field(default_factory=dict)


@dataclass
class SigningKeyRecord:
    """A pool's JWT signing key. ``private_jwk`` is sealed. Retired keys stay published until ``retired_at``
    plus the longest token lifetime has passed. ``token_use`` is "id" or "access": like Cognito, a pool signs
    its ID and access tokens with different keys, one active key for each."""

    pool_id: str
    kid: str
    private_jwk: str
    created_at: float
    active: bool
    retired_at: float | None = None
    token_use: str = "id"


@dataclass
class IdentityPoolRecord:
    """An identity pool. ``settings`` holds Cognito's IdentityPool members (all but id and name) and what
    SetIdentityPoolRoles / SetPrincipalTagAttributeMap set (Roles, RoleMappings, PrincipalTagAttributeMaps)."""

    id: str
    name: str
    settings: JSONDict
    created_at: float
    updated_at: float
    version: int = 0


@dataclass(frozen=True)
class IdentityLogin:
    """One login linked to an identity: the provider's key (as Logins names it) and the subject there."""

    provider: str
    subject: str


@dataclass
class IdentityRecord:
    """An identity of an identity pool, with the logins linked to it (none for a guest). ``disabled``: the
    last login was unlinked, so no login reaches it any more."""

    pool_id: str
    id: str
    created_at: float
    updated_at: float
    disabled: bool = False
    logins: list[IdentityLogin] = field(default_factory=list)


@dataclass
class OAuthRecord:
    """A short-lived record of the OAuth 2.0 provider, kept under (``kind``, ``key_hash``): an authorization
    request, an authorization code, a single sign-on session, the grant behind a token family. ``key_hash``
    is the SHA-256 of what the holder presents. ``used_at`` is set by the first use (use_oauth_record);
    ``replayed`` by any later one."""

    kind: str
    key_hash: str
    pool_id: str
    client_id: str
    username_key: str
    data: JSONDict
    expires_at: float
    used_at: float | None = None
    replayed: bool = False


@dataclass
class DomainRecord:
    """A user pool domain: a prefix (``myapp``) or a custom domain (``auth.example.com``). ``settings``
    holds CustomDomainConfig and the like as JSON."""

    domain: str
    pool_id: str
    settings: JSONDict
    created_at: float


@dataclass
class ResourceServerRecord:
    """A resource server of a pool: ``scopes`` is Cognito's list of {ScopeName, ScopeDescription}."""

    pool_id: str
    identifier: str
    name: str
    scopes: list[dict[str, str]]
    created_at: float
    updated_at: float


@dataclass
class UICustomizationRecord:
    """The hosted pages' CSS and logo for a pool (``client_id`` "ALL") or one client; ``image`` is base64."""

    pool_id: str
    client_id: str
    css: str | None
    image: str | None
    image_type: str | None
    created_at: float
    updated_at: float


@dataclass
class WebAuthnCredentialRecord:
    """A passkey a user registered (WebAuthn). ``credential_id`` and ``public_key`` (the COSE key) are
    base64url; ``sign_count`` is the authenticator's signature counter as last seen; ``transports`` are the
    authenticator's transport hints ("internal", "usb", ...)."""

    pool_id: str
    credential_id: str
    username_key: str
    public_key: str
    sign_count: int
    friendly_name: str
    relying_party: str
    attachment: str | None
    transports: list[str]
    created_at: float


@dataclass
class DeviceRecord:
    """A device a user confirmed (ConfirmDevice): Cognito's device tracking. ``verifier`` is the sealed SRP
    salt and verifier of the device's secret; ``remembered`` is the device's remembered status."""

    pool_id: str
    device_key: str
    username_key: str
    name: str | None
    remembered: bool
    verifier: str
    created_at: float
    updated_at: float
    last_authenticated_at: float | None = None
    last_ip: str | None = None


@dataclass
class RiskConfigurationRecord:
    """SetRiskConfiguration's members for a pool (``client_id`` None) or one of its app clients."""

    pool_id: str
    client_id: str | None
    config: JSONDict
    updated_at: float


@dataclass
class AuthEventRecord:
    """One sign-in (sign-up, password change, ...) of a user, with its risk assessment. ``event`` holds the
    AuthEventType members and the service's own notes (reasons, device and network keys) as JSON. Event ids
    sort by time: newest first is descending ``event_id``."""

    pool_id: str
    username_key: str
    event_id: str
    created_at: float
    event: JSONDict


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_token: str | None


# ListUsers' Filter ("Search attributes" in Cognito's ListUsers reference): the user fields a filter can name.
# Every backend keeps, for each user, the value of each field the user has (see user_search_values), as given
# and lower-cased, in an index, and answers list_users(where=...) from it rather than reading the pool whole.
SEARCHABLE_USER_FIELDS = (
    "username",
    "cognito:user_status",
    "status",
    "sub",
    "email",
    "phone_number",
    "name",
    "given_name",
    "family_name",
    "preferred_username",
)


# The longest prefix list_users(where=...) takes, in bytes of UTF-8: ListUsers' Filter is at most 256 characters
# (its value fewer), each at most four bytes, lower-cased too (str.lower makes no character longer than four).
# A longer one is the caller's error (ValueError), in every backend alike.
MAX_PREFIX_BYTES = 1024


@dataclass(frozen=True)
class UserSearch:
    """One ListUsers filter: users whose ``field`` (one of SEARCHABLE_USER_FIELDS) equals ``value``, or starts
    with it when ``prefix`` (a ``value`` of at most MAX_PREFIX_BYTES then); with ``folded`` the field's
    lower-cased form (``str.lower``) is compared, and ``value`` must be lower-cased already."""

    field: str
    value: str
    prefix: bool = False
    folded: bool = False


def user_search_values(user: UserRecord) -> dict[str, str]:
    """The searchable fields of ``user`` (those it has), as list_users(where=...) compares them."""
    return search_values(user.username, user.status, user.enabled, user.sub, user.attributes)


def search_values(username: str, status: str, enabled: bool, sub: str, attributes: Mapping[str, Any]) -> dict[str, str]:
    """:func:`user_search_values` from a user's parts (for a backend indexing rows it has not made records of)."""
    values = {
        "username": username,
        "cognito:user_status": status,
        "status": "Enabled" if enabled else "Disabled",
        "sub": sub,
    }
    for name in SEARCHABLE_USER_FIELDS[4:]:
        value = attributes.get(name)
        if isinstance(value, str):
            values[name] = value
    return values


# --- the protocol ---------------------------------------------------------------------------------------


class Store(Protocol):
    """Everything Gatehouse keeps. Each method is atomic; none holds a transaction across calls."""

    async def close(self) -> None: ...

    async def health_problem(self, min_free_bytes: int = 0) -> str | None:
        """None when the store can serve reads and writes that last; otherwise what is wrong, in words for
        the operator (``GET /health`` answers 503 with it). ``min_free_bytes``: the free space its files need
        (less is a full disk: writes would fail)."""
        ...

    # server-wide key/value settings (admin key pair, secret box key id, ...)
    async def get_meta(self, key: str) -> str | None: ...
    async def put_meta_if_absent(self, key: str, value: str) -> str:
        """Store ``value`` unless ``key`` is set; return what is stored (the first writer wins)."""
        ...

    # pools
    async def create_pool(self, pool: PoolRecord) -> None:
        """Raises AlreadyExists("id")."""
        ...

    async def get_pool(self, pool_id: str) -> PoolRecord | None: ...
    async def update_pool(self, pool: PoolRecord) -> PoolRecord:
        """Write if the stored version equals ``pool.version``; returns the record with version + 1.
        Raises VersionConflict, NotFound."""
        ...

    async def delete_pool(self, pool_id: str) -> bool:
        """Deletes the pool and everything in it (clients, users, groups, codes, tokens, keys)."""
        ...

    async def list_pools(self, after: str | None, limit: int) -> Page[PoolRecord]:
        """Ordered by id; ``after`` is the last id of the previous page."""
        ...

    # clients
    async def create_client(self, client: ClientRecord) -> None: ...
    async def get_client(self, client_id: str) -> ClientRecord | None: ...
    async def update_client(self, client: ClientRecord) -> ClientRecord:
        """Version-checked like update_pool."""
        ...

    async def delete_client(self, pool_id: str, client_id: str) -> bool:
        """Deletes the client and, in the same transaction, revokes every token family of it (its tokens are
        refused from then on, as if each were revoked), the families of the client ID metadata document clients
        signed in under it included (``app_client_id`` of :meth:`create_token_family`). False if the pool has no
        such client."""
        ...

    async def list_clients(self, pool_id: str, after: str | None, limit: int) -> Page[ClientRecord]: ...

    # users
    async def create_user(
        self,
        user: UserRecord,
        *,
        free_aliases: Collection[tuple[str, str]] = (),
        free_usernames: Collection[str] = (),
    ) -> None:
        """Raises AlreadyExists("username") or AlreadyExists("alias:<attr>"); writes nothing then. Also
        AlreadyExists("username") when a user holds one of ``free_aliases`` ((attribute, value) pairs), and
        AlreadyExists("alias:preferred_username") when another user has one of the username keys
        ``free_usernames``: checked atomically with the insert, so that a username and another user's
        preferred_username written at once cannot both be taken."""
        ...

    async def get_user(self, pool_id: str, username_key: str) -> UserRecord | None: ...
    async def get_user_with_groups(
        self, pool_id: str, username_key: str
    ) -> tuple[UserRecord, list[GroupRecord]] | None:
        """The user and the user's groups (as list_groups_for_user orders them), in one read: what a password
        sign-in needs before it issues tokens."""
        ...

    async def get_user_by_sub(self, pool_id: str, sub: str) -> UserRecord | None: ...
    async def get_user_by_alias(self, pool_id: str, attribute: str, value: str) -> UserRecord | None: ...
    async def update_user(self, user: UserRecord, *, free_usernames: Collection[str] = ()) -> UserRecord:
        """Version-checked; re-writes the alias index from ``user.aliases``. Raises VersionConflict,
        NotFound, AlreadyExists("alias:<attr>"); AlreadyExists("alias:preferred_username") too when a user
        other than ``user`` has one of the username keys ``free_usernames`` (checked atomically with the
        write, as in :meth:`create_user`)."""
        ...

    async def delete_user(self, pool_id: str, username_key: str) -> bool:
        """Also drops the user's group memberships, codes, sessions, token families and refresh tokens."""
        ...

    async def list_users(
        self, pool_id: str, after: str | None, limit: int, *, where: UserSearch | None = None
    ) -> Page[UserRecord]:
        """Ordered by username_key; with ``where``, only the users it matches (found by an index, not a scan),
        a prefix's (``where.prefix``) ordered by the searched value, then username_key, so that a page costs its
        length whatever the pool's size (values alike in their first MAX_PREFIX_BYTES bytes may come in any order
        among themselves, each once: the PostgreSQL store's index keeps no more of a value)."""
        ...

    async def count_users(self, pool_id: str) -> int: ...

    # groups
    async def create_group(self, group: GroupRecord) -> None:
        """Raises AlreadyExists("name")."""
        ...

    async def get_group(self, pool_id: str, name: str) -> GroupRecord | None: ...
    async def update_group(self, group: GroupRecord) -> None: ...
    async def delete_group(self, pool_id: str, name: str) -> bool: ...
    async def list_groups(self, pool_id: str, after: str | None, limit: int) -> Page[GroupRecord]: ...
    async def count_groups(self, pool_id: str) -> int: ...
    async def add_user_to_group(self, pool_id: str, username_key: str, group: str) -> None:
        """Idempotent."""
        ...

    async def remove_user_from_group(self, pool_id: str, username_key: str, group: str) -> None: ...
    async def list_groups_for_user(self, pool_id: str, username_key: str) -> list[GroupRecord]: ...
    async def list_users_in_group(
        self, pool_id: str, group: str, after: str | None, limit: int
    ) -> Page[UserRecord]: ...

    # one-time codes
    async def put_code(self, code: CodeRecord) -> None:
        """Replaces any live code for the same (pool, username_key, purpose)."""
        ...

    async def get_code(self, pool_id: str, username_key: str, purpose: str) -> CodeRecord | None: ...
    async def consume_code(
        self, pool_id: str, username_key: str, purpose: str, code_hash: str, *, max_attempts: int | None = None
    ) -> bool:
        """Delete the code if its hash matches (and, with ``max_attempts``, if fewer failed attempts than that
        are counted on it, checked in the same atomic step); True for exactly one of any concurrent callers."""
        ...

    async def count_code_attempt(self, pool_id: str, username_key: str, purpose: str) -> int:
        """Add one failed attempt and return the new count (0 if there is no code)."""
        ...

    async def delete_code(self, pool_id: str, username_key: str, purpose: str) -> None: ...
    async def take_code_send(self, pool_id: str, key: str, now: float, expires_at: float, limit: int) -> bool:
        """Count one code sent to ``key`` until ``expires_at``, unless ``limit`` sends that have not expired by
        ``now`` are already counted; False (and nothing counted) then. Atomic across concurrent callers and
        processes: of racing callers at most ``limit`` win. Raises NotFound when the pool does not exist."""
        ...

    async def return_code_send(self, pool_id: str, key: str, sent_at: float) -> None:
        """Uncount one send counted for ``key`` by take_code_send at ``sent_at`` (its ``now``); none left is no
        error."""
        ...

    # challenge sessions
    async def put_auth_session(self, session: AuthSessionRecord) -> None: ...
    async def take_auth_session(self, session_hash: str) -> AuthSessionRecord | None:
        """Delete and return; a session answers one challenge response only."""
        ...

    # tokens
    async def create_token_family(
        self, family: TokenFamilyRecord, refresh: RefreshTokenRecord | None, *, app_client_id: str | None = None
    ) -> None:
        """Store a new family and its first refresh token, in one transaction. ``app_client_id``: the app client
        the family's tokens are issued under, which must still exist in the family's pool -- checked in that
        same transaction, so that no family is stored after its client's deletion (which revokes the client's
        families) has committed, whatever a process had cached of the client. Raises NotFound("client") then,
        and NotFound("pool")."""
        ...

    async def get_token_family(self, origin_jti: str) -> TokenFamilyRecord | None: ...
    async def get_token_family_with_user(self, origin_jti: str) -> tuple[TokenFamilyRecord, UserRecord | None] | None:
        """The family and the user it belongs to (None if the user is gone), in one read: what every
        token-authorised call needs."""
        ...

    async def revoke_token_family(self, origin_jti: str) -> bool: ...
    async def revoke_user_token_families(self, pool_id: str, username_key: str) -> int: ...
    async def list_token_sessions(self, pool_id: str, username_key: str, now: float) -> list[TokenFamilyRecord]:
        """A user's token sessions: the families with a refresh token that are neither revoked nor expired at
        ``now``, nor bound to a forgotten device, with their session columns, most recently active first."""
        ...

    async def touch_token_family(
        self, origin_jti: str, last_active_at: float, device_type: str | None, last_ip: str | None
    ) -> None:
        """Note a refresh of the family: its latest activity, device and address."""
        ...

    async def evict_token_sessions(
        self, pool_id: str, username_key: str, keep: int, now: float, spare: str | None = None
    ) -> list[str]:
        """Revoke the user's token sessions (as list_token_sessions finds them) beyond the ``keep`` most
        recently active, never the family ``spare`` (which does not count towards ``keep``); return the
        origin_jti of each family this call revoked."""
        ...

    async def get_refresh_token(self, token_hash: str) -> RefreshTokenRecord | None: ...
    async def get_refresh_token_with_user(
        self, token_hash: str
    ) -> tuple[RefreshTokenRecord, TokenFamilyRecord, UserRecord | None, list[GroupRecord]] | None:
        """The refresh token, its family (with ``device_confirmed`` and ``device_forgotten``), the user (None if the
        user is gone) and the user's groups (as list_groups_for_user orders them), in one read: everything a
        refresh needs."""
        ...

    async def bind_token_family_device(self, origin_jti: str, device_key: str) -> None:
        """Record the device a family's sign-in came from (its ``device_key``); nothing if there is no such
        family."""
        ...

    async def rotate_refresh_token(self, old_hash: str, new: RefreshTokenRecord, replaced_at: float) -> bool:
        """Mark ``old_hash`` replaced by ``new.token_hash`` and insert ``new``, only if ``old_hash`` was not
        replaced yet. True for exactly one of any concurrent callers; the others write nothing."""
        ...

    async def purge_expired(self, now: float) -> int:
        """Delete expired codes, sessions, refresh tokens and token families; return how many rows went. Also
        the file parts of user import jobs that ended (Expired, Succeeded, Failed, Stopped) are deleted: an
        import file holds personal data, kept no longer than its job needs it."""
        ...

    async def expire_unstarted_import_jobs(self, now: float) -> int:
        """Every user import job still Created UNSTARTED_IMPORT_JOB_SECONDS after its creation becomes Expired
        (its file then goes with the next :meth:`purge_expired`); returns how many this call expired, so that of
        concurrent callers each job is counted once."""
        ...

    # signing keys
    async def add_signing_key(self, key: SigningKeyRecord) -> None:
        """Inserts the key; if ``key.active`` the pool's other active key of the same ``token_use`` is made
        inactive (retired at ``key.created_at``)."""
        ...

    async def list_signing_keys(self, pool_id: str) -> list[SigningKeyRecord]:
        """Newest first."""
        ...

    async def delete_signing_key(self, pool_id: str, kid: str) -> None: ...

    # the OAuth 2.0 provider's short-lived records
    async def put_oauth_record(self, record: OAuthRecord) -> None:
        """Insert; raises AlreadyExists("id") if (kind, key_hash) is taken, NotFound("pool") without the pool."""
        ...

    async def get_oauth_record(self, kind: str, key_hash: str) -> OAuthRecord | None: ...
    async def get_oauth_record_with_user(
        self, kind: str, key_hash: str
    ) -> tuple[OAuthRecord, UserRecord | None] | None:
        """The record and the user it names (None if gone) in one read."""
        ...

    async def take_oauth_record(self, kind: str, key_hash: str) -> OAuthRecord | None:
        """Delete and return: of any concurrent callers, exactly one gets the record."""
        ...

    async def use_oauth_record(self, kind: str, key_hash: str, now: float) -> tuple[OAuthRecord, bool] | None:
        """Mark the record used. Returns it with True for the first use (exactly one of any concurrent
        callers, which set ``used_at = now``); any later call sets ``replayed`` and returns False."""
        ...

    async def burn_code(self, used: UsedCodeRecord) -> bool:
        """Use up a sealed authorization code without redeeming it (a failed redemption): store its marker
        ``used`` (``origin_jti`` None). True if this call stored it (exactly one of any concurrent callers);
        False if a marker was there already. A code redeemed by :meth:`start_code_family` leaves no marker, so
        the caller checks for its family too."""
        ...

    async def get_used_code(self, code_hash: str) -> UsedCodeRecord | None:
        """The marker a redeemed (or burnt) code left, until it is purged after its expiry."""
        ...

    async def start_code_family(
        self,
        code_hash: str,
        family: TokenFamilyRecord,
        refresh: RefreshTokenRecord | None,
        *,
        app_client_id: str | None = None,
    ) -> bool:
        """Redeem a sealed authorization code that names its token family: start ``family`` (with its refresh
        token) in one transaction, unless the code is used up already -- a used-code marker under ``code_hash``
        (a code burnt by :meth:`burn_code`), or ``family`` itself stored (the code's earlier
        redemption: the family's key is the code's single-use marker, so no marker row is written). True for
        the first use (exactly one of any concurrent callers); otherwise stores nothing and returns False.
        ``app_client_id`` as in :meth:`create_token_family`. Raises NotFound("client"), NotFound("pool")."""
        ...

    async def list_oauth_records(self, pool_id: str, username_key: str, kind: str) -> list[OAuthRecord]:
        """A user's records of one kind (e.g. every sign-on session), expired ones included."""
        ...

    async def delete_oauth_records(self, pool_id: str, username_key: str, kind: str) -> int:
        """Delete a user's records of one kind (e.g. every sign-on session); return how many went."""
        ...

    async def oauth_record_expiry(self, kind: str, key_hash: str) -> float | None:
        """The ``expires_at`` of a record, or None when there is none: whether a record whose contents the
        caller already holds (they never change under their key) is still there, without reading it all."""
        ...

    # user pool domains
    async def create_domain(self, domain: DomainRecord) -> None:
        """Raises AlreadyExists("domain"), NotFound("pool")."""
        ...

    async def get_domain(self, domain: str) -> DomainRecord | None: ...
    async def list_pool_domains(self, pool_id: str) -> list[DomainRecord]:
        """Ordered by domain."""
        ...

    async def update_domain(self, domain: DomainRecord) -> None:
        """Replace the settings; raises NotFound."""
        ...

    async def delete_domain(self, domain: str) -> bool: ...

    # resource servers
    async def create_resource_server(self, server: ResourceServerRecord) -> None:
        """Raises AlreadyExists("identifier"), NotFound("pool")."""
        ...

    async def get_resource_server(self, pool_id: str, identifier: str) -> ResourceServerRecord | None: ...
    async def update_resource_server(self, server: ResourceServerRecord) -> None:
        """Replace name and scopes; raises NotFound."""
        ...

    async def delete_resource_server(self, pool_id: str, identifier: str) -> bool: ...
    async def list_resource_servers(self, pool_id: str, after: str | None, limit: int) -> Page[ResourceServerRecord]:
        """Ordered by identifier."""
        ...

    # hosted UI customization
    async def put_ui_customization(self, record: UICustomizationRecord) -> None:
        """Insert or replace (keeping the first ``created_at``); raises NotFound("pool")."""
        ...

    async def get_ui_customization(self, pool_id: str, client_id: str) -> UICustomizationRecord | None: ...
    async def delete_ui_customization(self, pool_id: str, client_id: str) -> bool: ...

    # passkeys (WebAuthn credentials)
    async def add_webauthn_credential(self, credential: WebAuthnCredentialRecord) -> None:
        """Raises AlreadyExists("id") when the pool has the credential id already, NotFound("user") when the
        user does not exist."""
        ...

    async def get_webauthn_credential(self, pool_id: str, credential_id: str) -> WebAuthnCredentialRecord | None: ...
    async def list_webauthn_credentials(self, pool_id: str, username_key: str) -> list[WebAuthnCredentialRecord]:
        """Oldest first."""
        ...

    async def update_webauthn_sign_count(self, pool_id: str, credential_id: str, seen: int, new: int) -> bool:
        """Set the counter to ``new`` only if it is still ``seen``: True for exactly one of concurrent callers
        (an assertion replayed in parallel signs in once)."""
        ...

    async def delete_webauthn_credential(self, pool_id: str, username_key: str, credential_id: str) -> bool:
        """Deletes the credential if it is this user's; False when there was none."""
        ...

    # devices
    async def create_device(self, device: DeviceRecord) -> None:
        """Raises AlreadyExists("device_key") if the pool has the key, AlreadyExists("forgotten") if the key
        was forgotten (forget_device), NotFound if the user does not exist."""
        ...

    async def get_device(self, pool_id: str, device_key: str) -> DeviceRecord | None: ...
    async def update_device(self, device: DeviceRecord) -> None:
        """Rewrites the device's name, status and timestamps (never its key, user or verifier). Raises NotFound."""
        ...

    async def delete_device(self, pool_id: str, device_key: str) -> bool: ...
    async def list_devices(self, pool_id: str, username_key: str, after: str | None, limit: int) -> Page[DeviceRecord]:
        """A user's devices ordered by device_key; deleting the user deletes them."""
        ...

    async def forget_device(self, pool_id: str, device_key: str, forgotten_at: float) -> bool:
        """Deletes the device and keeps its key as forgotten, in one step, so that create_device never takes
        the key again; False (and nothing written) when there is no such device. Deleting the user drops the
        forgotten keys too. The families bound to the device (their ``device_key``) read ``device_forgotten``
        from then on, and are no longer among the user's token sessions (list_token_sessions,
        evict_token_sessions)."""
        ...

    async def touch_device(self, pool_id: str, device_key: str, authenticated_at: float, last_ip: str | None) -> bool:
        """Records a sign-in of the device: its last_authenticated_at, and its last_ip unless ``last_ip`` is
        None. Writes nothing else, so that a concurrent set_device_remembered is never undone. False when
        there is no such device."""
        ...

    async def set_device_remembered(self, pool_id: str, device_key: str, remembered: bool, updated_at: float) -> bool:
        """Sets the device's remembered status (and updated_at) only; False when there is no such device."""
        ...

    # threat protection: risk configurations and auth events
    async def put_risk_configuration(self, record: RiskConfigurationRecord) -> None:
        """Insert or replace the configuration of (pool, client). Raises NotFound("pool")."""
        ...

    async def get_risk_configuration(self, pool_id: str, client_id: str | None) -> RiskConfigurationRecord | None: ...
    async def add_auth_event(self, event: AuthEventRecord) -> None:
        """Raises NotFound("user") when the user does not exist; the events go when their user does."""
        ...

    async def get_auth_event(self, pool_id: str, event_id: str) -> AuthEventRecord | None: ...
    async def update_auth_event(self, event: AuthEventRecord) -> bool:
        """Replace ``event`` (its created_at and event); False when there is no such event."""
        ...

    async def list_auth_events(
        self, pool_id: str, username_key: str, before: str | None, limit: int
    ) -> Page[AuthEventRecord]:
        """The user's events, newest (highest event_id) first; ``before`` is the last event_id of the previous
        page."""
        ...

    # IAM roles with their inline policies, and IAM OIDC providers (the STS and IAM wires). Roles are keyed by
    # ``name_key``, the lower-cased name; ``get_role`` returns the role with every inline policy in one read,
    # since verifying a request made with temporary credentials needs both.
    async def create_role(self, role: RoleRecord) -> None:
        """Raises AlreadyExists("name") or AlreadyExists("id") (role_id)."""
        ...

    async def get_role(self, name_key: str) -> RoleRecord | None: ...
    async def update_role(self, role: RoleRecord) -> None:
        """Replace the role's own fields (not its inline policies). Raises NotFound."""
        ...

    async def delete_role(self, name_key: str) -> bool:
        """Deletes the role and its inline policies."""
        ...

    async def list_roles(self, after: str | None, limit: int) -> Page[RoleRecord]:
        """In ``name_key`` order; ``after`` is the previous page's last ``name_key``."""
        ...

    async def put_role_policy(self, name_key: str, policy_name: str, document: str) -> None:
        """Create or replace an inline policy. Raises NotFound("role")."""
        ...

    async def delete_role_policy(self, name_key: str, policy_name: str) -> bool: ...
    async def create_oidc_provider(self, provider: OidcProviderRecord) -> None:
        """Raises AlreadyExists("url")."""
        ...

    async def get_oidc_provider(self, url: str) -> OidcProviderRecord | None: ...
    async def update_oidc_provider(self, provider: OidcProviderRecord) -> None:
        """Raises NotFound."""
        ...

    async def delete_oidc_provider(self, url: str) -> bool: ...
    async def list_oidc_providers(self) -> list[OidcProviderRecord]:
        """Every provider, in ``url`` order (IAM lists them unpaginated)."""
        ...

    async def create_saml_provider(self, provider: SamlProviderRecord) -> None:
        """Raises AlreadyExists("name")."""
        ...

    async def get_saml_provider(self, name: str) -> SamlProviderRecord | None: ...
    async def update_saml_provider(self, provider: SamlProviderRecord) -> None:
        """Replace its metadata, tags and updated_at. Raises NotFound."""
        ...

    async def delete_saml_provider(self, name: str) -> bool: ...
    async def list_saml_providers(self) -> list[SamlProviderRecord]:
        """Every provider, in ``name`` order."""
        ...

    async def use_saml_assertion(self, assertion_key: str, expires_at: float, now: float) -> bool:
        """Record that an assertion was used; False if it already was (and has not expired by ``now``). Atomic:
        of concurrent calls with one key, exactly one gets True. Expired markers are dropped by purge_expired
        or replaced here."""
        ...

    # identity pools (Cognito Federated Identities)
    async def create_identity_pool(self, pool: IdentityPoolRecord) -> None:
        """Raises AlreadyExists("id")."""
        ...

    async def get_identity_pool(self, pool_id: str) -> IdentityPoolRecord | None: ...
    async def update_identity_pool(self, pool: IdentityPoolRecord) -> IdentityPoolRecord:
        """Version-checked like update_pool. Raises VersionConflict, NotFound."""
        ...

    async def delete_identity_pool(self, pool_id: str) -> bool:
        """Deletes the pool, its identities and their logins."""
        ...

    async def list_identity_pools(self, after: str | None, limit: int) -> Page[IdentityPoolRecord]:
        """Ordered by id."""
        ...

    async def get_identity(self, identity_id: str) -> IdentityRecord | None:
        """The identity with its logins (ordered by provider, then subject)."""
        ...

    async def find_identity_by_login(self, pool_id: str, login: IdentityLogin) -> IdentityRecord | None: ...
    async def resolve_identity(self, new: IdentityRecord) -> IdentityRecord:
        """The one identity that ``new.logins`` lead to, linking those not linked yet; ``new`` itself (inserted,
        with its logins) when none is linked yet. Concurrent callers with the same login get the same identity.
        A ``new`` without logins is always inserted (a guest). Raises AlreadyExists("login") when the logins
        are linked to different identities, NotFound("pool"); writes nothing then."""
        ...

    async def link_logins(
        self, pool_id: str, identity_id: str, logins: list[IdentityLogin], now: float
    ) -> IdentityRecord:
        """Link ``logins`` to the identity (those linked to it already are kept). Raises NotFound("identity")
        also for an identity made inaccessible (disabled: its last login was unlinked), AlreadyExists("login")
        when one is linked to another identity; writes nothing then."""
        ...

    async def unlink_logins(
        self, pool_id: str, identity_id: str, logins: list[IdentityLogin], now: float
    ) -> IdentityRecord:
        """Unlink those of ``logins`` linked to the identity; with none left it is disabled.
        Raises NotFound("identity")."""
        ...

    async def move_logins(
        self, pool_id: str, logins: list[IdentityLogin], identity_id: str, now: float
    ) -> IdentityRecord:
        """Link ``logins`` to ``identity_id`` wherever they were linked before (an identity left without logins
        is disabled); returns the receiving identity. Raises NotFound("identity"), also when that identity is
        disabled; writes nothing then."""
        ...

    async def delete_identities(self, identity_ids: list[str]) -> list[str]:
        """Delete the identities (and their logins); returns the ids that existed."""
        ...

    async def list_identities(
        self, pool_id: str, after: str | None, limit: int, *, hide_disabled: bool = False
    ) -> Page[IdentityRecord]:
        """Ordered by id, with their logins."""
        ...

    # signing keys of issuers that are not user pools (``SigningKeyRecord.pool_id`` names the key set)
    async def add_issuer_signing_key(self, key: SigningKeyRecord) -> None:
        """As add_signing_key, within the key set ``key.pool_id``."""
        ...

    async def list_issuer_signing_keys(self, key_set: str) -> list[SigningKeyRecord]:
        """Newest first."""
        ...

    async def delete_issuer_signing_key(self, key_set: str, kid: str) -> None: ...

    # federation: identity providers (Create/Describe/Update/Delete/ListIdentityProviders)
    async def create_identity_provider(self, provider: IdentityProviderRecord) -> None:
        """Raises AlreadyExists("name"), AlreadyExists("identifier") (an IdpIdentifier another provider of the
        pool holds) or NotFound("pool"); writes nothing then."""
        ...

    async def get_identity_provider(self, pool_id: str, name: str) -> IdentityProviderRecord | None: ...
    async def get_identity_provider_by_identifier(
        self, pool_id: str, identifier: str
    ) -> IdentityProviderRecord | None: ...
    async def update_identity_provider(self, provider: IdentityProviderRecord) -> IdentityProviderRecord:
        """Version-checked like update_pool; re-writes the identifier index from ``idp_identifiers``.
        Raises VersionConflict, NotFound, AlreadyExists("identifier")."""
        ...

    async def delete_identity_provider(self, pool_id: str, name: str) -> bool:
        """Also drops the provider's identifiers and the links to it."""
        ...

    async def list_identity_providers(
        self, pool_id: str, after: str | None, limit: int
    ) -> Page[IdentityProviderRecord]:
        """Ordered by name."""
        ...

    # federation: links of upstream identities to pool users (AdminLinkProviderForUser)
    async def put_provider_link(self, link: ProviderLinkRecord) -> None:
        """Raises AlreadyExists("link") when the upstream identity is linked already, NotFound("user")."""
        ...

    async def get_provider_link(
        self, pool_id: str, provider_name: str, attribute_name: str, attribute_value: str
    ) -> ProviderLinkRecord | None: ...
    async def list_provider_links(self, pool_id: str, username_key: str) -> list[ProviderLinkRecord]:
        """A user's links, ordered by (provider_name, attribute_name, attribute_value)."""
        ...

    async def delete_provider_link(
        self, pool_id: str, provider_name: str, attribute_name: str, attribute_value: str
    ) -> ProviderLinkRecord | None:
        """Delete and return the link (None if there was none)."""
        ...

    # federation: upstream sign-ins in flight, and replay protection
    async def put_federation_request(self, request: FederationRequestRecord) -> None:
        """Raises AlreadyExists("id") if the state hash is taken."""
        ...

    async def take_federation_request(self, state_hash: str) -> FederationRequestRecord | None:
        """Delete and return; a state answers one upstream callback only (expired ones included: the caller
        checks ``expires_at``)."""
        ...

    async def mark_assertion_seen(self, key: str, expires_at: float) -> bool:
        """Record ``key`` until ``expires_at``; True for exactly one of any callers with the same key."""
        ...

    # managed login branding: one style per app client
    async def create_managed_login_branding(self, record: ManagedLoginBrandingRecord) -> None:
        """Raises AlreadyExists("client") when the client has a style, AlreadyExists("id") when the id is
        taken, NotFound("client") when the pool or client does not exist."""
        ...

    async def get_managed_login_branding(self, pool_id: str, branding_id: str) -> ManagedLoginBrandingRecord | None: ...

    async def get_managed_login_branding_by_client(
        self, pool_id: str, client_id: str
    ) -> ManagedLoginBrandingRecord | None: ...
    async def update_managed_login_branding(self, record: ManagedLoginBrandingRecord) -> ManagedLoginBrandingRecord:
        """Writes settings, assets, the flag and ``updated_at`` (never the ids or ``created_at``) if the stored
        version equals ``record.version``; returns the record with version + 1. Raises VersionConflict,
        NotFound("branding")."""
        ...

    async def delete_managed_login_branding(self, pool_id: str, branding_id: str) -> bool:
        """True if this call deleted it. Deleting the client or the pool deletes its style too."""
        ...

    # terms documents: a terms of use and a privacy policy per app client
    async def create_terms(self, record: TermsRecord) -> None:
        """Raises AlreadyExists("name") when the client has a document of that name, AlreadyExists("id") when
        the id is taken, NotFound("client") when the pool or client does not exist."""
        ...

    async def get_terms(self, pool_id: str, terms_id: str) -> TermsRecord | None: ...

    async def get_terms_by_client(self, pool_id: str, client_id: str, name: str) -> TermsRecord | None: ...

    async def list_terms(self, pool_id: str, after_id: str | None, limit: int) -> list[TermsRecord]:
        """The pool's documents in id order, after ``after_id``, at most ``limit``."""
        ...

    async def list_client_terms(self, pool_id: str, client_id: str) -> list[TermsRecord]:
        """Every document of one client (at most one of each name)."""
        ...

    async def update_terms(self, record: TermsRecord) -> None:
        """Writes name, source, enforcement, links and ``updated_at``. Raises AlreadyExists("name") when another
        document of the client has the new name, NotFound("terms") when it was deleted."""
        ...

    async def delete_terms(self, pool_id: str, terms_id: str) -> bool:
        """True if this call deleted it. Deleting the client or the pool deletes its documents too."""

    # --- user import jobs (CreateUserImportJob ... ListUserImportJobs) -----------------------------------

    async def create_user_import_job(self, job: UserImportJobRecord) -> None:
        """Raises NotFound("pool") when the pool does not exist, AlreadyExists("id") for a taken job id."""
        ...

    async def get_user_import_job(self, pool_id: str, job_id: str) -> UserImportJobRecord | None: ...
    async def list_user_import_jobs(self, pool_id: str, after: str | None, limit: int) -> Page[UserImportJobRecord]:
        """A pool's jobs in creation order; ``after`` and the next token are ``list_key`` values."""
        ...

    async def update_user_import_job(
        self, pool_id: str, job_id: str, *, statuses: Collection[str], changes: Mapping[str, Any]
    ) -> UserImportJobRecord | None:
        """Writes ``changes`` (field names of UserImportJobRecord other than the ids and ``list_key``) if the
        job's status is one of ``statuses``, in one atomic step; returns the job as written, or None when it
        does not exist or its status is another. Raises AlreadyExists("running") when the change would make a
        second job of the pool Pending, InProgress or Stopping."""
        ...

    async def add_user_import_chunk(self, pool_id: str, job_id: str, upload_id: str, seq: int, data: bytes) -> None:
        """Part ``seq`` of an upload in progress. Raises NotFound("job") when the job does not exist."""
        ...

    async def finish_user_import_upload(self, pool_id: str, job_id: str, upload_id: str, size: int, now: float) -> bool:
        """Makes ``upload_id`` the job's file, atomically, if the job is still Created and its upload URL has
        not expired by ``now``: the parts of the file it replaces are deleted (those of uploads still in progress
        are not: each may finish and replace it in turn). False (and the upload's own parts deleted) otherwise."""
        ...

    async def drop_user_import_upload(self, pool_id: str, job_id: str, upload_id: str | None) -> None:
        """Deletes an upload's parts (every part of the job's uploads when ``upload_id`` is None)."""
        ...

    async def read_user_import_chunk(self, pool_id: str, job_id: str, upload_id: str, seq: int) -> bytes | None:
        """Part ``seq`` of a finished upload, or None past its last part."""
        ...

    # client ID metadata documents (CIMD): policies, and the documents fetched for them
    async def create_cimd_policy(self, record: CimdPolicyRecord) -> None:
        """Raises AlreadyExists("id") when the id is taken, NotFound("pool") when the pool does not exist."""
        ...

    async def get_cimd_policy(self, pool_id: str, policy_id: str) -> CimdPolicyRecord | None: ...

    async def list_cimd_policies(self, pool_id: str, after: str | None, limit: int) -> Page[CimdPolicyRecord]:
        """A pool's policies ordered by id."""
        ...

    async def cimd_policies_for_matching(self, pool_id: str | None) -> list[CimdPolicyRecord]:
        """Every policy of the pool (of every pool when None), ordered by (pool_id, id)."""
        ...

    async def update_cimd_policy(self, record: CimdPolicyRecord) -> CimdPolicyRecord | None:
        """Writes client_id, name, cache_seconds, url_patterns and updated_at; None when there is no such policy."""
        ...

    async def delete_cimd_policy(self, pool_id: str, policy_id: str) -> bool:
        """True if this call deleted it; its cached documents go with it."""
        ...

    async def put_cimd_document(self, record: CimdDocumentRecord) -> None:
        """Insert or replace the policy's document for the URL. Raises NotFound("policy")."""
        ...

    async def get_cimd_document(self, policy_id: str, url: str) -> CimdDocumentRecord | None: ...

    async def list_cimd_documents(self, policy_id: str, after: str | None, limit: int) -> Page[CimdDocumentRecord]:
        """A policy's cached documents ordered by URL (expired ones too: the cache state is what is listed)."""
        ...

    async def delete_cimd_documents(self, policy_id: str, url: str | None = None) -> int:
        """Drop the policy's document for ``url`` (every document of the policy when None); how many went."""
        ...


@dataclass
class RoleRecord:
    """An IAM role. ``assume_role_policy`` is its trust policy (JSON text); ``policies`` maps each inline
    policy's name to its document (filled by ``get_role``; ignored by ``create_role``/``update_role``)."""

    name: str
    name_key: str
    role_id: str
    path: str
    assume_role_policy: str
    description: str | None
    max_session_duration: int
    tags: dict[str, str]
    created_at: float
    policies: dict[str, str] = field(default_factory=dict)


@dataclass
class OidcProviderRecord:
    """An IAM OpenID Connect provider. ``url`` is the issuer without its scheme (``host/path``), as its ARN
    and condition keys name it; ``jwks_url``, when set, is where its signing keys are fetched from instead
    of the issuer's discovery document."""

    url: str
    issuer_url: str
    client_ids: list[str]
    thumbprints: list[str]
    tags: dict[str, str]
    created_at: float
    jwks_url: str | None = None


@dataclass
class SamlProviderRecord:
    """An IAM SAML provider: the IdP's SAML 2.0 metadata document (entity id, signing certificates)."""

    name: str
    metadata: str
    tags: dict[str, str]
    created_at: float
    updated_at: float


@dataclass
class IdentityProviderRecord:
    """An external IdP of a pool. ``details`` is Cognito's ProviderDetails with secret values sealed by the
    services; ``settings`` holds Gatehouse's own data about it (claim -> group rules)."""

    pool_id: str
    name: str
    provider_type: str
    details: dict[str, str]
    attribute_mapping: dict[str, str]
    idp_identifiers: list[str]
    created_at: float
    updated_at: float
    settings: JSONDict = field(default_factory=dict)
    version: int = 0


@dataclass
class ProviderLinkRecord:
    """An upstream identity that signs in as an existing pool user (AdminLinkProviderForUser's SourceUser ->
    DestinationUser)."""

    pool_id: str
    provider_name: str
    attribute_name: str
    attribute_value: str
    username_key: str
    created_at: float


@dataclass
class FederationRequestRecord:
    """An upstream sign-in in flight: what the callback must match (nonce, PKCE verifier, SAML request id)
    and what the caller asked to resume with. Keyed by the hash of the state sent upstream."""

    state_hash: str
    pool_id: str
    provider_name: str
    data: JSONDict
    expires_at: float


@dataclass
class ManagedLoginBrandingRecord:
    """A managed login branding style of one app client (CreateManagedLoginBranding). ``settings`` is the
    style's JSON document (None when none was given); ``assets`` are Cognito's AssetType objects as on the
    wire (Category, ColorMode, Extension, Bytes as base64, ResourceId)."""

    pool_id: str
    branding_id: str
    client_id: str
    use_cognito_provided_values: bool
    settings: JSONDict | None
    assets: list[JSONDict]
    created_at: float
    updated_at: float
    version: int = 0


@dataclass
class TermsRecord:
    """A terms document of one app client (CreateTerms): ``name`` is "terms-of-use" or "privacy-policy",
    ``links`` maps a managed login language ("cognito:default", "cognito:english" ...) to the document's URL."""

    pool_id: str
    terms_id: str
    client_id: str
    name: str
    source: str
    enforcement: str
    links: dict[str, str]
    created_at: float
    updated_at: float


# "Expired - You created a job, but did not start the job within 24-48 hours" (UserImportJobType.Status):
# expire_unstarted_import_jobs expires such a job and purge_expired deletes its file, whether anyone looks at
# the job or not.
UNSTARTED_IMPORT_JOB_SECONDS = 24 * 3600.0


@dataclass
class UserImportJobRecord:
    """A user import job (Cognito's UserImportJobType). ``upload_id`` names the CSV file uploaded to its
    PreSignedUrl (None until one is); ``url_expires_at`` is when that URL stops accepting one; ``heartbeat_at``
    is when the process running the job last wrote its progress."""

    pool_id: str
    job_id: str
    list_key: str
    name: str
    role_arn: str
    status: str
    created_at: float
    url_expires_at: float
    hashing_algorithm: str | None = None
    started_at: float | None = None
    completed_at: float | None = None
    imported_users: int = 0
    skipped_users: int = 0
    failed_users: int = 0
    completion_message: str | None = None
    upload_id: str | None = None
    upload_bytes: int = 0
    heartbeat_at: float | None = None


@dataclass
class CimdPolicyRecord:
    """A client ID metadata document policy (CreateCIMDPolicy): https URL patterns (1..5, ``*`` wildcards)
    that an external client's URL client_id may match, and the app client it signs in with."""

    pool_id: str
    policy_id: str
    client_id: str
    name: str
    cache_seconds: int
    url_patterns: list[str]
    created_at: float
    updated_at: float


@dataclass
class CimdDocumentRecord:
    """A client metadata document fetched for a policy from ``url`` (which is the client's client_id), kept
    until ``expires_at``."""

    policy_id: str
    url: str
    document: JSONDict
    cached_at: float
    expires_at: float
