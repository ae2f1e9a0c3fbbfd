"""Managed login branding (CreateManagedLoginBranding and its siblings): one style per app client, as data.

A style is Cognito's ``Settings`` JSON document and a list of image ``Assets`` (AssetType: Category,
ColorMode, Extension, Bytes, ResourceId), or ``UseCognitoProvidedValues`` (the defaults, with neither).
Gatehouse stores and returns the document as given -- it does not interpret Cognito's style-settings schema
-- and applies one part of it to its hosted pages: a light-mode (or browser-adaptive) FORM_LOGO or
PAGE_HEADER_LOGO is shown as the client's logo, in place of SetUICustomization's.

UpdateManagedLoginBranding keeps what a request leaves out, as Cognito does ("preserves existing style
settings that you don't specify"): a Settings document is merged into the stored one object by object, and
each asset replaces the stored asset of the same Category and ColorMode; ``UseCognitoProvidedValues`` resets
the style to the defaults.
"""

from __future__ import annotations

import base64
import binascii
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from gateway.errors import (
    ConcurrentModificationException,
    InvalidParameterException,
    ManagedLoginBrandingExistsException,
    ResourceNotFoundException,
)
from gateway.services.pools import CACHE_SECONDS, PoolService
from gateway.storage.base import AlreadyExists, ManagedLoginBrandingRecord, NotFound, Store, VersionConflict

log = structlog.get_logger("gateway.branding")

# AssetListType's max and AssetBytesType's max in botocore's model.
MAX_ASSETS = 40
MAX_ASSET_BYTES = 1_000_000
# The categories shown as the hosted pages' logo, in order of preference, and the colour modes a page
# without a dark mode can show.
LOGO_CATEGORIES = ("FORM_LOGO", "PAGE_HEADER_LOGO")
LOGO_COLOR_MODES = ("LIGHT", "DYNAMIC")
CONTENT_TYPES = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "WEBP": "image/webp",
    "ICO": "image/x-icon",
    "SVG": "image/svg+xml",
}
_ASSET_MEMBERS = ("Category", "ColorMode", "Extension", "Bytes", "ResourceId")


def _matches_extension(extension: str, data: bytes) -> bool:
    """Whether the file is what its Extension says (its signature), so an image is served as what it is."""
    if extension == "PNG":
        return data.startswith(b"\x89PNG\r\n\x1a\n")
    if extension == "JPEG":
        return data.startswith(b"\xff\xd8\xff")
    if extension == "WEBP":
        return data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    if extension == "ICO":
        return data.startswith(b"\x00\x00\x01\x00")
    if extension == "SVG":
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return "<svg" in text.lower()
    return False


def _check_asset(index: int, asset: Mapping[str, Any]) -> dict[str, Any]:
    """One AssetType, checked beyond the model: its bytes are present, within the limit, and of its type."""
    where = f"Assets[{index}]"
    extension = asset.get("Extension")
    if extension not in CONTENT_TYPES:
        raise InvalidParameterException(f"{where}.Extension is not a supported image type.")
    encoded = asset.get("Bytes")
    if not isinstance(encoded, str) or not encoded:
        raise InvalidParameterException(f"{where}.Bytes is required.")
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidParameterException(f"{where}.Bytes is not valid base64.") from exc
    if len(data) > MAX_ASSET_BYTES:
        raise InvalidParameterException(f"{where}.Bytes is larger than {MAX_ASSET_BYTES} bytes.")
    if not _matches_extension(str(extension), data):
        raise InvalidParameterException(f"{where}.Bytes is not a {extension} file.")
    return {k: asset[k] for k in _ASSET_MEMBERS if asset.get(k) is not None}


def _check_assets(assets: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    if len(assets) > MAX_ASSETS:
        raise InvalidParameterException(f"A branding style has at most {MAX_ASSETS} assets.")
    checked = [_check_asset(i, a) for i, a in enumerate(assets)]
    slots = [(a["Category"], a["ColorMode"]) for a in checked]
    if len(set(slots)) != len(slots):
        raise InvalidParameterException("Assets has more than one asset with the same Category and ColorMode.")
    return checked


def _check_settings(settings: object) -> dict[str, Any]:
    if not isinstance(settings, dict):
        raise InvalidParameterException("Settings must be a JSON object.")
    return settings


def _merged(stored: Mapping[str, Any], change: Mapping[str, Any]) -> dict[str, Any]:
    """``change`` laid over ``stored``: objects merge member by member, anything else replaces."""
    result = dict(stored)
    for key, value in change.items():
        old = result.get(key)
        result[key] = _merged(old, value) if isinstance(old, dict) and isinstance(value, dict) else value
    return result


def logo_asset(record: ManagedLoginBrandingRecord) -> dict[str, Any] | None:
    """The asset the hosted pages show as the logo: a FORM_LOGO before a PAGE_HEADER_LOGO, LIGHT before
    DYNAMIC (the pages have no dark mode)."""
    for category in LOGO_CATEGORIES:
        for mode in LOGO_COLOR_MODES:
            for asset in record.assets:
                if asset.get("Category") == category and asset.get("ColorMode") == mode and asset.get("Bytes"):
                    return asset
    return None


class BrandingService:
    """Managed login branding styles of a pool's app clients."""

    def __init__(self, store: Store, pools: PoolService) -> None:
        self.store = store
        self.pools = pools
        # Each client's style (or None) as the hosted pages last read it, with when (time.monotonic()): every
        # page view asks, and a style changes rarely. A change made here clears it at once; one made by
        # another process is seen within CACHE_SECONDS, as pools and clients are (gateway/services/pools.py).
        self._for_client: dict[tuple[str, str], tuple[float, ManagedLoginBrandingRecord | None]] = {}

    @staticmethod
    def _request_parts(
        request: Mapping[str, Any],
    ) -> tuple[bool, dict[str, Any] | None, list[dict[str, Any]] | None]:
        defaults = bool(request.get("UseCognitoProvidedValues"))
        settings, assets = request.get("Settings"), request.get("Assets")
        if defaults and (settings is not None or assets):
            raise InvalidParameterException(
                "Settings and Assets must be omitted when UseCognitoProvidedValues is true."
            )
        checked_settings = None if settings is None else _check_settings(settings)
        checked_assets = None if assets is None else _check_assets(assets)
        return defaults, checked_settings, checked_assets

    async def create(self, pool_id: str, client_id: str, request: Mapping[str, Any]) -> ManagedLoginBrandingRecord:
        """CreateManagedLoginBranding: a new style for a client that has none."""
        await self.pools.get_pool(pool_id)
        await self.pools.get_client(pool_id, client_id)
        defaults, settings, assets = self._request_parts(request)
        now = time.time()
        record = ManagedLoginBrandingRecord(
            pool_id=pool_id,
            branding_id=str(uuid.uuid4()),
            client_id=client_id,
            use_cognito_provided_values=defaults,
            settings=settings,
            assets=assets or [],
            created_at=now,
            updated_at=now,
        )
        try:
            await self.store.create_managed_login_branding(record)
        except AlreadyExists as exc:
            if exc.args and exc.args[0] == "client":
                raise ManagedLoginBrandingExistsException(
                    f"App client {client_id} already has a managed login branding style."
                ) from exc
            raise
        except NotFound as exc:
            # The client (or pool) was deleted while the style was being made.
            raise ResourceNotFoundException(f"User pool client {client_id} does not exist.") from exc
        self._for_client.clear()
        log.info("branding.created", pool=pool_id, client=client_id, branding=record.branding_id)
        return record

    async def get(self, pool_id: str, branding_id: str) -> ManagedLoginBrandingRecord:
        await self.pools.get_pool(pool_id)
        record = await self.store.get_managed_login_branding(pool_id, branding_id)
        if record is None:
            raise ResourceNotFoundException(f"Managed login branding {branding_id} does not exist.")
        return record

    async def get_by_client(self, pool_id: str, client_id: str) -> ManagedLoginBrandingRecord:
        await self.pools.get_pool(pool_id)
        await self.pools.get_client(pool_id, client_id)
        record = await self.store.get_managed_login_branding_by_client(pool_id, client_id)
        if record is None:
            raise ResourceNotFoundException(f"App client {client_id} has no managed login branding style.")
        return record

    async def find_for_client(self, pool_id: str, client_id: str) -> ManagedLoginBrandingRecord | None:
        """The client's style for the hosted pages, or None (no errors: a page without a style is plain).
        From this process's short-lived cache: the record is shared, and must not be changed."""
        key = (pool_id, client_id)
        now = time.monotonic()
        cached = self._for_client.get(key)
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        record = await self.store.get_managed_login_branding_by_client(pool_id, client_id)
        if len(self._for_client) >= 4096:
            self._for_client.clear()
        self._for_client[key] = (now, record)
        return record

    async def update(self, pool_id: str, branding_id: str, request: Mapping[str, Any]) -> ManagedLoginBrandingRecord:
        """UpdateManagedLoginBranding: what the request names changes, the rest is kept. The merge is
        redone on the fresh style when another update got there first (the store's version check)."""
        defaults, settings, assets = self._request_parts(request)
        for _ in range(5):
            record = await self.get(pool_id, branding_id)
            self._apply(record, defaults, settings, assets)
            try:
                written = await self.store.update_managed_login_branding(record)
            except VersionConflict:
                continue
            except NotFound as exc:
                raise ResourceNotFoundException(f"Managed login branding {branding_id} does not exist.") from exc
            self._for_client.clear()
            log.info("branding.updated", pool=pool_id, branding=branding_id)
            return written
        raise ConcurrentModificationException()

    @staticmethod
    def _apply(
        record: ManagedLoginBrandingRecord,
        defaults: bool,
        settings: dict[str, Any] | None,
        assets: list[dict[str, Any]] | None,
    ) -> None:
        if defaults:
            record.use_cognito_provided_values, record.settings, record.assets = True, None, []
        else:
            if settings is not None:
                record.settings = _merged(record.settings or {}, settings)
                record.use_cognito_provided_values = False
            if assets:
                by_slot = {(a["Category"], a["ColorMode"]): a for a in record.assets}
                for asset in assets:
                    by_slot[(asset["Category"], asset["ColorMode"])] = asset
                if len(by_slot) > MAX_ASSETS:
                    raise InvalidParameterException(f"A branding style has at most {MAX_ASSETS} assets.")
                record.assets = list(by_slot.values())
                record.use_cognito_provided_values = False
        record.updated_at = time.time()

    async def delete(self, pool_id: str, branding_id: str) -> None:
        await self.pools.get_pool(pool_id)
        if not await self.store.delete_managed_login_branding(pool_id, branding_id):
            raise ResourceNotFoundException(f"Managed login branding {branding_id} does not exist.")
        self._for_client.clear()
        log.info("branding.deleted", pool=pool_id, branding=branding_id)

    @staticmethod
    def branding_type(record: ManagedLoginBrandingRecord) -> dict[str, Any]:
        """ManagedLoginBrandingType. ReturnMergedResources asks for Cognito's defaults too; Gatehouse has no
        default style document, so the merged answer is the stored style."""
        result: dict[str, Any] = {
            "ManagedLoginBrandingId": record.branding_id,
            "UserPoolId": record.pool_id,
            "UseCognitoProvidedValues": record.use_cognito_provided_values,
            "Assets": list(record.assets),
            "CreationDate": record.created_at,
            "LastModifiedDate": record.updated_at,
        }
        if record.settings is not None:
            result["Settings"] = record.settings
        return result
