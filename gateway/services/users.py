"""Users of a pool: sign-up, confirmation, attributes, passwords, codes, admin management.

Behaviour follows the Cognito API reference of each operation (SignUp, ConfirmSignUp, AdminCreateUser, ...)
and the developer guide's "Signing up and confirming user accounts", "Managing error responses"
(PreventUserExistenceErrors) and "User pool attributes" (usernames, aliases, verification).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import structlog

from gateway.errors import (
    AliasExistsException,
    CodeDeliveryFailureException,
    CodeMismatchException,
    ConcurrentModificationException,
    ExpiredCodeException,
    GatehouseError,
    InvalidParameterException,
    LimitExceededException,
    NotAuthorizedException,
    OperationNotEnabledException,
    PasswordHistoryPolicyViolationException,
    ResourceNotFoundException,
    UnsupportedUserStateException,
    UsernameExistsException,
    UserNotFoundException,
)
from gateway.ids import new_code, new_sub
from gateway.metrics import Metrics
from gateway.secretbox import SecretBox
from gateway.services.cimd import app_client_id
from gateway.services.code_limits import CodeSendLimiter, unknown_user_key
from gateway.services.custom_message import (
    ADMIN_CREATE_USER,
    FORGOT_PASSWORD,
    RESEND_CODE,
    SIGN_UP,
    UPDATE_USER_ATTRIBUTE,
    VERIFY_USER_ATTRIBUTE,
    MessageTrigger,
    custom_message,
)
from gateway.services.custom_sender import has_custom_sender, send_by_function
from gateway.services.hooks import PRE_SIGN_UP_ADMIN_CREATE_USER, PRE_SIGN_UP_SIGN_UP, HookRegistry
from gateway.services.log_delivery import export_notification_error
from gateway.services.messaging import EmailMessage, Messenger, SmsMessage, email_parts, render_template
from gateway.services.mfa import EMAIL_OTP, SMS_MFA, mfa_settings
from gateway.services.mfa_legacy import mfa_options
from gateway.services.passwords import PasswordHasher, check_password_policy, generate_temporary_password
from gateway.services.pools import ClientView, PoolService, PoolView
from gateway.services.schema import (
    canonical_values,
    is_phone_number,
    required_attributes,
    schema_index,
    validate_attribute_values,
    value_fits,
)
from gateway.services.srp import derive_srp_verifier
from gateway.services.triggers import (
    POST_CONFIRMATION_FORGOT_PASSWORD,
    POST_CONFIRMATION_SIGN_UP,
    USER_MIGRATION_FORGOT_PASSWORD,
    TriggerService,
    user_attributes,
)
from gateway.storage.base import (
    SEARCHABLE_USER_FIELDS,
    AlreadyExists,
    CodeRecord,
    GroupRecord,
    NotFound,
    Store,
    UserRecord,
    UserSearch,
    VersionConflict,
)

if TYPE_CHECKING:
    from gateway.services.risk import RiskService

log = structlog.get_logger("gateway.users")

# Cognito's code lifetimes: sign-up and attribute codes a day, password-reset codes an hour.
CODE_SECONDS = {
    "sign_up": 24 * 3600,
    "attribute:email": 24 * 3600,
    "attribute:phone_number": 24 * 3600,
    "forgot_password": 3600,
}
MAX_CODE_ATTEMPTS = 5
# Tries of a user's read-modify-write when concurrent writes keep winning the version check: each lost try
# means another write went through, so a request fails only when more than this many others changed the same
# user while it ran. Past it, ConcurrentModificationException, which most user operations' models do not
# have: keep it out of reach.
USER_WRITE_ATTEMPTS = 100
# ChangePassword: wrong PreviousPassword answers allowed per window before LimitExceededException.
MAX_CHANGE_PASSWORD_FAILURES = 5
CHANGE_PASSWORD_WINDOW = 3600.0
_CHANGE_PASSWORD_TRIES = "change_password_tries"

UNCONFIRMED = "UNCONFIRMED"
CONFIRMED = "CONFIRMED"
FORCE_CHANGE_PASSWORD = "FORCE_CHANGE_PASSWORD"
RESET_REQUIRED = "RESET_REQUIRED"
EXTERNAL_PROVIDER = "EXTERNAL_PROVIDER"

DEFAULT_VERIFICATION_SUBJECT = "Your verification code"
DEFAULT_VERIFICATION_MESSAGE = "Your verification code is {####}. "
# Cognito's defaults for DefaultEmailOption CONFIRM_WITH_LINK (VerificationMessageTemplateType).
DEFAULT_LINK_SUBJECT = "Your verification link"
DEFAULT_LINK_MESSAGE = "Please click the link below to verify your email address. {##Verify Email##} "
DEFAULT_INVITE_SUBJECT = "Your temporary password"
DEFAULT_INVITE_MESSAGE = "Your username is {username} and temporary password is {####}. "
DEFAULT_SMS_VERIFICATION = "Your verification code is {####}. "
# The custom message trigger's source for a code sent for each purpose, unless the caller says otherwise (a
# resent sign-up code, a code asked for with GetUserAttributeVerificationCode); attribute codes are updates.
_CUSTOM_MESSAGE_SOURCES = {"sign_up": SIGN_UP, "forgot_password": FORGOT_PASSWORD}


def _check_invitation_addresses(attributes: Mapping[str, str], mediums: Sequence[str]) -> None:
    """AdminCreateUser's refusal of a DesiredDeliveryMediums entry the user has no address for."""
    for medium, attribute in (("EMAIL", "email"), ("SMS", "phone_number")):
        if medium in mediums and not attributes.get(attribute):
            raise InvalidParameterException(
                f"User has no value for the attribute {attribute}, so a message could not be sent."
            )


def secret_hash(client_id: str, client_secret: str, username: str) -> str:
    """SECRET_HASH = Base64(HMAC-SHA256(client secret, username + client id))."""
    digest = hmac.new(client_secret.encode(), (username + client_id).encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def check_secret_hash(client: ClientView, username: str, given: str | None, *, usernames: Sequence[str] = ()) -> None:
    """A client with a secret must be sent SECRET_HASH; Cognito's answer when it is missing or wrong. Any of the
    client's active secrets computes it (two during a rotation, AddUserPoolClientSecret)."""
    if client.secret is None:
        return
    if not given:
        raise NotAuthorizedException(f"Client {client.id} is configured with secret but SECRET_HASH was not received")
    for secret in client.secrets:
        for name in (username, *usernames):
            if hmac.compare_digest(secret_hash(client.id, secret, name), given):
                return
    raise NotAuthorizedException(f"Unable to verify secret hash for client {client.id}")


def mask_email(email: str) -> str:
    """``a***@e***``: the first letter of each half, in lower case. Addresses are one whatever their case (the
    alias index folds it), and a masked destination must not tell by its letter case whether it is the address a
    user gave or, under PreventUserExistenceErrors, an unknown name as it was typed (simulated_destination)."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain[:1]}***".lower()


def mask_phone(phone: str) -> str:
    return "+" + "*" * max(len(phone) - 5, 0) + phone[-4:]


@dataclass(frozen=True)
class CodeDelivery:
    destination: str
    medium: str
    attribute: str

    def to_json(self) -> dict[str, str]:
        return {"Destination": self.destination, "DeliveryMedium": self.medium, "AttributeName": self.attribute}


def confirms_with_link(pool: PoolView) -> bool:
    """Whether the pool's sign-up confirmation emails carry a link rather than a code
    (VerificationMessageTemplate.DefaultEmailOption CONFIRM_WITH_LINK)."""
    template = pool.settings.get("VerificationMessageTemplate") or {}
    return isinstance(template, Mapping) and template.get("DefaultEmailOption") == "CONFIRM_WITH_LINK"


def attributes_list(attributes: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Name": k, "Value": v} for k, v in attributes.items()]


def attributes_dict(items: Sequence[Mapping[str, Any]] | None) -> dict[str, str]:
    """Cognito's [{"Name":..., "Value":...}] as a dict; a later duplicate wins, as in Cognito."""
    result: dict[str, str] = {}
    for item in items or []:
        result[str(item["Name"])] = str(item.get("Value", ""))
    return result


class UserService:
    """Everything about a pool's users except signing in (see auth.py)."""

    def __init__(
        self,
        store: Store,
        pools: PoolService,
        hasher: PasswordHasher,
        messenger: Messenger,
        box: SecretBox,
        code_key: bytes,
        metrics: Metrics,
        *,
        default_email_sender: str,
    ) -> None:
        self._store = store
        self._pools = pools
        self._hasher = hasher
        self._messenger = messenger
        self._box = box
        self._code_key = code_key
        self._metrics = metrics
        self._default_sender = default_email_sender
        # Threat protection's check of new passwords against breached ones (set by the container).
        self.threats: RiskService | None = None
        # PreSignUp hooks (gateway/services/hooks.py; set by the container).
        self.hooks: HookRegistry | None = None
        # The pool's Lambda triggers (gateway/services/triggers.py), set by the service container.
        self.triggers: TriggerService | None = None
        # The per-user limit on codes sent (gateway/services/code_limits.py; set by the container).
        self.code_sends: CodeSendLimiter | None = None
        # Where a pool's hosted pages are reached from a message (DomainService.page_base; set by the container):
        # the sign-up confirmation link goes there.
        self.page_base: Callable[[str], Awaitable[str]] | None = None

    # --- look-ups -------------------------------------------------------------------------------------

    async def find(self, pool: PoolView, name: str) -> UserRecord | None:
        """A user by username, alias (email, phone, preferred username) or sub, as Cognito resolves names."""
        if not name:
            return None
        user = await self._store.get_user(pool.id, pool.username_key(name))
        if user is not None:
            return user
        return await self._find_by_alias_or_sub(pool, name)

    async def find_with_groups(self, pool: PoolView, name: str) -> tuple[UserRecord, list[GroupRecord] | None] | None:
        """:meth:`find`, with the user's groups read in the same statement when ``name`` is the username
        (None when it was an alias or the sub): a password sign-in that issues tokens needs both."""
        if not name:
            return None
        found = await self._store.get_user_with_groups(pool.id, pool.username_key(name))
        if found is not None:
            return found
        user = await self._find_by_alias_or_sub(pool, name)
        return (user, None) if user is not None else None

    async def _find_by_alias_or_sub(self, pool: PoolView, name: str) -> UserRecord | None:
        # A verified email or phone number is proven to be its holder's; a preferred_username is chosen freely, so
        # it is tried last, whatever the order of AliasAttributes: a nickname spelled as another user's verified
        # address never stands for it (sign-in, ForgotPassword, the Admin* look-ups).
        aliases = sorted(pool.alias_attributes, key=lambda attribute: attribute == "preferred_username")
        for attribute in (*pool.username_attributes, *aliases):
            user = await self._store.get_user_by_alias(pool.id, attribute, alias_value(attribute, name))
            if user is not None:
                return user
        if pool.username_attributes:
            return await self._store.get_user_by_sub(pool.id, name)
        return None

    async def get(self, pool: PoolView, name: str) -> UserRecord:
        """The user an Admin* operation's ``Username`` names: the username or an alias, as :meth:`find` resolves
        them, or in any pool the user's ``sub`` ("If username isn't an alias attribute in your user pool, this
        value must be the sub of a local user", AdminGetUser): back ends keep the ``sub`` of the ID token.

        A name shaped as a sub is the user whose sub it is before anything else: a sub is unique and never
        changes, so a username or preferred_username spelled as another user's sub (in any letter case) must
        not stand for that user where a back end names users by the sub it was shown. In a pool that signs in
        with email or phone number the username is the sub, so this is the same user."""
        user = await self._by_sub(pool, name)
        if user is None:
            user = await self.find(pool, name)
        if user is None:
            raise UserNotFoundException()
        return user

    async def _by_sub(self, pool: PoolView, name: str) -> UserRecord | None:
        """The user whose ``sub`` ``name`` is, compared as the pool compares usernames. Every sub is a UUID
        (:func:`gateway.ids.new_sub`), so a name of any other shape is no look-up at all."""
        if not is_sub_shaped(name):
            return None
        return await self._store.get_user_by_sub(pool.id, pool.username_key(name))

    async def get_by_key(self, pool_id: str, username_key: str) -> UserRecord:
        user = await self._store.get_user(pool_id, username_key)
        if user is None:
            raise UserNotFoundException()
        return user

    async def _named_by_client(
        self, pool: PoolView, client: ClientView, username: str, secret_hash_value: str | None
    ) -> UserRecord | None:
        """The user a public operation names, once the client's SECRET_HASH checks out (computed over the name
        as given, or the stored username, as clients differ); None when there is no such user."""
        user = await self.find(pool, username)
        if user is None:
            check_secret_hash(client, username, secret_hash_value)
            return None
        check_secret_hash(client, user.username, secret_hash_value, usernames=(username,))
        return user

    @staticmethod
    def _unknown_user(client: ClientView, prevented: GatehouseError | None) -> GatehouseError:
        """What a public operation answers for an unknown user: under PreventUserExistenceErrors the same error
        a known user with a wrong answer would get; otherwise Cognito's UserNotFoundException."""
        if prevented is not None and client.prevent_user_existence_errors:
            return prevented
        return UserNotFoundException("Username/client id combination not found.")

    def _simulated_delivery(self, pool: PoolView, given: str, attributes: Sequence[str]) -> CodeDelivery:
        """The delivery an answer names where no code is sent (an unknown user under PreventUserExistenceErrors,
        and for ForgotPassword a disabled one or one without a verified address): "The simulated delivery medium
        is determined by the input user name format and verification settings of the user pool" (Managing user
        existence error responses). It is the medium a user of the pool would get: the first of ``attributes``
        (where the operation sends, in order) that the pool verifies, or the kind of address the name is; the
        destination is :meth:`simulated_destination`."""
        addresses = self.decoy_addresses(pool, given)
        held = [a for a in attributes if a in addresses]
        if held:
            # Where a user with the addresses the name stands for would get the code (USER_AUTH offers the
            # name those addresses' one-time codes: one profile, whichever operation asks).
            attribute = held[0]
        else:
            shaped = "phone_number" if is_phone_number(given) else "email" if "@" in given else None
            verified = [a for a in attributes if a in pool.auto_verified]
            if shaped is not None and (shaped in verified or not verified):
                attribute = shaped
            else:
                attribute = (verified or (["email"] if "email" in attributes else list(attributes)) or ["email"])[0]
        destination = self.simulated_destination(pool, given, attribute)
        return CodeDelivery(destination, "EMAIL" if attribute == "email" else "SMS", attribute)

    def decoy_addresses(self, pool: PoolView, given: str) -> frozenset[str]:
        """The verified addresses (``email``, ``phone_number``) a name that matches no user stands for, in every
        answer that could tell (USER_AUTH's one-time codes, the medium of a simulated delivery): the kind of
        address the name is, and each address the pool's users verify in or out by a bit of an HMAC of the name
        under a server secret (users with and without it are both found), the same at every try."""
        key = pool.username_key(given)
        message = f"decoy-addresses|{pool.id}|{key}".encode(errors="surrogatepass")
        bits = hmac.new(self._code_key, message, hashlib.sha256).digest()[0]
        factors = ((pool.settings.get("Policies") or {}).get("SignInPolicy") or {}).get("AllowedFirstAuthFactors") or ()
        # Only addresses the pool's users verify: the ones it verifies at sign-up, and those of its one-time codes.
        verified_here = set(pool.auto_verified) | {a for f, a in _CODE_FACTORS.items() if f in factors}
        held = {a for i, a in enumerate(("email", "phone_number")) if (bits >> i) & 1}
        if "@" in given:
            held.add("email")  # a user found by an email address has it verified
        elif is_phone_number(given):
            held.add("phone_number")
        return frozenset(held & verified_here)

    def simulated_destination(self, pool: PoolView, given: str, attribute: str) -> str:
        """The masked ``email`` or ``phone_number`` shown for a name that matches no user, wherever a code would
        go (ForgotPassword, ResendConfirmationCode, USER_AUTH's EMAIL_OTP and SMS_OTP): one rule and one key, so
        that the name has one destination everywhere, as a user's address does. A name that is an address of
        that kind is its own destination, masked as a user's is; otherwise the destination is derived from the
        name under a server secret, the same at every try and shaped like a real one."""
        if attribute == "email" and "@" in given:
            return mask_email(given)
        if attribute != "email" and is_phone_number(given):
            return mask_phone(given)
        key = pool.username_key(given)
        message = f"simulated-delivery|{pool.id}|{key}".encode(errors="surrogatepass")
        digest = hmac.new(self._code_key, message, hashlib.sha256).digest()
        if attribute != "email":
            return mask_phone("+1555" + "".join(str(b % 10) for b in digest[:7]))
        letters = "abcdefghijklmnopqrstuvwxyz"
        # Addresses often begin as their holder's name does; from the name's key, so that each spelling of a
        # name in a pool that ignores case gets the one destination a user's address would be.
        first = key[:1].lower()
        local = first if first.isascii() and first.isalnum() else letters[digest[1] % 26]
        return f"{local}***@{letters[digest[0] % 26]}***"

    def user_type(self, user: UserRecord, *, attributes_to_get: Sequence[str] | None = None) -> dict[str, Any]:
        """Cognito's UserType."""
        attributes = {"sub": user.sub, **user.attributes}
        if attributes_to_get is not None:
            attributes = {k: v for k, v in attributes.items() if k in attributes_to_get}
        return {
            "Username": user.username,
            "Attributes": attributes_list(attributes),
            "UserCreateDate": user.created_at,
            "UserLastModifiedDate": user.updated_at,
            "Enabled": user.enabled,
            "UserStatus": user.status,
            **mfa_options(user),
        }

    def check_attribute_names(self, pool: PoolView, names: Iterable[str]) -> None:
        """Every name is an attribute of the pool's schema (ListUsers' AttributesToGet)."""
        known = {str(a["Name"]) for a in pool.schema}
        for name in names:
            if name not in known:
                raise InvalidParameterException(f"Attribute does not exist in the schema: {name}")

    def all_attributes(self, user: UserRecord) -> dict[str, str]:
        return {"sub": user.sub, **user.attributes}

    def readable_attributes(self, user: UserRecord, client: ClientView) -> dict[str, str]:
        """The attributes a user's access token from ``client`` may read (GetUser): the client's
        ReadAttributes when it has a list (UserPoolClientType.ReadAttributes), always with ``sub``."""
        readable = client.settings.get("ReadAttributes")
        attributes = self.all_attributes(user)
        if not readable:
            return attributes
        allowed = {"sub", *readable}
        return {name: value for name, value in attributes.items() if name in allowed}

    # --- creation -------------------------------------------------------------------------------------

    def _aliases(self, pool: PoolView, attributes: Mapping[str, str]) -> dict[str, str]:
        """The alias index entries of a user: username attributes always, alias attributes once verified
        (preferred_username needs no verification)."""
        aliases: dict[str, str] = {}
        for attr in pool.username_attributes:
            if attributes.get(attr):
                aliases[attr] = alias_value(attr, attributes[attr])
        for attr in pool.alias_attributes:
            value = attributes.get(attr)
            if not value:
                continue
            if attr == "preferred_username" or attributes.get(f"{attr}_verified") == "true":
                aliases[attr] = alias_value(attr, value)
        return aliases

    def _name_for_new_user(self, pool: PoolView, username: str, attributes: dict[str, str]) -> str:
        """In a pool that signs in with email or phone, the given name is that attribute and the username is
        a generated UUID (Cognito's behaviour); otherwise the username is as given.

        The name must then be a valid value of one of the pool's username attributes, judged as the attribute
        itself is (schema.py: format and length): "If the username string format is not in email or phone
        number format, the SignUp API throws an exception" (Customizing sign-in attributes). The attribute, if
        given as well, must be the same address: Cognito's "User email should be empty or same as username,
        since username attribute is email." (InvalidParameterException) -- else one of the two would be
        dropped without a word."""
        if not pool.username_attributes:
            if "@" in username and pool.alias_attributes and "email" in pool.alias_attributes:
                raise InvalidParameterException(
                    "Username cannot be of email format, since user pool is configured for email alias."
                )
            # Likewise for phone numbers ("User pool attributes", aliases): a username in phone form would
            # shadow the verified phone alias of another user, as find() tries usernames first.
            if "phone_number" in pool.alias_attributes and is_phone_number(username):
                raise InvalidParameterException(
                    "Username cannot be of phone number format, since user pool is configured for phone number alias."
                )
            return username
        index = schema_index(pool.schema)
        attribute = next(
            (a for a in pool.username_attributes if username and a in index and value_fits(a, username, index[a])),
            None,
        )
        if attribute is None:
            raise InvalidParameterException(_username_format_message(pool.username_attributes))
        given = attributes.get(attribute)
        if given and alias_value(attribute, given) != alias_value(attribute, username):
            raise InvalidParameterException(
                f"User {attribute} should be empty or same as username, since username attribute is {attribute}."
            )
        if not given:
            attributes[attribute] = username
        return new_sub()

    async def _insert(self, pool: PoolView, user: UserRecord) -> None:
        # The store re-checks, atomically with the insert, what _check_no_nickname and
        # _check_nickname_is_no_username read before: a username and another user's preferred_username
        # written at once must not both be taken.
        free_aliases: list[tuple[str, str]] = []
        if "preferred_username" in pool.alias_attributes:
            free_aliases.append(("preferred_username", alias_value("preferred_username", user.username)))
        free_usernames = self._nickname_keys(pool, user.attributes)
        try:
            await self._store.create_user(user, free_aliases=free_aliases, free_usernames=free_usernames)
        except NotFound as exc:  # the pool was deleted while this call ran
            raise ResourceNotFoundException(f"User pool {pool.id} does not exist.") from exc
        except AlreadyExists as exc:
            if exc.key == "username" or (exc.key.startswith("alias:") and pool.username_attributes):
                # Where users sign in with email or phone number, the address taken is the username: Cognito
                # names it ("An account with the given email already exists.", phone_number alike).
                msg = None
                if pool.username_attributes:
                    taken = exc.key.removeprefix("alias:") if exc.key.startswith("alias:") else None
                    msg = f"An account with the given {taken or pool.username_attributes[0]} already exists."
                raise UsernameExistsException(msg) from exc
            raise _alias_exists(exc.key) from exc

    async def _new_password_material(self, pool: PoolView, username: str, password: str) -> tuple[str, dict[str, Any]]:
        """The argon2id hash and the sealed SRP verifier of a password, both computed off the event loop."""
        loop = asyncio.get_running_loop()
        password_hash, verifier = await asyncio.gather(
            self._hasher.hash(password), loop.run_in_executor(None, derive_srp_verifier, pool.id, username, password)
        )
        sealed = self._box.seal(
            json.dumps({"salt": verifier.salt_hex, "verifier": verifier.verifier_hex}).encode(),
            aad=f"srp|{pool.id}|{username}".encode(),
        )
        return password_hash, {"srp": sealed}

    async def sign_up(
        self,
        pool: PoolView,
        client: ClientView,
        *,
        username: str,
        password: str | None,
        attributes: dict[str, str],
        secret_hash_value: str | None,
        client_metadata: Mapping[str, str] | None = None,
        validation_data: Mapping[str, str] | None = None,
    ) -> tuple[UserRecord, CodeDelivery | None]:
        """SignUp. ``password`` is None for a passwordless sign-up (the caller checked the pool allows one)."""
        check_secret_hash(client, username, secret_hash_value)
        if pool.admin_create_user_config.get("AllowAdminCreateUserOnly"):
            raise NotAuthorizedException("SignUp is not permitted for this user pool")
        attributes = dict(attributes)
        for flag in ("email_verified", "phone_number_verified"):
            attributes.pop(flag, None)
        _check_user_writable(attributes)
        validate_attribute_values(pool.schema, attributes, creating=True, admin=False)
        attributes = canonical_values(pool.schema, attributes)
        self._check_writable(client, attributes)
        if attributes.get("preferred_username") and "preferred_username" in pool.alias_attributes:
            # "If you select preferred_username as an alias, your user can provide the value only when they
            # confirm an account": an unconfirmed sign-up holding the alias could keep a name from everyone.
            raise InvalidParameterException(
                "Preferred username cannot be provided for unconfirmed account, since user pool is configured "
                "for preferred username alias."
            )
        name = self._name_for_new_user(pool, username, attributes)
        missing = [a for a in required_attributes(pool.schema) if not attributes.get(a)]
        if missing:
            raise InvalidParameterException(
                "Attributes did not conform to the schema: "
                + ", ".join(f"{a}: The attribute is required" for a in missing)
            )
        if password is not None:
            check_password_policy(password, pool.password_policy)
        if await self._store.get_user(pool.id, pool.username_key(name)) is not None:
            raise UsernameExistsException()
        await self._check_no_nickname(pool, name, UsernameExistsException())
        await self._check_no_sub(pool, name, UsernameExistsException())
        # A passwordless sign-up (one-time codes) has no password to screen.
        compromised = (
            self.threats is not None
            and password is not None
            and await self.threats.screen_new_password(pool, client, password, "SIGN_UP")
        )
        auto_confirm = False
        if self.hooks is not None:
            attributes, auto_confirm = await self.hooks.native_pre_sign_up(
                pool, self._store, PRE_SIGN_UP_SIGN_UP, name, attributes,
                client_id=client.id, client_metadata=client_metadata, validation_data=validation_data,
            )  # fmt: skip
        for attribute in ("email", "phone_number"):
            # A signed-up address is unverified until a code proves it: Cognito records the flag as "false"
            # (unless a PreSignUp hook verified it), so AdminGetUser shows it and the ID token says false.
            if attributes.get(attribute):
                attributes.setdefault(f"{attribute}_verified", "false")
        user = await self._new_user(pool, name, password, attributes, status=CONFIRMED if auto_confirm else UNCONFIRMED)
        await self._insert(pool, user)
        if self.threats is not None:
            await self.threats.signed_up(pool, client, user, compromised)
        self._metrics.inc(self._metrics.sign_ups, pool=pool.id)
        log.info("sign_up", pool=pool.id, client=client.id, username=name)
        if auto_confirm:  # a PreSignUp hook confirmed the user: there is no code to send
            return user, None
        try:
            delivery = await self._send_verification(
                pool,
                user,
                purpose="sign_up",
                client=client,
                trigger=MessageTrigger(SIGN_UP, client.id, client_metadata),
            )
        except GatehouseError:
            # Not delivered, or the pool's CustomMessage function refused to word it (custom_message.py): the
            # caller is told the sign-up failed, so it must not half-exist: a retry must be able to succeed.
            await self._store.delete_user(pool.id, user.username_key)
            raise
        return user, delivery

    async def _new_user(
        self, pool: PoolView, name: str, password: str | None, attributes: dict[str, str], *, status: str
    ) -> UserRecord:
        """A user record, not yet stored. A temporary password (FORCE_CHANGE_PASSWORD) gets the pool's
        TemporaryPasswordValidityDays; a passwordless user (``password`` None) has no password material."""
        password_hash: str | None = None
        secrets: dict[str, Any] = {}
        if password is not None:
            password_hash, secrets = await self._new_password_material(pool, name, password)
        now = time.time()
        expires = None
        if status == FORCE_CHANGE_PASSWORD:
            expires = now + int(pool.password_policy.get("TemporaryPasswordValidityDays", 7)) * 86400
        return UserRecord(
            pool_id=pool.id,
            username=name,
            username_key=pool.username_key(name),
            sub=name if pool.username_attributes else new_sub(),  # a generated username is the sub
            status=status,
            enabled=True,
            attributes=attributes,
            password_hash=password_hash,
            created_at=now,
            updated_at=now,
            password_updated_at=now if password is not None else None,
            temporary_password_expires_at=expires,
            secrets=secrets,
            aliases=self._aliases(pool, attributes),
        )

    def check_user_may_write(self, client: ClientView, names: Iterable[str]) -> None:
        """A user's own write of ``names`` through ``client``: no system attribute, only the client's
        WriteAttributes (UserPoolClientType.WriteAttributes)."""
        names = list(names)
        _check_user_writable(names)
        self._check_writable(client, names)

    def _check_writable(self, client: ClientView, attributes: Iterable[str]) -> None:
        writable = client.settings.get("WriteAttributes")
        if not writable:
            return
        for name in attributes:
            if name not in writable:
                raise NotAuthorizedException(f"A client attempted to write unauthorized attribute {name}")

    async def admin_create_user(
        self,
        pool: PoolView,
        *,
        username: str,
        attributes: dict[str, str],
        temporary_password: str | None,
        message_action: str | None,
        delivery_mediums: Sequence[str],
        force_alias_creation: bool,
        client_metadata: Mapping[str, str] | None = None,
        validation_data: Mapping[str, str] | None = None,
        run_hooks: bool = True,
    ) -> UserRecord:
        validate_attribute_values(pool.schema, attributes, creating=True, admin=True)
        _check_admin_writable(attributes)
        if message_action == "RESEND":
            return await self._resend_invitation(pool, username, delivery_mediums)
        attributes = canonical_values(pool.schema, attributes)
        name = self._name_for_new_user(pool, username, attributes)  # may take the email or phone from the name
        _check_verified_flags(attributes, attributes)
        if temporary_password is not None:
            check_password_policy(temporary_password, pool.password_policy)
        password = temporary_password or generate_temporary_password(pool.password_policy)
        if await self._store.get_user(pool.id, pool.username_key(name)) is not None:
            raise UsernameExistsException("User account already exists")  # AdminCreateUser's words
        await self._check_no_nickname(pool, name, UsernameExistsException("User account already exists"))
        await self._check_no_sub(pool, name, UsernameExistsException("User account already exists"))
        await self._check_nickname_is_no_username(pool, None, attributes)
        if message_action != "SUPPRESS":
            _check_invitation_addresses(attributes, delivery_mediums)
        if self.hooks is not None and run_hooks:
            attributes, _ = await self.hooks.native_pre_sign_up(
                pool, self._store, PRE_SIGN_UP_ADMIN_CREATE_USER, name, attributes,
                client_metadata=client_metadata, validation_data=validation_data,
            )  # fmt: skip
        user = await self._new_user(pool, name, password, attributes, status=FORCE_CHANGE_PASSWORD)
        moving = await self._aliases_held_elsewhere(pool, user) if force_alias_creation else {}
        # ForceAliasCreation: the user is stored and invited before any alias leaves its holder, so that a call
        # refused on the way (another alias taken, the invitation not delivered) changes nothing.
        user.aliases = {k: v for k, v in user.aliases.items() if k not in moving}
        await self._insert(pool, user)
        log.info("admin_create_user", pool=pool.id, username=name)
        if message_action != "SUPPRESS":
            try:
                await self._send_invitation(
                    pool, user, password, delivery_mediums or ["SMS"], client_metadata=client_metadata
                )
            except GatehouseError:  # not delivered, or refused by the CustomMessage function
                await self._store.delete_user(pool.id, user.username_key)
                raise
        if moving:
            user = await self._take_aliases(pool, user, moving)
        return user

    async def import_user(
        self, pool: PoolView, *, username: str, attributes: dict[str, str], mfa_enabled: bool
    ) -> UserRecord:
        """One user of a user import job's CSV file ("Importing users from a CSV file"): checked as
        AdminCreateUser checks its attributes, stored without a password in RESET_REQUIRED, so that the user's
        first way in is a password reset (ForgotPassword). No message is sent and no trigger runs.
        UsernameExistsException when the user exists (the job skips the row); any other error fails the row."""
        name, attributes = await self._admitted(
            pool, username, attributes, sms_mfa=mfa_enabled, sms_mfa_name="cognito:mfa_enabled"
        )
        user = await self._new_user(pool, name, None, attributes, status=RESET_REQUIRED)
        if mfa_enabled:
            user.settings["mfa"] = {"preferred": None, "enabled": [SMS_MFA]}
        await self._insert(pool, user)
        return user

    async def _admitted(
        self, pool: PoolView, username: str, attributes: dict[str, str], *, sms_mfa: bool, sms_mfa_name: str
    ) -> tuple[str, dict[str, str]]:
        """The name and attributes of a user created without a sign-up (an import row, a migration), checked as
        AdminCreateUser checks them and with every required attribute; UsernameExistsException when the name
        is taken. ``sms_mfa``: SMS MFA is to be on (``sms_mfa_name`` says by which setting), which needs a number
        to send the codes to."""
        validate_attribute_values(pool.schema, attributes, creating=True, admin=True)
        attributes = canonical_values(pool.schema, attributes)
        name = self._name_for_new_user(pool, username, attributes)
        _check_verified_flags(attributes, attributes)
        missing = [a for a in required_attributes(pool.schema) if not attributes.get(a)]
        if missing:
            raise InvalidParameterException(
                "Attributes did not conform to the schema: "
                + ", ".join(f"{a}: The attribute is required" for a in missing)
            )
        if sms_mfa and not attributes.get("phone_number"):
            raise InvalidParameterException(f"{sms_mfa_name} is true but the user has no phone_number.")
        if await self._store.get_user(pool.id, pool.username_key(name)) is not None:
            raise UsernameExistsException("User account already exists")
        await self._check_no_nickname(pool, name, UsernameExistsException("User account already exists"))
        await self._check_no_sub(pool, name, UsernameExistsException("User account already exists"))
        await self._check_nickname_is_no_username(pool, None, attributes)
        return name, attributes

    async def migrate_user(
        self,
        pool: PoolView,
        *,
        username: str,
        password: str | None,
        attributes: dict[str, str],
        reset_required: bool,
        force_alias_creation: bool,
        sms_mfa: bool,
    ) -> UserRecord:
        """A user the pool's UserMigration function vouched for ("Migrate user Lambda trigger"), stored with the
        attributes it answered: with ``password`` (the one just proven to the function) and CONFIRMED, or without
        one and RESET_REQUIRED (a password reset is the way in). The pool's password policy is not applied ("The
        password strength policy that is configured for the user pool will not be enforced during migration").
        An alias another user holds refuses the migration unless ``force_alias_creation`` moves it here.
        UsernameExistsException when the name is taken meanwhile."""
        _check_admin_writable(attributes)
        name, attributes = await self._admitted(
            pool, username, attributes, sms_mfa=sms_mfa, sms_mfa_name="enableSMSMFA"
        )
        status = RESET_REQUIRED if reset_required or password is None else CONFIRMED
        user = await self._new_user(pool, name, password if status == CONFIRMED else None, attributes, status=status)
        if sms_mfa:
            user.settings["mfa"] = {"preferred": None, "enabled": [SMS_MFA]}
        moving = await self._aliases_held_elsewhere(pool, user) if force_alias_creation else {}
        user.aliases = {k: v for k, v in user.aliases.items() if k not in moving}
        await self._insert(pool, user)
        if moving:
            user = await self._take_aliases(pool, user, moving)
        log.info("user.migrated", pool=pool.id, username=name, status=status)
        return user

    async def _check_no_nickname(self, pool: PoolView, name: str, taken: GatehouseError) -> None:
        """``taken`` when the new username ``name`` is another user's preferred_username alias: the username
        would be found first (find()) and take that user's sign-in name from them."""
        if "preferred_username" in pool.alias_attributes:
            holder = await self._store.get_user_by_alias(
                pool.id, "preferred_username", alias_value("preferred_username", name)
            )
            if holder is not None:
                raise taken

    async def _check_no_sub(self, pool: PoolView, name: str, taken: GatehouseError) -> None:
        """``taken`` when the new username ``name`` is spelled as another user's ``sub`` (in any letter case):
        the Admin* operations take a sub as the user's name (AdminGetUser's Username), and a back end that
        names a user by the sub of their ID token must never reach another. :meth:`get` tries the sub first
        whatever is stored, so a name that wins a race with this read still stands for no one else; and a sub
        exists before anyone can learn it. In a pool that signs in with email or phone number the username is
        generated (and is the new user's own sub)."""
        if pool.username_attributes or not is_sub_shaped(name):
            return
        if await self._store.get_user_by_sub(pool.id, name.lower()) is not None:
            raise taken

    async def _check_nickname_is_no_username(
        self, pool: PoolView, username_key: str | None, attributes: Mapping[str, str]
    ) -> None:
        """AliasExistsException when the preferred_username alias being written is another user's username
        (alias values are unique in a pool, and a username is its holder's sign-in name), or another user's
        ``sub``, which names that user in the Admin* operations (see :meth:`_check_no_sub`); the user's own
        username (``username_key``) and sub are no conflict."""
        for key in self._nickname_keys(pool, attributes):
            if key != username_key and await self._store.get_user(pool.id, key) is not None:
                raise _alias_exists("alias:preferred_username")
        nickname = attributes.get("preferred_username") or ""
        if "preferred_username" in pool.alias_attributes and is_sub_shaped(nickname):
            holder = await self._store.get_user_by_sub(pool.id, nickname.lower())
            if holder is not None and holder.username_key != username_key:
                raise _alias_exists("alias:preferred_username")

    @staticmethod
    def _nickname_keys(pool: PoolView, attributes: Mapping[str, str]) -> list[str]:
        """The username keys a preferred_username alias in ``attributes`` must not be another user's."""
        value = attributes.get("preferred_username")
        if not value or "preferred_username" not in pool.alias_attributes:
            return []
        return sorted({pool.username_key(value), pool.username_key(alias_value("preferred_username", value))})

    async def _aliases_held_elsewhere(self, pool: PoolView, user: UserRecord) -> dict[str, str]:
        """The email / phone aliases of ``user`` that another user holds: what ForceAliasCreation moves."""
        held: dict[str, str] = {}
        for attribute, value in user.aliases.items():
            if not _migrates(pool, attribute):
                continue
            holder = await self._store.get_user_by_alias(pool.id, attribute, value)
            if holder is not None and holder.username_key != user.username_key:
                held[attribute] = value
        return held

    async def _take_aliases(self, pool: PoolView, user: UserRecord, aliases: Mapping[str, str]) -> UserRecord:
        """Move ``aliases`` from their holders to the stored ``user``, whose attributes verify them."""
        await self._release_aliases(pool, aliases)

        async def claim(u: UserRecord) -> None:
            u.aliases = self._aliases(pool, u.attributes)

        try:
            return await self._update(pool, user, claim)
        except AliasExistsException:
            # Taken again meanwhile by a concurrent call: the user exists (and was invited) without it.
            log.warning("admin_create_user.alias_lost", pool=pool.id, username=user.username)
            return user

    async def _check_aliases_free(self, pool: PoolView, user: UserRecord, aliases: Mapping[str, str]) -> None:
        """AliasExistsException when another user holds one of ``aliases``."""
        for attribute, value in aliases.items():
            holder = await self._store.get_user_by_alias(pool.id, attribute, value)
            if holder is not None and holder.username_key != user.username_key:
                raise _alias_exists(f"alias:{attribute}")

    async def _release_aliases(self, pool: PoolView, aliases: Mapping[str, str]) -> None:
        """ForceAliasCreation: move an email or phone alias from the user who holds it to the new one.

        Only those two migrate ("the phone number or email address ... already exists as an alias with a
        different user"): the holder keeps the address, unverified. A preferred_username is unique outright --
        taken from its holder it would come back at the holder's next update and block it -- and so is an email
        or phone number that is a username attribute (:func:`_migrates`)."""
        for attribute, value in aliases.items():
            if not _migrates(pool, attribute):
                continue
            holder = await self._store.get_user_by_alias(pool.id, attribute, value)
            if holder is None:
                continue

            async def release(u: UserRecord, attribute: str = attribute, value: str = value) -> None:
                if u.aliases.get(attribute) == value:
                    u.aliases.pop(attribute, None)
                    u.attributes[f"{attribute}_verified"] = "false"

            # Version-checked like every update: a concurrent change of the holder is re-read, not a 500.
            await self._update(pool, holder, release)

    async def _resend_invitation(self, pool: PoolView, username: str, mediums: Sequence[str]) -> UserRecord:
        user = await self.get(pool, username)
        if user.status != FORCE_CHANGE_PASSWORD:
            raise UnsupportedUserStateException(
                "Resend not possible. " + user.username + " status is not FORCE_CHANGE_PASSWORD."
            )
        mediums = mediums or ["SMS"]  # DesiredDeliveryMediums: "The default value is SMS."
        # Refused as AdminCreateUser refuses a new user's: a medium without an address would send nothing, and the
        # new password would replace the one the user holds with one no one was told.
        _check_invitation_addresses(user.attributes, mediums)
        password = generate_temporary_password(pool.password_policy)
        validity_days = int(pool.password_policy.get("TemporaryPasswordValidityDays", 7))
        password_hash, secrets = await self._new_password_material(pool, user.username, password)

        async def change(u: UserRecord) -> None:
            u.password_hash, u.secrets = password_hash, {**u.secrets, **secrets}
            u.temporary_password_expires_at = time.time() + validity_days * 86400

        # Sent before it is stored: an invitation that cannot be delivered fails the call, and the temporary
        # password the user already holds must keep working.
        await self._send_invitation(pool, user, password, mediums)
        return await self._update(pool, user, change)

    # --- messages -------------------------------------------------------------------------------------

    def _email_sender(self, pool: PoolView) -> str:
        config = pool.settings.get("EmailConfiguration") or {}
        # SourceArn names an SES identity: an address ("identity/me@example.com") or a whole domain
        # ("identity/example.com"), which is no sender address; Cognito then needs From.
        identity = str(config.get("SourceArn", "")).rpartition("/")[2]
        return str(config.get("From") or (identity if "@" in identity else "") or self._default_sender)

    async def _send_email(
        self, pool: PoolView, to: str, subject: str, text: str, purpose: str, *, html: str | None = None
    ) -> None:
        """Send one email; ``html`` is its HTML part, which must hold every user-chosen value HTML-escaped
        (:func:`email_parts`), else the text is used."""
        reply_to = (pool.settings.get("EmailConfiguration") or {}).get("ReplyToEmailAddress")
        try:
            await self._messenger.email.send(
                EmailMessage(
                    to=to,
                    sender=self._email_sender(pool),
                    subject=subject,
                    text=text,
                    html=html or text,
                    reply_to=str(reply_to) if reply_to else None,
                )
            )
        except CodeDeliveryFailureException:
            export_notification_error(pool, "Email", purpose)
            raise
        self.count_code_sent(pool, "EMAIL", purpose)

    async def _send_sms(self, pool: PoolView, to: str, text: str, purpose: str) -> None:
        try:
            await self._messenger.sms.send(SmsMessage(to=to, text=text))
        except CodeDeliveryFailureException:
            export_notification_error(pool, "SMS", purpose)
            raise
        self.count_code_sent(pool, "SMS", purpose)

    def count_code_sent(self, pool: PoolView, medium: str, purpose: str) -> None:
        """One message gone by ``medium`` (EMAIL or SMS), by Gatehouse or the pool's custom sender function."""
        self._metrics.inc(self._metrics.codes_sent, pool=pool.id, medium=medium, purpose=purpose)

    async def limit_code_send(self, pool: PoolView, key: str, purpose: str) -> float | None:
        """Take one code from the user's send budget (code_limits), or raise the limit's error; the send's
        ticket, to give it back should the code not be delivered (CodeSendLimiter.give_back)."""
        if self.code_sends is None:
            return None
        return await self.code_sends.take(pool.id, key, purpose)

    async def give_back_code_send(self, pool: PoolView, key: str, ticket: float | None) -> None:
        """Uncount a send :meth:`limit_code_send` counted (its ``ticket``) whose code was never delivered."""
        if self.code_sends is not None:
            await self.code_sends.give_back(pool.id, key, ticket)

    async def send_text(
        self, pool: PoolView, medium: str, to: str, text: str, *, subject: str, purpose: str, html: str | None = None
    ) -> None:
        """Send one message by ``medium`` (EMAIL or SMS) from the pool's sender, counted like every code sent;
        for codes whose wording another service owns (MFA sign-in codes)."""
        if medium == "EMAIL":
            await self._send_email(pool, to, subject, text, purpose, html=html)
        else:
            await self._send_sms(pool, to, text, purpose)

    async def _send_invitation(
        self,
        pool: PoolView,
        user: UserRecord,
        password: str,
        mediums: Sequence[str],
        *,
        client_metadata: Mapping[str, str] | None = None,
    ) -> None:
        """Send the temporary password by each of ``mediums``; CodeDeliveryFailureException when one fails, and
        the caller then stores nothing (the user not created, the old password kept). The pool's CustomMessage
        function (CustomMessage_AdminCreateUser) is asked once for the wording of all of them; when it fails,
        nothing is sent.

        The text goes first: once the email has gone, a text the SMS gateway refuses would fail the call and leave
        a mailed password that never works. An SMS gateway refuses far more often than a mail server does
        (numbers it cannot reach, a spending limit, a sandbox); refused first, it leaves nothing sent."""
        template = pool.admin_create_user_config.get("InviteMessageTemplate") or {}
        trigger = MessageTrigger(ADMIN_CREATE_USER, client_metadata=client_metadata)
        worded = [medium for medium in mediums if not has_custom_sender(self.triggers, pool, medium)]
        custom = await custom_message(self.triggers, pool, user, trigger, mediums=worded) if worded else None
        # ["EMAIL", "EMAIL"] is one invitation, not two.
        for medium in sorted(dict.fromkeys(mediums), key=lambda medium: medium != "SMS"):
            if self.triggers is not None and has_custom_sender(self.triggers, pool, medium):
                address = user.attributes.get("email" if medium == "EMAIL" else "phone_number")
                if address:
                    await send_by_function(self.triggers, pool, user, trigger, medium, password, address)
                    self.count_code_sent(pool, medium, "invitation")
                continue
            assert custom is not None  # asked for every medium without a custom sender
            if medium == "EMAIL" and user.attributes.get("email"):
                text, html = email_parts(
                    custom.email or template.get("EmailMessage") or DEFAULT_INVITE_MESSAGE,
                    code=password,
                    username=user.username,
                )
                await self._send_email(
                    pool,
                    user.attributes["email"],
                    custom.subject or template.get("EmailSubject") or DEFAULT_INVITE_SUBJECT,
                    text,
                    "invitation",
                    html=html,
                )
            elif medium == "SMS" and user.attributes.get("phone_number"):
                text = render_template(
                    custom.sms or template.get("SMSMessage") or DEFAULT_INVITE_MESSAGE,
                    code=password,
                    username=user.username,
                )
                await self._send_sms(pool, user.attributes["phone_number"], text, "invitation")

    def _code_hash(self, pool_id: str, username_key: str, purpose: str, code: str) -> str:
        # Keyed so a stolen database does not give the six-digit codes away by brute force.
        message = f"{pool_id}|{username_key}|{purpose}|{code}".encode()
        return hmac.new(self._code_key, message, hashlib.sha256).hexdigest()

    async def _keep_code(
        self, pool: PoolView, user: UserRecord, purpose: str, code: str, data: dict[str, Any] | None = None
    ) -> None:
        """Store ``code`` (as its keyed hash) as the user's one live code for ``purpose``, replacing any other."""
        await self._store.put_code(
            CodeRecord(
                pool_id=pool.id,
                username_key=user.username_key,
                purpose=purpose,
                code_hash=self._code_hash(pool.id, user.username_key, purpose, code),
                expires_at=time.time() + CODE_SECONDS.get(purpose, 24 * 3600),
                data=data or {},
            )
        )

    def _verification_destination(self, pool: PoolView, user: UserRecord) -> str | None:
        """Where a sign-up code goes: the auto-verified attribute, the phone number when both are ("If a user
        provides both an email address and a phone number ... Amazon Cognito sends a verification code only to
        the phone number", Signing up and confirming user accounts)."""
        for attribute in _SIGN_UP_CODE_ORDER:
            if attribute in pool.auto_verified and user.attributes.get(attribute):
                return attribute
        return None

    async def _send_verification(
        self,
        pool: PoolView,
        user: UserRecord,
        *,
        purpose: str,
        attribute: str | None = None,
        client: ClientView | None = None,
        background: bool = False,
        limited: bool = False,
        trigger: MessageTrigger | None = None,
    ) -> CodeDelivery | None:
        """Issue and send a code for ``purpose`` to ``attribute`` (for sign-up, where :meth:`_verification_destination`
        says). ``client``: the app client a sign-up came through, which a confirmation link names; ``limited``: the
        code counts against the user's send budget (:meth:`_send_code`); ``trigger``: what the CustomMessage
        function is told of the call (:meth:`deliver_code`)."""
        attribute = attribute or self._verification_destination(pool, user)
        if attribute is None:
            return None
        # A change waiting for verification (UserAttributeUpdateSettings) is verified at its new value.
        value = pending_attributes(user).get(attribute) or user.attributes.get(attribute)
        if not value:
            return None
        # The code proves control of this value only: it is bound to it, so a later change of the attribute
        # (without a new code) cannot be verified with it.
        code = new_code()
        link = await self._confirmation_link(pool, user, client, code) if purpose == "sign_up" else None
        data = {"attribute": attribute, "value": value}
        await self._send_code(
            pool,
            user,
            attribute,
            value,
            code,
            purpose,
            data,
            background=background,
            limited=limited,
            link=link,
            trigger=trigger,
        )
        return self.delivery_for(attribute, value)

    async def _confirmation_link(
        self, pool: PoolView, user: UserRecord, client: ClientView | None, code: str
    ) -> str | None:
        """The link a sign-up confirmation email carries instead of its code when the pool asks for one
        (VerificationMessageTemplate.DefaultEmailOption CONFIRM_WITH_LINK): the hosted pages' ``/confirmUser``
        with ``client_id``, ``user_name`` and ``confirmation_code`` ("https://<your user pool
        domain>/confirmUser/?client_id=...&user_name=...&confirmation_code=...", Customizing email verification
        messages). The code is the one ConfirmSignUp takes; None when the pool sends codes."""
        if not confirms_with_link(pool) or client is None or self.page_base is None:
            return None
        query = urlencode({"client_id": app_client_id(client), "user_name": user.username, "confirmation_code": code})
        return f"{await self.page_base(pool.id)}/confirmUser?{query}"

    def delivery_for(self, attribute: str, value: str) -> CodeDelivery:
        if attribute == "email":
            return CodeDelivery(mask_email(value), "EMAIL", "email")
        return CodeDelivery(mask_phone(value), "SMS", attribute)

    async def _send_code(
        self,
        pool: PoolView,
        user: UserRecord,
        attribute: str,
        value: str,
        code: str,
        purpose: str,
        data: dict[str, Any] | None = None,
        *,
        background: bool,
        limited: bool,
        link: str | None = None,
        trigger: MessageTrigger | None = None,
    ) -> None:
        """Make ``code`` the user's one live code for ``purpose`` and send it (:meth:`deliver_code`); ``limited``:
        it counts against the user's send budget (code_limits.py).

        Sent while the caller waits, the code is stored only once it is delivered, and the send counted before it
        goes is given back if it fails (CodeDeliveryFailureException, or the pool's CustomMessage function failed
        or answered what cannot be sent): a failed delivery changes nothing, so the
        code the user already holds keeps working and the budget is not spent on a message that never went.
        ``background``: sent without the caller waiting, where the answer must not tell a user who exists from one
        who does not (PreventUserExistenceErrors) -- a mail server's time to accept the message would, as an
        unknown name's answer sends nothing; the answer says a code went, so it is counted and stored at once."""
        key = user.username_key
        if background:
            if limited:
                await self.limit_code_send(pool, key, purpose)
            await self._keep_code(pool, user, purpose, code, data)
            self._messenger.later(
                self.deliver_code(pool, user, attribute, value, code, purpose, link=link, trigger=trigger)
            )
            return
        ticket = await self.limit_code_send(pool, key, purpose) if limited else None
        try:
            await self.deliver_code(pool, user, attribute, value, code, purpose, link=link, trigger=trigger)
        except GatehouseError:
            await self.give_back_code_send(pool, key, ticket)
            raise
        await self._keep_code(pool, user, purpose, code, data)

    async def deliver_code(
        self,
        pool: PoolView,
        user: UserRecord,
        attribute: str,
        value: str,
        code: str,
        purpose: str,
        *,
        link: str | None = None,
        trigger: MessageTrigger | None = None,
    ) -> None:
        """Send ``code`` to ``value`` with the pool's verification template; an email with ``link`` (a sign-up
        confirmation link, see :meth:`_confirmation_link`) uses the link template instead. Only sign-up
        confirmations take a link: "Emails from attribute-update and password-reset operations use the code
        template" (Configuring MFA, authentication, verification and invitation messages).

        The pool's CustomMessage function, when it has one, is asked for the wording first (custom_message.py);
        ``trigger`` says why the code goes, else ``purpose`` does (a sign-up, a password reset, an attribute
        update). When it fails, nothing is sent and its error is raised."""
        template = pool.settings.get("VerificationMessageTemplate") or {}
        medium = "EMAIL" if attribute == "email" else "SMS"
        trigger = trigger or MessageTrigger(_CUSTOM_MESSAGE_SOURCES.get(purpose, UPDATE_USER_ATTRIBUTE))
        if self.triggers is not None and has_custom_sender(self.triggers, pool, medium):
            # The pool's own function sends it, link or not: it writes its own message (custom_sender.py).
            await send_by_function(self.triggers, pool, user, trigger, medium, code, value)
            self.count_code_sent(pool, medium, purpose)
            return
        custom = await custom_message(
            self.triggers, pool, user, trigger, mediums=(medium,), link=medium == "EMAIL" and link is not None
        )
        try:
            if attribute == "email" and link is not None:
                text, html = email_parts(
                    custom.email or template.get("EmailMessageByLink") or DEFAULT_LINK_MESSAGE,
                    code=code,
                    username=user.username,
                    link=link,
                )
                subject = custom.subject or template.get("EmailSubjectByLink") or DEFAULT_LINK_SUBJECT
                await self._send_email(pool, value, subject, text, purpose, html=html)
            elif attribute == "email":
                text, html = email_parts(
                    custom.email
                    or template.get("EmailMessage")
                    or pool.settings.get("EmailVerificationMessage")
                    or DEFAULT_VERIFICATION_MESSAGE,
                    code=code,
                    username=user.username,
                )
                subject = (
                    custom.subject
                    or template.get("EmailSubject")
                    or pool.settings.get("EmailVerificationSubject")
                    or DEFAULT_VERIFICATION_SUBJECT
                )
                await self._send_email(pool, value, subject, text, purpose, html=html)
            else:
                text = render_template(
                    custom.sms
                    or template.get("SmsMessage")
                    or pool.settings.get("SmsVerificationMessage")
                    or DEFAULT_SMS_VERIFICATION,
                    code=code,
                    username=user.username,
                )
                await self._send_sms(pool, value, text, purpose)
        except CodeDeliveryFailureException:
            log.warning("code.delivery_failed", pool=pool.id, username=user.username, purpose=purpose)
            raise

    async def _check_code(
        self,
        pool: PoolView,
        user: UserRecord,
        purpose: str,
        code: str,
        *,
        consume: bool = True,
        none_as_mismatch: bool = False,
    ) -> CodeRecord:
        """Consume the user's code for ``purpose``; exactly one of concurrent correct answers wins. With
        ``consume`` false the code is only checked (wrong answers still count): the caller consumes it.

        No code (never requested, used, replaced) is ExpiredCodeException, Cognito's "Invalid code provided,
        please request a code again." (for ConfirmForgotPassword: "If a code isn't requested when using
        ForgotPassword, Amazon Cognito returns the ExpiredCodeException error"); ``none_as_mismatch`` answers it
        as a wrong code instead, where an unknown name gets CodeMismatchException and the two must not differ."""
        record = await self._store.get_code(pool.id, user.username_key, purpose)
        if record is None:
            raise CodeMismatchException() if none_as_mismatch else ExpiredCodeException()
        if record.expires_at < time.time():
            await self._store.delete_code(pool.id, user.username_key, purpose)
            raise ExpiredCodeException()
        if record.attempts >= MAX_CODE_ATTEMPTS:
            raise LimitExceededException()
        expected = self._code_hash(pool.id, user.username_key, purpose, code)
        if not hmac.compare_digest(expected, record.code_hash):
            attempts = await self._store.count_code_attempt(pool.id, user.username_key, purpose)
            if attempts >= MAX_CODE_ATTEMPTS:
                raise LimitExceededException()
            raise CodeMismatchException()
        if consume:
            await self.consume_code(pool, user, purpose, expected)
        return record

    async def consume_code(self, pool: PoolView, user: UserRecord, purpose: str, code_hash: str) -> None:
        """Use the code up, unless another answer did first (ExpiredCodeException) or wrong guesses racing this
        one reached the attempt limit meanwhile (LimitExceededException): the limit is checked in the same
        atomic step as the use, so concurrent guesses cannot try more than MAX_CODE_ATTEMPTS codes."""
        if await self._store.consume_code(
            pool.id, user.username_key, purpose, code_hash, max_attempts=MAX_CODE_ATTEMPTS
        ):
            return
        record = await self._store.get_code(pool.id, user.username_key, purpose)
        if record is not None and record.code_hash == code_hash and record.attempts >= MAX_CODE_ATTEMPTS:
            raise LimitExceededException()
        raise ExpiredCodeException()

    # --- confirmation -----------------------------------------------------------------------------------

    async def confirm_sign_up(
        self,
        pool: PoolView,
        client: ClientView,
        *,
        username: str,
        code: str,
        secret_hash_value: str | None,
        force_alias_creation: bool,
        client_metadata: Mapping[str, str] | None = None,
    ) -> tuple[UserRecord, str | None]:
        """ConfirmSignUp; the confirmed user and the attribute (email, phone_number) the code verified, if any.
        The pool's PostConfirmation trigger runs once the user is confirmed."""
        user = await self._named_by_client(pool, client, username, secret_hash_value)
        if user is None:
            raise self._unknown_user(client, CodeMismatchException())
        if user.status != UNCONFIRMED:
            raise NotAuthorizedException(f"User cannot be confirmed. Current status is {user.status}")
        # The code is used up only once the confirmation can go through: after AliasExistsException the
        # documented next step is the same call, with the same code, and ForceAliasCreation.
        record = await self._check_code(pool, user, "sign_up", code, consume=False)
        # The attribute the code went to (codes carry it); for older codes, where it would go now.
        attribute = str(record.data.get("attribute") or "") or self._verification_destination(pool, user)
        verifies = attribute is not None and _code_fits(record, user, attribute)
        wanted = self._aliases(
            pool, {**user.attributes, f"{attribute}_verified": "true"} if verifies else user.attributes
        )
        if not force_alias_creation:
            await self._check_aliases_free(pool, user, wanted)
        await self.consume_code(pool, user, "sign_up", record.code_hash)

        async def confirm(u: UserRecord) -> None:
            u.status = CONFIRMED
            # The code confirms the account; it verifies the address only if that is where it was sent.
            if attribute and _code_fits(record, u, attribute):
                u.attributes[f"{attribute}_verified"] = "true"
            u.aliases = self._aliases(pool, u.attributes)

        if force_alias_creation:
            # Only email and phone move; any other alias held elsewhere refuses the call before anything moved.
            await self._check_aliases_free(pool, user, {k: v for k, v in wanted.items() if not _migrates(pool, k)})
            await self._release_aliases(pool, wanted)
        user = await self._update(pool, user, confirm)
        self._metrics.inc(self._metrics.confirmations, pool=pool.id, kind="sign_up")
        log.info("sign_up.confirmed", pool=pool.id, username=user.username)
        await self._post_confirmation(pool, user, POST_CONFIRMATION_SIGN_UP, client.id, client_metadata)
        verified = attribute if attribute and user.attributes.get(f"{attribute}_verified") == "true" else None
        return user, verified

    async def admin_confirm_sign_up(
        self, pool: PoolView, username: str, client_metadata: Mapping[str, str] | None = None
    ) -> None:
        user = await self.get(pool, username)
        if user.status != UNCONFIRMED:
            raise NotAuthorizedException(f"User cannot be confirmed. Current status is {user.status}")

        async def confirm(u: UserRecord) -> None:
            u.status = CONFIRMED

        user = await self._update(pool, user, confirm)
        await self._store.delete_code(pool.id, user.username_key, "sign_up")
        self._metrics.inc(self._metrics.confirmations, pool=pool.id, kind="sign_up")
        await self._post_confirmation(pool, user, POST_CONFIRMATION_SIGN_UP, None, client_metadata)

    async def _post_confirmation(
        self,
        pool: PoolView,
        user: UserRecord,
        trigger_source: str,
        client_id: str | None,
        client_metadata: Mapping[str, str] | None,
    ) -> None:
        """The pool's PostConfirmation function, told of a confirmation already stored: one that raises fails
        the call, and the confirmation stands (as with Cognito, whose trigger runs after it)."""
        if self.triggers is None or self.triggers.function(pool, "PostConfirmation") is None:
            return
        await self.triggers.post_confirmation(
            pool,
            trigger_source,
            client_id=client_id,
            username=user.username,
            attributes=user_attributes(user.attributes, sub=user.sub, status=user.status),
            client_metadata=client_metadata,
        )

    async def resend_confirmation_code(
        self,
        pool: PoolView,
        client: ClientView,
        username: str,
        secret_hash_value: str | None,
        client_metadata: Mapping[str, str] | None = None,
    ) -> CodeDelivery | None:
        user = await self._named_by_client(pool, client, username, secret_hash_value)
        if user is None:
            if client.prevent_user_existence_errors:
                await self.limit_code_send(pool, unknown_user_key(username), "sign_up")
                return self._simulated_delivery(pool, username, _SIGN_UP_CODE_ORDER)
            raise self._unknown_user(client, None)
        if not user.enabled:
            # A disabled user gets no code: ConfirmSignUp would confirm an account that still cannot sign in, and
            # an administrator's AdminDisableUser must stop mail to it. Cognito answers "User is disabled." to a
            # disabled user's own operations (NotAuthorizedException, as ForgotPassword does here). Under
            # PreventUserExistenceErrors that answer would tell the name is a user's: as for ForgotPassword ("When a
            # user isn't found, is deactivated ... Amazon Cognito returns CodeDeliveryDetails with a simulated
            # delivery medium", Managing user existence error responses), a simulated delivery, limited as a code
            # sent would be, and nothing is sent.
            if client.prevent_user_existence_errors:
                await self.limit_code_send(pool, user.username_key, "sign_up")
                return self._simulated_delivery(pool, username, _SIGN_UP_CODE_ORDER)
            raise NotAuthorizedException("User is disabled.")
        if user.status != UNCONFIRMED:
            raise InvalidParameterException("User is already confirmed.")
        delivery = await self._send_verification(
            pool,
            user,
            purpose="sign_up",
            client=client,
            background=client.prevent_user_existence_errors,
            limited=True,
            trigger=MessageTrigger(RESEND_CODE, client.id, client_metadata),
        )
        if delivery is None:
            raise InvalidParameterException("Auto verification not turned on.")
        return delivery

    # --- updates ----------------------------------------------------------------------------------------

    async def _update(
        self, pool: PoolView, user: UserRecord, change: Any, *, free_usernames: Sequence[str] = ()
    ) -> UserRecord:
        """Read-modify-write with the store's optimistic version check, retried on a race. ``free_usernames``:
        username keys no other user may have when the write lands (Store.update_user)."""
        for _ in range(USER_WRITE_ATTEMPTS):
            await change(user)
            user.updated_at = time.time()
            try:
                return await self._store.update_user(user, free_usernames=free_usernames)
            except AlreadyExists as exc:
                raise _alias_exists(exc.key) from exc
            except NotFound:  # deleted (AdminDeleteUser, DeleteUser) while this call ran
                raise UserNotFoundException() from None
            except VersionConflict:
                fresh = await self._store.get_user(pool.id, user.username_key)
                if fresh is None:
                    raise UserNotFoundException() from None
                user = fresh
        raise ConcurrentModificationException()

    async def update_attributes(
        self,
        pool: PoolView,
        user: UserRecord,
        attributes: dict[str, str],
        *,
        admin: bool,
        client: ClientView | None = None,
        client_metadata: Mapping[str, str] | None = None,
    ) -> list[CodeDelivery]:
        """Admin/UpdateUserAttributes. A changed email or phone is unverified until its code is confirmed,
        and a code is sent when the pool auto-verifies that attribute (not for admins setting *_verified).
        "To delete an attribute from the user, submit the attribute in your API request with a blank value"
        (both operations): an empty value removes the attribute, as DeleteUserAttributes does."""
        validate_attribute_values(pool.schema, attributes, creating=False, admin=admin)
        attributes = canonical_values(pool.schema, attributes)
        removed = {name for name, value in attributes.items() if value == ""}
        _check_admin_writable(attributes)
        if not admin:
            _check_user_writable(attributes)
            if client is not None:
                self._check_writable(client, attributes)
        _check_verified_flags(attributes, {**user.attributes, **attributes})
        await self._check_nickname_is_no_username(pool, user.username_key, attributes)
        changed_verifiable = [
            a
            for a in ("email", "phone_number")
            if a in attributes
            and a not in removed
            and attributes[a] != user.attributes.get(a)
            and not (admin and attributes.get(f"{a}_verified") == "true")
        ]
        if not admin:
            # A user's own change sends a code to the new value, which the user chooses: without a limit,
            # alternating two values mails (or texts) any address without end. Counted like every code a user
            # asks for, and refused before anything changes -- TooManyRequestsException, as UpdateUserAttributes'
            # model has no LimitExceededException (code_limits.py).
            for attribute in changed_verifiable:
                if attribute in pool.auto_verified:
                    await self.limit_code_send(pool, user.username_key, f"attribute_update:{attribute}")
        # With AttributesRequireVerificationBeforeUpdate, a verified email or phone keeps its old value (and
        # stays a sign-in alias) until the new one is verified; the new one waits beside it.
        update_settings = pool.settings.get("UserAttributeUpdateSettings") or {}
        hold = set(update_settings.get("AttributesRequireVerificationBeforeUpdate") or [])
        held: dict[str, str] = {
            a: attributes[a]
            for a in changed_verifiable
            if a in hold and a in pool.auto_verified and user.attributes.get(f"{a}_verified") == "true"
        }
        immediate = {k: v for k, v in attributes.items() if k not in held and k not in removed}

        async def change(u: UserRecord) -> None:
            u.attributes.update(immediate)
            for name in removed:
                u.attributes.pop(name, None)
                if name in ("email", "phone_number"):
                    u.attributes.pop(f"{name}_verified", None)  # nothing left to be verified
            for attribute in changed_verifiable:
                if attribute not in held:
                    u.attributes[f"{attribute}_verified"] = "false"
            pending = {k: v for k, v in pending_attributes(u).items() if k not in attributes}
            pending.update(held)
            set_pending_attributes(u, pending)
            u.aliases = self._aliases(pool, u.attributes)

        codes = {attribute: new_code() for attribute in changed_verifiable if attribute in pool.auto_verified}
        trigger = MessageTrigger(UPDATE_USER_ATTRIBUTE, client.id if client else None, client_metadata)
        if not admin and codes:
            # UpdateUserAttributes answers CodeDeliveryFailureException when a code cannot be sent, and "a failed
            # call changes nothing": each code is delivered before the change is written. What could still refuse
            # the write is checked first, so that no code goes to an address the call then does not take.
            await self.check_attribute_aliases_free(pool, user, attributes)
            for attribute, code in codes.items():
                await self.deliver_code(
                    pool, user, attribute, attributes[attribute], code, f"attribute:{attribute}", trigger=trigger
                )
        user = await self._update(pool, user, change, free_usernames=self._nickname_keys(pool, attributes))
        deliveries = []
        for attribute, code in codes.items():
            # Bound to the new value (held or not, it is the one awaiting verification): see _send_verification.
            value = attributes[attribute]
            purpose = f"attribute:{attribute}"
            await self._keep_code(pool, user, purpose, code, {"attribute": attribute, "value": value})
            if admin:
                try:
                    await self.deliver_code(pool, user, attribute, value, code, purpose, trigger=trigger)
                except CodeDeliveryFailureException:
                    # AdminUpdateUserAttributes has no CodeDeliveryFailureException (nor anything to tell the
                    # caller where a code went): the administrator's change stands, the failure is logged and
                    # exported as every failed delivery is, and the user asks for a new code
                    # (GetUserAttributeVerificationCode).
                    continue
            deliveries.append(self.delivery_for(attribute, value))
        return deliveries

    async def check_attribute_aliases_free(
        self, pool: PoolView, user: UserRecord, attributes: Mapping[str, str]
    ) -> None:
        """AliasExistsException when the user's own :meth:`update_attributes` with ``attributes`` would take an
        alias (a username attribute, a verified alias, a preferred_username) that another user holds: for a
        caller that must know before it changes anything else (NEW_PASSWORD_REQUIRED sets the password first)."""
        attributes = canonical_values(pool.schema, dict(attributes))
        hold = set(
            (pool.settings.get("UserAttributeUpdateSettings") or {}).get("AttributesRequireVerificationBeforeUpdate")
            or []
        )
        after = dict(user.attributes)
        for name, value in attributes.items():
            if name in ("email", "phone_number") and value != user.attributes.get(name):
                if name in hold and name in pool.auto_verified and user.attributes.get(f"{name}_verified") == "true":
                    continue  # held until verified: the old value stays the alias (as in update_attributes)
                after[f"{name}_verified"] = "false"
            after[name] = value
        new = {k: v for k, v in self._aliases(pool, after).items() if user.aliases.get(k) != v}
        await self._check_aliases_free(pool, user, new)
        await self._check_nickname_is_no_username(pool, user.username_key, attributes)

    async def delete_attributes(
        self,
        pool: PoolView,
        user: UserRecord,
        names: Sequence[str],
        *,
        admin: bool,
        client: ClientView | None = None,
    ) -> None:
        """Admin/DeleteUserAttributes. Deleting is writing: a user's own call obeys the same limits as
        UpdateUserAttributes (developer-only attributes, the client's WriteAttributes, system attributes)."""
        index = {a["Name"]: a for a in pool.schema}
        for name in names:
            entry = index.get(name)
            if entry is None:
                raise InvalidParameterException(f"Attribute does not exist in the schema: {name}")
            if entry.get("Required") or name == "sub":
                raise InvalidParameterException(f"Cannot delete required attribute {name}")
            if not entry.get("Mutable", True):
                raise InvalidParameterException(f"Cannot modify the non-mutable attribute {name}")
            if not admin and entry.get("DeveloperOnlyAttribute"):
                raise InvalidParameterException(f"Cannot modify developer-only attribute {name}")
        _check_admin_writable(names)
        if not admin:
            _check_user_writable(names)
            if client is not None:
                self._check_writable(client, names)

        async def change(u: UserRecord) -> None:
            pending = pending_attributes(u)
            for name in names:
                u.attributes.pop(name, None)
                # A change still waiting for its code goes too: the code must not bring a deleted value back.
                pending.pop(name, None)
                if name in ("email", "phone_number"):
                    u.attributes.pop(f"{name}_verified", None)
            set_pending_attributes(u, pending)
            u.aliases = self._aliases(pool, u.attributes)

        await self._update(pool, user, change)

    async def send_attribute_code(
        self,
        pool: PoolView,
        user: UserRecord,
        attribute: str,
        *,
        client_id: str | None = None,
        client_metadata: Mapping[str, str] | None = None,
    ) -> CodeDelivery:
        if attribute not in ("email", "phone_number"):
            raise InvalidParameterException("Invalid attribute name: only email and phone_number can be verified.")
        if not user.attributes.get(attribute):
            raise InvalidParameterException(f"User has no value for the attribute {attribute}.")
        delivery = await self._send_verification(
            pool,
            user,
            purpose=f"attribute:{attribute}",
            attribute=attribute,
            limited=True,
            trigger=MessageTrigger(VERIFY_USER_ATTRIBUTE, client_id, client_metadata),
        )
        assert delivery is not None
        return delivery

    async def verify_attribute(self, pool: PoolView, user: UserRecord, attribute: str, code: str) -> None:
        if attribute not in ("email", "phone_number"):
            raise InvalidParameterException("Invalid attribute name: only email and phone_number can be verified.")
        purpose = f"attribute:{attribute}"
        # As ConfirmSignUp: the code is used up only once the verification can go through. An address another
        # user holds as an alias is AliasExistsException, and the same code may be tried again once it is free.
        record = await self._check_code(pool, user, purpose, code, consume=False)
        if not _code_fits(record, user, attribute):
            raise CodeMismatchException()
        after = {**user.attributes, f"{attribute}_verified": "true"}
        pending = pending_attributes(user)
        if attribute in pending:
            after[attribute] = pending[attribute]
        await self._check_aliases_free(pool, user, self._aliases(pool, after))
        await self.consume_code(pool, user, purpose, record.code_hash)

        async def change(u: UserRecord) -> None:
            if not _code_fits(record, u, attribute):
                raise CodeMismatchException()
            pending = pending_attributes(u)
            if attribute in pending:
                u.attributes[attribute] = pending.pop(attribute)
                set_pending_attributes(u, pending)
            u.attributes[f"{attribute}_verified"] = "true"
            u.aliases = self._aliases(pool, u.attributes)

        await self._update(pool, user, change)
        self._metrics.inc(self._metrics.confirmations, pool=pool.id, kind="attribute")

    async def set_enabled(self, pool: PoolView, user: UserRecord, enabled: bool) -> None:
        async def change(u: UserRecord) -> None:
            u.enabled = enabled

        await self._update(pool, user, change)
        if not enabled:
            # AdminDisableUser "deactivates a user and revokes all access tokens for the user".
            await self.global_sign_out(pool, user)

    async def delete(self, pool: PoolView, user: UserRecord) -> None:
        """AdminDeleteUser and DeleteUser. Of concurrent deletions of one user only the first succeeds; the others
        are told the user does not exist, as they would be a moment later."""
        if not await self._store.delete_user(pool.id, user.username_key):
            raise UserNotFoundException()
        log.info("user.deleted", pool=pool.id, username=user.username)

    async def global_sign_out(self, pool: PoolView, user: UserRecord) -> None:
        await self._store.revoke_user_token_families(pool.id, user.username_key)

        async def change(u: UserRecord) -> None:
            u.tokens_valid_after = time.time()

        await self._update(pool, user, change)
        log.info("global_sign_out", pool=pool.id, username=user.username)

    # --- passwords --------------------------------------------------------------------------------------

    async def _check_history(self, pool: PoolView, user: UserRecord, password: str) -> None:
        size = int(pool.password_policy.get("PasswordHistorySize") or 0)
        if size <= 0:
            return
        previous = [h for h in [user.password_hash, *user.password_history][:size] if h]
        results = await asyncio.gather(*(self._hasher.verify(h, password) for h in previous))
        if any(results):
            raise PasswordHistoryPolicyViolationException()

    async def set_password(
        self,
        pool: PoolView,
        user: UserRecord,
        password: str,
        *,
        permanent: bool,
        check_history: bool = True,
        screen: bool = True,
        by_admin: bool = False,
    ) -> UserRecord:
        """Give ``user`` a new password. ``by_admin`` (AdminSetUserPassword): a permanent password makes a
        federated profile CONFIRMED -- "When you set a password, the federated user's status changes from
        EXTERNAL_PROVIDER to CONFIRMED"; it then signs in by password as well as through its IdP.
        ``check_history`` and ``screen`` (threat protection's compromised-credentials check) are False for a
        caller that made those checks itself, before spending something the refusal must leave unspent."""
        check_password_policy(password, pool.password_policy)
        if check_history:
            await self._check_history(pool, user, password)
        if screen and self.threats is not None:
            await self.threats.screen_new_password(pool, None, password, "PASSWORD_CHANGE", user)
        password_hash, secrets = await self._new_password_material(pool, user.username, password)
        size = int(pool.password_policy.get("PasswordHistorySize") or 0)
        validity_days = int(pool.password_policy.get("TemporaryPasswordValidityDays", 7))

        async def change(u: UserRecord) -> None:
            if u.password_hash and size > 0:
                u.password_history = [u.password_hash, *u.password_history][: max(size - 1, 0)]
            u.password_hash = password_hash
            u.secrets = {**u.secrets, **secrets}
            u.password_updated_at = time.time()
            u.settings.pop("lockout", None)  # a new password ends a lockout after failed sign-ins
            u.settings.pop(_CHANGE_PASSWORD_TRIES, None)  # and the count of ChangePassword tries
            u.settings.pop("password_sign_in_disabled", None)  # and gives back password sign-in
            if permanent:
                u.temporary_password_expires_at = None
                # "When you set a password, the federated user's status changes from EXTERNAL_PROVIDER to
                # CONFIRMED" (AdminSetUserPassword): the administrator's call only.
                if u.status in (FORCE_CHANGE_PASSWORD, RESET_REQUIRED, UNCONFIRMED) or (
                    by_admin and u.status == EXTERNAL_PROVIDER
                ):
                    u.status = CONFIRMED
            else:
                u.status = FORCE_CHANGE_PASSWORD
                u.temporary_password_expires_at = time.time() + validity_days * 86400

        return await self._update(pool, user, change)

    async def change_password(self, pool: PoolView, user: UserRecord, previous: str | None, proposed: str) -> None:
        """ChangePassword. PreviousPassword is a password guess made with an access token: at most
        MAX_CHANGE_PASSWORD_FAILURES wrong ones per CHANGE_PASSWORD_WINDOW, then Cognito's
        LimitExceededException. Each try is counted before the password is checked, so a burst of concurrent
        calls cannot get more guesses than that; a new password clears the count.

        PreviousPassword is "Required if the user has a password. If the user has no password and only signs in
        with passwordless authentication options, you can omit this parameter" (ChangePasswordRequest): such a
        user sets a first password with the access token alone."""
        if previous is None:
            # A federated profile has no password either, but is no passwordless user: it gets none this way.
            if user.password_hash is not None or user.status == EXTERNAL_PROVIDER:
                raise InvalidParameterException("PreviousPassword is required.")
            await self.set_password(pool, user, proposed, permanent=True)
            return
        now = time.time()

        async def count_try(u: UserRecord) -> None:
            state = u.settings.get(_CHANGE_PASSWORD_TRIES)
            if not isinstance(state, dict) or now - float(state.get("since", 0)) > CHANGE_PASSWORD_WINDOW:
                state = {"since": now, "tries": 0}
            u.settings[_CHANGE_PASSWORD_TRIES] = {**state, "tries": int(state.get("tries", 0)) + 1}

        user = await self._update(pool, user, count_try)
        if int(user.settings[_CHANGE_PASSWORD_TRIES]["tries"]) > MAX_CHANGE_PASSWORD_FAILURES:
            raise LimitExceededException()
        if user.password_hash is None or not await self._hasher.verify(user.password_hash, previous):
            raise NotAuthorizedException("Incorrect username or password.")
        try:
            await self.set_password(pool, user, proposed, permanent=True)
        except GatehouseError:
            # The previous password was right: a refused new one (policy, history) is no wrong guess.
            await self._update(pool, user, _forget_change_password_try)
            raise

    async def forgot_password(
        self,
        pool: PoolView,
        client: ClientView,
        username: str,
        secret_hash_value: str | None,
        client_metadata: Mapping[str, str] | None = None,
    ) -> CodeDelivery:
        user = await self._named_by_client(pool, client, username, secret_hash_value)
        if user is None and self.triggers is not None and self.triggers.function(pool, "UserMigration") is not None:
            user = await self._migrate_for_reset(pool, client, username, client_metadata)
        if not self._recovery_order(pool) and (user is not None or client.prevent_user_existence_errors):
            # admin_only: no one of the pool recovers a password by themselves, so every name gets the one answer
            # a user gets (under PreventUserExistenceErrors, an unknown name too: it tells nothing of the user).
            raise _no_recovery_mechanism()
        if user is None:
            if client.prevent_user_existence_errors:
                await self.limit_code_send(pool, unknown_user_key(username), "forgot_password")
                return self._simulated_delivery(pool, username, self._recovery_order(pool))
            raise self._unknown_user(client, None)
        password_disabled = bool(user.settings.get("password_sign_in_disabled"))  # AdminDisableProviderForUser
        if password_disabled and not client.prevent_user_existence_errors:
            raise NotAuthorizedException("Password sign-in is disabled for this user.")
        if user.enabled and user.status == FORCE_CHANGE_PASSWORD and not client.prevent_user_existence_errors:
            # Cognito's answer for a user invited by AdminCreateUser who has not set a password yet: the way in is
            # the temporary password (NEW_PASSWORD_REQUIRED), or a new invitation from an administrator.
            raise _cannot_reset()
        # An invited user who has not signed in yet (FORCE_CHANGE_PASSWORD) is reached by no reset code either.
        reachable = (
            user.enabled
            and not password_disabled
            and user.status != FORCE_CHANGE_PASSWORD
            and self._recovery_attribute(pool, user) is not None
        )
        if not reachable and client.prevent_user_existence_errors and self._recovery_order(pool):
            # "When a user isn't found, is deactivated, or doesn't have a verified delivery mechanism to recover
            # their password, Amazon Cognito returns CodeDeliveryDetails with a simulated delivery medium" (Managing
            # user existence error responses): "User is disabled." or "no registered/verified email" would tell
            # that the name is a user's. Limited as a code sent would be, and nothing is sent.
            await self.limit_code_send(pool, user.username_key, "forgot_password")
            return self._simulated_delivery(pool, username, self._recovery_order(pool))
        delivery = await self._send_reset_code(
            pool,
            user,
            background=client.prevent_user_existence_errors,
            limited=True,
            trigger=MessageTrigger(FORGOT_PASSWORD, client.id, client_metadata),
        )
        if self.threats is not None:
            await self.threats.forgot_password(pool, client, user)
        return delivery

    async def _migrate_for_reset(
        self, pool: PoolView, client: ClientView, username: str, client_metadata: Mapping[str, str] | None
    ) -> UserRecord | None:
        """ForgotPassword of a name that is no user: the pool's UserMigration function may answer with the user
        (UserMigration_ForgotPassword), created without a password (RESET_REQUIRED) so that the reset code sent
        next is its way in. None when the function does not know the name."""
        assert self.triggers is not None
        answer = await self.triggers.user_migration(
            pool,
            USER_MIGRATION_FORGOT_PASSWORD,
            client_id=client.id,
            username=username,
            password=None,
            client_metadata=client_metadata,
        )
        if answer is None:
            return None
        try:
            return await self.migrate_user(
                pool,
                username=username,
                password=None,
                attributes=dict(answer.attributes),
                reset_required=True,
                force_alias_creation=answer.force_alias_creation,
                sms_mfa=answer.sms_mfa,
            )
        except UsernameExistsException:
            return await self.find(pool, username)

    @staticmethod
    def _recovery_mechanisms(pool: PoolView) -> list[dict[str, Any]]:
        configured = (pool.settings.get("AccountRecoverySetting") or {}).get("RecoveryMechanisms")
        # No AccountRecoverySetting: "Amazon Cognito uses the legacy behavior to determine the recovery method
        # where SMS is preferred through email" (AccountRecoverySettingType).
        mechanisms = configured or [
            {"Name": "verified_phone_number", "Priority": 1},
            {"Name": "verified_email", "Priority": 2},
        ]
        return sorted(mechanisms, key=lambda m: int(m.get("Priority", 1)))

    def _recovery_order(self, pool: PoolView) -> list[str]:
        """The attributes a reset code may go to, in the pool's order; none with admin_only."""
        mechanisms = self._recovery_mechanisms(pool)
        if any(m.get("Name") == "admin_only" for m in mechanisms):
            return []
        return [str(m.get("Name", "")).removeprefix("verified_") for m in mechanisms]

    def _recovery_attribute(self, pool: PoolView, user: UserRecord) -> str | None:
        configured = (pool.settings.get("AccountRecoverySetting") or {}).get("RecoveryMechanisms")
        mechanisms = self._recovery_mechanisms(pool)
        if any(m.get("Name") == "admin_only" for m in mechanisms):
            return None  # "The admin_only option prevents self-service account recovery" (RecoveryOptionType)
        # AccountRecoverySettingType: "With this setting, SMS doesn't qualify for a valid password recovery
        # mechanism if the user also has SMS multi-factor authentication (MFA) activated. Email MFA is also
        # disqualifying for account recovery with email." -- one phone (or mailbox) must not be both the way to
        # a new password and the second factor.
        second_factors = set(mfa_settings(user)["enabled"]) if configured else set()
        disqualified = {
            a for a, factor in (("phone_number", SMS_MFA), ("email", EMAIL_OTP)) if factor in second_factors
        }
        for mechanism in mechanisms:
            name = str(mechanism.get("Name", ""))
            attribute = name.removeprefix("verified_")
            if (
                attribute in ("email", "phone_number")
                and attribute not in disqualified
                and user.attributes.get(attribute)
                and (user.attributes.get(f"{attribute}_verified") == "true")
            ):
                return attribute
        return None

    async def _send_reset_code(
        self,
        pool: PoolView,
        user: UserRecord,
        *,
        background: bool = False,
        limited: bool = False,
        trigger: MessageTrigger | None = None,
    ) -> CodeDelivery:
        if not user.enabled:
            raise NotAuthorizedException("User is disabled.")
        attribute = self._recovery_attribute(pool, user)
        if attribute is None:
            raise _no_recovery_mechanism()
        value = user.attributes[attribute]
        await self._send_code(
            pool,
            user,
            attribute,
            value,
            new_code(),
            "forgot_password",
            background=background,
            limited=limited,
            trigger=trigger,
        )
        return self.delivery_for(attribute, value)

    async def confirm_forgot_password(
        self,
        pool: PoolView,
        client: ClientView,
        *,
        username: str,
        code: str,
        password: str,
        secret_hash_value: str | None,
        client_metadata: Mapping[str, str] | None = None,
    ) -> None:
        user = await self._named_by_client(pool, client, username, secret_hash_value)
        if user is None and client.prevent_user_existence_errors:
            # The new password is judged first for an unknown user too: the answer must not tell them apart.
            check_password_policy(password, pool.password_policy)
        if user is None:
            raise self._unknown_user(client, CodeMismatchException())
        check_password_policy(password, pool.password_policy)
        if not user.enabled:
            # A code sent before an administrator disabled the user sets no password now. "Amazon Cognito returns
            # the CodeMismatchException error for users that don't exist or are disabled" (Managing user existence
            # error responses); without PreventUserExistenceErrors, the answer ForgotPassword gives them.
            if client.prevent_user_existence_errors:
                raise CodeMismatchException()
            raise NotAuthorizedException("User is disabled.")
        # The code first: judged before it, the history check would tell anyone who knows a username whether
        # a guess is the current (or a previous) password, with no code and no attempt counted.
        record = await self._check_code(
            pool, user, "forgot_password", code, consume=False, none_as_mismatch=client.prevent_user_existence_errors
        )
        await self._check_history(pool, user, password)
        if self.threats is not None:
            # A compromised password refused leaves the code unspent, as a password the policy refuses does.
            await self.threats.screen_new_password(pool, client, password, "PASSWORD_CHANGE", user)
        await self.consume_code(pool, user, "forgot_password", record.code_hash)
        user = await self.set_password(pool, user, password, permanent=True, check_history=False, screen=False)
        self._metrics.inc(self._metrics.confirmations, pool=pool.id, kind="forgot_password")
        log.info("password.reset", pool=pool.id, username=user.username)
        await self._post_confirmation(pool, user, POST_CONFIRMATION_FORGOT_PASSWORD, client.id, client_metadata)

    async def admin_reset_password(
        self, pool: PoolView, user: UserRecord, client_metadata: Mapping[str, str] | None = None
    ) -> None:
        if not self._recovery_order(pool):
            # "To use this API operation, your user pool must have self-service account recovery configured. Use
            # AdminSetUserPassword if you manage passwords as an administrator." (AdminResetUserPassword): with
            # admin_only the user could never finish the reset (ForgotPassword sends no code) and would stay
            # locked out; refused before anything changes.
            raise OperationNotEnabledException(
                "AdminResetUserPassword needs self-service account recovery, and this user pool's "
                "AccountRecoverySetting is admin_only: set the password with AdminSetUserPassword."
            )
        if not user.enabled:
            # Refused before anything changes: the reset code could not be sent to a disabled user, and a failed
            # call must not leave the user in RESET_REQUIRED ("use admin-enable-user before
            # admin-reset-user-password", Cognito's answer to this NotAuthorizedException).
            raise NotAuthorizedException("User is disabled.")
        if user.status == FORCE_CHANGE_PASSWORD:
            raise _cannot_reset()  # Cognito's: the invitation (AdminCreateUser RESEND) is the way to a new one

        async def change(u: UserRecord) -> None:
            u.settings.pop("lockout", None)  # and so does an administrator's reset
            if u.status == UNCONFIRMED:
                return
            u.status = RESET_REQUIRED

        # The code is delivered before anything is written: a reset whose code cannot be sent answers
        # CodeDeliveryFailureException and leaves the user as they were (status, lockout, tokens, the code
        # already sent). An unconfirmed user keeps the status and gets no code.
        attribute = self._recovery_attribute(pool, user) if user.status != UNCONFIRMED else None
        code = new_code()
        if attribute is not None:
            await self.deliver_code(
                pool,
                user,
                attribute,
                user.attributes[attribute],
                code,
                "forgot_password",
                trigger=MessageTrigger(FORGOT_PASSWORD, client_metadata=client_metadata),
            )
        user = await self._update(pool, user, change)
        if attribute is not None and user.status == RESET_REQUIRED:
            await self._keep_code(pool, user, "forgot_password", code)
        await self._store.revoke_user_token_families(pool.id, user.username_key)

    # --- listing ----------------------------------------------------------------------------------------

    async def list_users(
        self, pool: PoolView, *, filter_expr: str | None, limit: int, next_token: str | None
    ) -> tuple[list[UserRecord], str | None]:
        """ListUsers with Cognito's filter syntax: ``attr = "value"`` or ``attr ^= "prefix"``, answered from
        the store's search index: ``=`` is one index look-up whatever the pool's size; ``^=`` walks the index in
        the database, never the users in Python."""
        where = parse_user_filter(filter_expr, case_sensitive=pool.case_sensitive) if filter_expr else None
        page = await self._store.list_users(pool.id, next_token, limit, where=where)
        return page.items, page.next_token


_FILTERABLE = frozenset(SEARCHABLE_USER_FIELDS)


def parse_user_filter(expression: str, *, case_sensitive: bool = False) -> UserSearch:
    """Cognito's ListUsers filter: ``AttributeName Filter-Type "AttributeValue"`` with ``=`` or ``^=``.

    ``email``, ``preferred_username`` and ``cognito:user_status`` compare without regard to case (ListUsers'
    Filter); ``username`` is documented case-sensitive: it matches as the pool compares usernames
    (``case_sensitive``, UsernameConfiguration), so in a case-sensitive pool "Bob" and "bob" are told apart as at
    sign-in."""
    import re

    match = re.fullmatch(r'\s*([\w:]+)\s*(\^=|=)\s*"((?:[^"\\]|\\.)*)"\s*', expression)
    if match is None:
        raise InvalidParameterException("Error while parsing filter.")
    # Inside the quotes a backslash escapes the next character (the documented \" and, so that a value can
    # end in a backslash, \\).
    name, operator, value = match.group(1), match.group(2), re.sub(r"\\(.)", r"\1", match.group(3), flags=re.DOTALL)
    if name not in _FILTERABLE:
        raise InvalidParameterException(f"Invalid search attribute: {name}")
    folded = name in {"email", "preferred_username", "cognito:user_status"} or (
        name == "username" and not case_sensitive
    )
    return UserSearch(name, value.lower() if folded else value, prefix=operator == "^=", folded=folded)


# Attributes only Gatehouse itself writes for a user: the verification flags (set by a confirmed code) and
# `identities` (set by federation and AdminLinkProviderForUser; it becomes the ID token's `identities` claim,
# which applications read as proof of a federated sign-in). An administrator may still set the flags.
_SYSTEM_ATTRIBUTES = ("email_verified", "phone_number_verified", "identities")
# Not even an administrator writes these: Cognito answers a write of `identities` with "Cannot modify the
# non-mutable attribute identities", whoever sends it. Linking goes through AdminLinkProviderForUser and
# unlinking through AdminDisableProviderForUser, which keep the attribute's entries consistent with the links.
_FEDERATION_ATTRIBUTES = ("identities",)
# Where a sign-up code goes when the pool verifies both and the user gave both: "it chooses to verify the phone
# number by sending a verification code through SMS".
_SIGN_UP_CODE_ORDER = ("phone_number", "email")
# ForceAliasCreation moves these from their holder ("the phone number or email address ... already exists as an
# alias with a different user"); any other alias (preferred_username) stays unique outright.
_MIGRATING_ALIASES = ("email", "phone_number")


def _migrates(pool: PoolView, attribute: str) -> bool:
    """Whether ForceAliasCreation moves the alias ``attribute`` from its holder. Never in a pool whose users sign
    in with email or phone number (UsernameAttributes): there the address is a username, indexed whether
    verified or not, and stays its holder's -- moved, it would come back at the holder's next update and block
    it, and two users would share one sign-in name. The call answers as it does without ForceAliasCreation
    (UsernameExistsException)."""
    return attribute in _MIGRATING_ALIASES and attribute not in pool.username_attributes


def _check_verified_flags(written: Mapping[str, str], result: Mapping[str, str]) -> None:
    """An email (phone number) is marked verified only beside a value: "You must provide a value for email
    when you want to set email_verified to true" (AdminCreateUser's UserAttributes; phone_number alike)."""
    for attribute in ("email", "phone_number"):
        if written.get(f"{attribute}_verified") == "true" and not result.get(attribute):
            raise InvalidParameterException(f"{attribute}_verified cannot be true when {attribute} has no value.")


def _check_admin_writable(names: Iterable[str]) -> None:
    """Refuse an administrator's write (or deletion) of an attribute only federation sets."""
    for name in names:
        if name in _FEDERATION_ATTRIBUTES:
            raise InvalidParameterException(f"Cannot modify the non-mutable attribute {name}")


def _check_user_writable(names: Iterable[str]) -> None:
    """Refuse a user's own write (or deletion) of an attribute only Gatehouse or an administrator sets."""
    for name in names:
        if name in _SYSTEM_ATTRIBUTES:
            raise InvalidParameterException(f"Cannot modify the non-mutable attribute {name}")


def _alias_exists(key: str) -> AliasExistsException:
    """AliasExistsException naming the attribute whose value another user holds (Cognito: "An account with
    the given email already exists.", and so for phone_number and preferred_username)."""
    attribute = key.removeprefix("alias:") if key.startswith("alias:") else "email"
    return AliasExistsException(f"An account with the given {attribute} already exists.")


def _username_format_message(username_attributes: Sequence[str]) -> str:
    """Cognito's answer to a name that is none of the pool's username attributes: "Username should be an
    email." where users sign in with email only, the phone number's like it, and both named where both are."""
    if list(username_attributes) == ["email"]:
        return "Username should be an email."
    if list(username_attributes) == ["phone_number"]:
        return "Username should be a phone number."
    return "Username should be either an email or a phone number."


def _no_recovery_mechanism() -> InvalidParameterException:
    """ForgotPassword for a user no reset code can reach (no verified address of the pool's recovery mechanisms,
    or a pool whose AccountRecoverySetting is admin_only)."""
    return InvalidParameterException(
        "Cannot reset password for the user as there is no registered/verified email or phone_number"
    )


def _cannot_reset() -> NotAuthorizedException:
    """ForgotPassword and AdminResetUserPassword for a user who still has a temporary password."""
    return NotAuthorizedException("User password cannot be reset in the current state.")


async def _forget_change_password_try(user: UserRecord) -> None:
    state = user.settings.get(_CHANGE_PASSWORD_TRIES)
    if isinstance(state, dict) and int(state.get("tries", 0)) > 0:
        user.settings[_CHANGE_PASSWORD_TRIES] = {**state, "tries": int(state["tries"]) - 1}


def _code_fits(record: CodeRecord, user: UserRecord, attribute: str) -> bool:
    """Whether a verification code was sent to the value ``attribute`` now awaits verification at (the
    pending value, else the current one). Codes issued before codes were bound to a value carry none."""
    sent_to = record.data.get("value")
    if sent_to is None:
        return True
    return bool(record.data.get("attribute", attribute) == attribute) and sent_to == (
        pending_attributes(user).get(attribute) or user.attributes.get(attribute)
    )


def pending_attributes(user: UserRecord) -> dict[str, str]:
    """Attribute values waiting for verification before they replace the current ones."""
    return dict(user.settings.get("pending_attributes") or {})


def set_pending_attributes(user: UserRecord, pending: Mapping[str, str]) -> None:
    if pending:
        user.settings["pending_attributes"] = dict(pending)
    else:
        user.settings.pop("pending_attributes", None)


# A sub as gateway.ids.new_sub writes it (a UUID's 8-4-4-4-12 hex digits), in either letter case.
# The first-factor one-time codes, by the address each goes to.
_CODE_FACTORS = {"EMAIL_OTP": "email", "SMS_OTP": "phone_number"}
_SUB_SHAPE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)


def is_sub_shaped(value: str) -> bool:
    """Whether ``value`` is spelled as a ``sub`` is (a UUID)."""
    return _SUB_SHAPE.fullmatch(value) is not None


def alias_value(attribute: str, value: str) -> str:
    """A value as the alias index keeps it: emails and preferred usernames in lower case."""
    return value.lower() if attribute in ("email", "preferred_username") else value
