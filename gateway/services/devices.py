"""Remembered devices: Cognito's device tracking (ConfirmDevice ... AdminForgetDevice, DEVICE_SRP_AUTH).

A pool tracks devices once its DeviceConfiguration names any member. A sign-in from an unknown device then
ends with ``NewDeviceMetadata`` (a ``DeviceKey`` ``<region>_<uuid>`` and the user's ``DeviceGroupKey``) and an
access token carrying ``device_key``; the client makes up a random device secret, derives an SRP verifier
from it exactly as for a password (the group key in the place of the pool name, the device key in the place
of the username) and registers it with ConfirmDevice. Only then does the device exist. With
``DeviceOnlyRememberedOnUserPrompt`` it starts as ``not_remembered`` (ConfirmDevice answers
``UserConfirmationNecessary``) until UpdateDeviceStatus remembers it; otherwise it is remembered at once.

A later sign-in that names the device (``DEVICE_KEY``) ends in the ``DEVICE_SRP_AUTH`` challenge, answered by
``DEVICE_PASSWORD_VERIFIER``: SRP proof that the client still holds the device secret. A *remembered* device
skips the MFA step when the pool's ``ChallengeRequiredOnNewDevice`` is true ("a remembered device can sign in
with device authentication instead of SMS and TOTP factors", DeviceConfigurationType); a forgotten device is
unknown again, so its user is asked for MFA and gets new device metadata.

A sign-in's tokens belong to its device (the one that proved itself, or the new key handed out with them): "these
tokens are linked to a single device. If a refresh token is used on any other device, the call fails". The
token family records the key, a refresh checks it (AuthService._refresh_device), and once the device is forgotten
none of its families refreshes again.

The group key is derived (HMAC of the server-wide secret over pool and user) rather than stored: it names
the set of one user's devices and must be the same at ConfirmDevice as in every later device challenge.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import time
import uuid
from hashlib import sha256
from typing import Any

import structlog

from gateway.errors import (
    DeviceKeyExistsException,
    InvalidParameterException,
    InvalidUserPoolConfigurationException,
    ResourceNotFoundException,
)
from gateway.secretbox import SecretBox, SecretBoxError
from gateway.services.pools import PoolView
from gateway.services.srp import SrpVerifier
from gateway.storage.base import AlreadyExists, DeviceRecord, NotFound, Store, UserRecord

log = structlog.get_logger("gateway.devices")

REMEMBERED = "remembered"
NOT_REMEMBERED = "not_remembered"
DEVICE_NOT_FOUND = "Device does not exist."
# SRP group values are below N (3072 bits): a verifier or salt of more than this many bytes is not one.
_MAX_SRP_BYTES = 512


def _b64_to_hex(value: Any, member: str) -> str:
    """A DeviceSecretVerifierConfig member: base64 of the big-endian bytes the client computed in hex."""
    if not isinstance(value, str) or not value:
        raise InvalidParameterException(f"DeviceSecretVerifierConfig.{member} is required.")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidParameterException(f"DeviceSecretVerifierConfig.{member} must be base64.") from exc
    if not raw or len(raw) > _MAX_SRP_BYTES or not any(raw):
        raise InvalidParameterException(f"DeviceSecretVerifierConfig.{member} is not a valid SRP value.")
    return raw.hex()


class DeviceService:
    """A pool's users' devices."""

    def __init__(self, store: Store, box: SecretBox, secret: bytes) -> None:
        self.store = store
        self.box = box
        self._group_secret = hmac.new(secret, b"gatehouse/device-group/v1", sha256).digest()

    # --- configuration ----------------------------------------------------------------------------------

    @staticmethod
    def tracking(pool: PoolView) -> bool:
        return pool.device_configuration is not None

    @staticmethod
    def skips_mfa(pool: PoolView, device: DeviceRecord) -> bool:
        config = pool.device_configuration or {}
        return device.remembered and bool(config.get("ChallengeRequiredOnNewDevice"))

    def group_key(self, pool: PoolView, user: UserRecord) -> str:
        """The user's DeviceGroupKey: stable, unguessable, shaped like Cognito's (``-`` and nine characters)."""
        digest = hmac.new(self._group_secret, f"{pool.id}|{user.sub}".encode(), sha256).digest()
        return "-" + base64.urlsafe_b64encode(digest).decode()[:9].replace("-", "A").replace("_", "B")

    def new_metadata(self, pool: PoolView, user: UserRecord) -> dict[str, str]:
        """NewDeviceMetadata for a sign-in from a device not known yet."""
        region = pool.id.partition("_")[0]
        return {"DeviceKey": f"{region}_{uuid.uuid4()}", "DeviceGroupKey": self.group_key(pool, user)}

    def _check_tracking(self, pool: PoolView) -> None:
        if not self.tracking(pool):
            raise InvalidUserPoolConfigurationException("Device tracking is not enabled for this user pool.")

    # --- reading ------------------------------------------------------------------------------------------

    async def find(self, pool: PoolView, user: UserRecord, device_key: str) -> DeviceRecord | None:
        device = await self.store.get_device(pool.id, device_key)
        if device is None or device.username_key != user.username_key:
            return None
        return device

    async def get(self, pool: PoolView, user: UserRecord, device_key: str) -> DeviceRecord:
        """The user's device, or ResourceNotFoundException (also for another user's device)."""
        device = await self.find(pool, user, device_key)
        if device is None:
            raise ResourceNotFoundException(DEVICE_NOT_FOUND)
        return device

    async def for_sign_in(self, pool: PoolView, user: UserRecord, device_key: str | None) -> DeviceRecord | None:
        """The device a sign-in names (DEVICE_KEY), when the pool tracks devices. A key that names no device
        of this user is refused with ResourceNotFoundException, which amazon-cognito-identity-js answers by
        forgetting the key and answering again without it."""
        if not device_key or not self.tracking(pool):
            return None
        return await self.get(pool, user, device_key)

    def verifier(self, pool: PoolView, device: DeviceRecord) -> SrpVerifier | None:
        try:
            data = json.loads(self.box.open(device.verifier, aad=_aad(pool.id, device.device_key)))
            return SrpVerifier(salt_hex=str(data["salt"]), verifier_hex=str(data["verifier"]))
        except (SecretBoxError, ValueError, KeyError, TypeError):
            log.warning("device.verifier_unreadable", pool=pool.id, device_key=device.device_key)
            return None

    async def list_page(
        self, pool: PoolView, user: UserRecord, after: str | None, limit: int
    ) -> tuple[list[DeviceRecord], str | None]:
        page = await self.store.list_devices(pool.id, user.username_key, after, limit)
        return page.items, page.next_token

    @staticmethod
    def device_type(device: DeviceRecord) -> dict[str, Any]:
        """Cognito's DeviceType. The attribute names are Cognito's (GetDevice, AdminListDevices): the source address
        of the device's last sign-in is ``last_ip_used``."""
        attributes = [
            {"Name": "device_status", "Value": "valid"},
            {"Name": "dev:device_remembered_status", "Value": REMEMBERED if device.remembered else NOT_REMEMBERED},
        ]
        if device.name:
            attributes.append({"Name": "device_name", "Value": device.name})
        if device.last_ip:
            attributes.append({"Name": "last_ip_used", "Value": device.last_ip})
        result: dict[str, Any] = {
            "DeviceKey": device.device_key,
            "DeviceAttributes": attributes,
            "DeviceCreateDate": device.created_at,
            "DeviceLastModifiedDate": device.updated_at,
        }
        if device.last_authenticated_at is not None:
            result["DeviceLastAuthenticatedDate"] = device.last_authenticated_at
        return result

    # --- changing -----------------------------------------------------------------------------------------

    async def confirm(
        self,
        pool: PoolView,
        user: UserRecord,
        *,
        token_device_key: str | None,
        device_key: str,
        verifier_config: dict[str, Any] | None,
        name: str | None,
        source_ip: str | None,
    ) -> bool:
        """ConfirmDevice: register the device the access token was issued to, with the SRP verifier of its
        secret. Returns UserConfirmationNecessary (the pool remembers devices only when the user asks)."""
        self._check_tracking(pool)
        if token_device_key != device_key:
            # A device key is handed out with one sign-in's tokens and is confirmed with them, never another.
            raise ResourceNotFoundException(DEVICE_NOT_FOUND)
        if not verifier_config:
            raise InvalidParameterException("DeviceSecretVerifierConfig is required.")
        salt_hex = _b64_to_hex(verifier_config.get("Salt"), "Salt")
        verifier_hex = _b64_to_hex(verifier_config.get("PasswordVerifier"), "PasswordVerifier")
        sealed = self.box.seal(
            json.dumps({"salt": salt_hex, "verifier": verifier_hex}).encode(), aad=_aad(pool.id, device_key)
        )
        config = pool.device_configuration or {}
        on_prompt = bool(config.get("DeviceOnlyRememberedOnUserPrompt"))
        now = time.time()
        device = DeviceRecord(
            pool_id=pool.id,
            device_key=device_key,
            username_key=user.username_key,
            name=name,
            remembered=not on_prompt,
            verifier=sealed,
            created_at=now,
            updated_at=now,
            last_authenticated_at=now,
            last_ip=source_ip,
        )
        try:
            await self.store.create_device(device)
        except AlreadyExists as exc:
            if exc.key == "forgotten":
                # ForgetDevice: "the device is unknown from now on", even to the token it was issued with.
                raise ResourceNotFoundException(DEVICE_NOT_FOUND) from exc
            raise DeviceKeyExistsException("Device key already exists.") from exc
        except NotFound as exc:
            raise ResourceNotFoundException("User does not exist.") from exc
        log.info(
            "device.confirmed",
            pool=pool.id,
            username=user.username,
            device_key=device_key,
            remembered=device.remembered,
        )
        return on_prompt

    async def set_status(self, pool: PoolView, user: UserRecord, device_key: str, status: str | None) -> None:
        """UpdateDeviceStatus / AdminUpdateDeviceStatus."""
        if status not in (REMEMBERED, NOT_REMEMBERED):
            raise InvalidParameterException("DeviceRememberedStatus must be remembered or not_remembered.")
        await self.get(pool, user, device_key)
        # The status alone: a sign-in recorded meanwhile (signed_in) keeps its time and address.
        if not await self.store.set_device_remembered(pool.id, device_key, status == REMEMBERED, time.time()):
            raise ResourceNotFoundException(DEVICE_NOT_FOUND)
        log.info("device.status_set", pool=pool.id, username=user.username, device_key=device_key, status=status)

    async def forget(self, pool: PoolView, user: UserRecord, device_key: str) -> None:
        """ForgetDevice / AdminForgetDevice: the device is unknown from now on, "and as a result, all future calls
        to revalidate that device's refresh tokens will fail" (AWS Mobile blog, "Tracking and Remembering Devices
        Using Amazon Cognito Your User Pools"): a refresh reads the forgotten key with the token family bound to
        it (AuthService._refresh_device), so the forget alone ends them all."""
        await self.get(pool, user, device_key)
        # The key is kept as forgotten: the access token that names it may still be used with ConfirmDevice (and
        # lives out its time, as the other access tokens of the device's sign-ins do).
        if not await self.store.forget_device(pool.id, device_key, time.time()):
            raise ResourceNotFoundException(DEVICE_NOT_FOUND)
        log.info("device.forgotten", pool=pool.id, username=user.username, device_key=device_key)

    async def signed_in(self, device: DeviceRecord, source_ip: str | None) -> None:
        """Record a device sign-in (DeviceLastAuthenticatedDate, last_ip_used). Only those are written: a read-then-
        write of the whole device would undo an UpdateDeviceStatus that lands in between (a device its user
        stopped remembering would be remembered again, and skip MFA)."""
        if not await self.store.touch_device(device.pool_id, device.device_key, time.time(), source_ip or None):
            log.info("device.gone_while_signing_in", pool=device.pool_id, device_key=device.device_key)


def _aad(pool_id: str, device_key: str) -> bytes:
    return f"device|{pool_id}|{device_key}".encode()
