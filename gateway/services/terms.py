"""Terms documents (CreateTerms and its siblings): an app client's terms of use and privacy policy.

Each document is a map of managed login language to a link (``LinksType``: "cognito:default",
"cognito:english" ...). Cognito shows links to both on the sign-up page of managed login once the client has
both documents, each in at least one language, choosing the user's language and falling back to
"cognito:default" (API reference, CreateTerms). Gatehouse's hosted pages are in English, so a page links
"cognito:english", else "cognito:default". Only ``TermsSource`` LINK and ``Enforcement`` NONE exist: the page
shows the links and asks for no acceptance.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import structlog

from gateway.errors import InvalidParameterException, ResourceNotFoundException, TermsExistsException
from gateway.services.pools import CACHE_SECONDS, PoolService
from gateway.storage.base import AlreadyExists, NotFound, Store, TermsRecord

log = structlog.get_logger("gateway.terms")

TERMS_OF_USE = "terms-of-use"
PRIVACY_POLICY = "privacy-policy"
# The languages a page in English links, in order (LanguageIdType).
PAGE_LANGUAGES = ("cognito:english", "cognito:default")
CACHE_LIMIT = 4096


@dataclass(frozen=True)
class SignUpTerms:
    """The links a sign-up page shows."""

    terms_of_use: str
    privacy_policy: str


def _check_links(links: object) -> dict[str, str]:
    """LinksType beyond the model's pattern: each link an absolute http(s) URL. A page shows these as links,
    so a ``javascript:`` or ``data:`` URL -- which the model's pattern allows -- would run in the page."""
    if not isinstance(links, dict):
        raise InvalidParameterException("Links must be a map of language to link.")
    checked: dict[str, str] = {}
    for language, link in links.items():
        if not isinstance(link, str):
            raise InvalidParameterException(f"The link for {language} must be a string.")
        try:
            parts = urlsplit(link)
        except ValueError as exc:
            raise InvalidParameterException(f"The link for {language} is not a valid URL.") from exc
        if parts.scheme.lower() not in ("https", "http") or not parts.netloc:
            raise InvalidParameterException(f"The link for {language} must be an absolute https or http URL.")
        checked[str(language)] = link
    return checked


class TermsService:
    """Terms documents of a pool's app clients."""

    def __init__(self, store: Store, pools: PoolService) -> None:
        self.store = store
        self.pools = pools
        # Each client's links (or None) as the sign-up page last read them, with when (time.monotonic()): every
        # sign-up page view asks, and documents change rarely. A change made here clears it at once; one made
        # by another process is seen within CACHE_SECONDS, as pools and clients are.
        self._for_client: dict[tuple[str, str], tuple[float, SignUpTerms | None]] = {}

    async def create(self, pool_id: str, client_id: str, request: Mapping[str, Any]) -> TermsRecord:
        """CreateTerms: one document of a name per client."""
        await self.pools.get_pool(pool_id)
        await self.pools.get_client(pool_id, client_id)
        if request.get("Links") is None:
            # The model leaves Links optional, but a LINK document is its links: without one the page would name
            # a document it cannot show.
            raise InvalidParameterException("Links is required: a LINK terms document is the URLs it names.")
        now = time.time()
        record = TermsRecord(
            pool_id=pool_id,
            terms_id=str(uuid.uuid4()),
            client_id=client_id,
            name=str(request["TermsName"]),
            source=str(request["TermsSource"]),
            enforcement=str(request["Enforcement"]),
            links=_check_links(request["Links"]),
            created_at=now,
            updated_at=now,
        )
        try:
            await self.store.create_terms(record)
        except AlreadyExists as exc:
            if exc.key == "name":
                raise TermsExistsException(f"App client {client_id} already has {record.name} terms.") from exc
            raise
        except NotFound as exc:
            # The client (or pool) was deleted while the document was being made.
            raise ResourceNotFoundException(f"User pool client {client_id} does not exist.") from exc
        self._for_client.clear()
        log.info("terms.created", pool=pool_id, client=client_id, terms=record.terms_id, name=record.name)
        return record

    async def get(self, pool_id: str, terms_id: str) -> TermsRecord:
        await self.pools.get_pool(pool_id)
        record = await self.store.get_terms(pool_id, terms_id)
        if record is None:
            raise ResourceNotFoundException(f"Terms {terms_id} do not exist.")
        return record

    async def get_by_client(self, pool_id: str, client_id: str, name: str) -> TermsRecord:
        await self.pools.get_pool(pool_id)
        await self.pools.get_client(pool_id, client_id)
        record = await self.store.get_terms_by_client(pool_id, client_id, name)
        if record is None:
            raise ResourceNotFoundException(f"App client {client_id} has no {name} terms.")
        return record

    async def list(self, pool_id: str, after_id: str | None, limit: int) -> list[TermsRecord]:
        await self.pools.get_pool(pool_id)
        return await self.store.list_terms(pool_id, after_id, limit)

    async def update(self, pool_id: str, terms_id: str, request: Mapping[str, Any]) -> TermsRecord:
        """UpdateTerms: what the request names changes; Links, when given, replace the stored map."""
        record = await self.get(pool_id, terms_id)
        changed = replace(
            record,
            name=str(request.get("TermsName") or record.name),
            source=str(request.get("TermsSource") or record.source),
            enforcement=str(request.get("Enforcement") or record.enforcement),
            links=record.links if request.get("Links") is None else _check_links(request["Links"]),
            updated_at=time.time(),
        )
        try:
            await self.store.update_terms(changed)
        except AlreadyExists as exc:
            raise TermsExistsException(f"App client {record.client_id} already has {changed.name} terms.") from exc
        except NotFound as exc:
            raise ResourceNotFoundException(f"Terms {terms_id} do not exist.") from exc
        self._for_client.clear()
        log.info("terms.updated", pool=pool_id, terms=terms_id)
        return changed

    async def delete(self, pool_id: str, terms_id: str) -> None:
        await self.pools.get_pool(pool_id)
        if not await self.store.delete_terms(pool_id, terms_id):
            raise ResourceNotFoundException(f"Terms {terms_id} do not exist.")
        self._for_client.clear()
        log.info("terms.deleted", pool=pool_id, terms=terms_id)

    async def for_sign_up(self, pool_id: str, client_id: str) -> SignUpTerms | None:
        """The links the client's sign-up page shows, or None: both documents must have a link in the page's
        language or the default. From this process's short-lived cache."""
        key = (pool_id, client_id)
        now = time.monotonic()
        cached = self._for_client.get(key)
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        documents = {d.name: d for d in await self.store.list_client_terms(pool_id, client_id)}
        links = {name: _page_link(documents.get(name)) for name in (TERMS_OF_USE, PRIVACY_POLICY)}
        terms_of_use, privacy_policy = links[TERMS_OF_USE], links[PRIVACY_POLICY]
        shown = SignUpTerms(terms_of_use, privacy_policy) if terms_of_use and privacy_policy else None
        if len(self._for_client) >= CACHE_LIMIT:
            self._for_client.clear()
        self._for_client[key] = (now, shown)
        return shown

    @staticmethod
    def terms_type(record: TermsRecord) -> dict[str, Any]:
        """TermsType."""
        return {
            "TermsId": record.terms_id,
            "UserPoolId": record.pool_id,
            "ClientId": record.client_id,
            "TermsName": record.name,
            "TermsSource": record.source,
            "Enforcement": record.enforcement,
            "Links": dict(record.links),
            "CreationDate": record.created_at,
            "LastModifiedDate": record.updated_at,
        }

    @staticmethod
    def description_type(record: TermsRecord) -> dict[str, Any]:
        """TermsDescriptionType (ListTerms)."""
        return {
            "TermsId": record.terms_id,
            "TermsName": record.name,
            "Enforcement": record.enforcement,
            "CreationDate": record.created_at,
            "LastModifiedDate": record.updated_at,
        }


def _page_link(record: TermsRecord | None) -> str | None:
    if record is None:
        return None
    for language in PAGE_LANGUAGES:
        link = record.links.get(language)
        if link:
            return link
    return None
