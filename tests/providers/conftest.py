"""Shared set-up of connector tests: a real HTTP client, an executor, and the store's one-use marker."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import pytest

from gateway.storage.sqlite import SqliteStore
from providers.base import ConnectorContext
from tests.fakes.certs import key_and_cert

SP_ENTITY_ID = "urn:amazon:cognito:sp:us-east-1_Fed00001"
CALLBACK = "http://127.0.0.1:1/oauth2/idpresponse"
ACS_URL = "http://127.0.0.1:1/saml2/idpresponse"


@pytest.fixture(scope="session")
def sp_keys() -> tuple[str, str]:
    return key_and_cert("gatehouse-sp")


@pytest.fixture(scope="session")
def executor() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(max_workers=2)
    yield pool
    pool.shutdown()


@pytest.fixture
async def store() -> AsyncIterator[SqliteStore]:
    store = await SqliteStore.open(":memory:")
    yield store
    await store.close()


@pytest.fixture
async def context(
    store: SqliteStore, executor: ThreadPoolExecutor, sp_keys: tuple[str, str]
) -> AsyncIterator[ConnectorContext]:
    async with aiohttp.ClientSession() as http:
        yield ConnectorContext(
            http=http,
            executor=executor,
            mark_once=store.mark_assertion_seen,
            sp_entity_id=SP_ENTITY_ID,
            sp_key_pem=sp_keys[0],
            sp_cert_pem=sp_keys[1],
        )


async def follow_to_callback(http: aiohttp.ClientSession, url: str) -> dict[str, str]:
    """Act as the browser at the upstream: GET the authorization URL and return the parameters it sends back
    to the callback (from a redirect's query, or from an auto-submitting form_post page)."""
    async with http.get(url, allow_redirects=False) as response:
        if response.status in (301, 302, 303):
            return dict(parse_qsl(urlsplit(response.headers["Location"]).query))
        body = await response.text()
        assert response.status == 200, body
        return form_fields(body)


def form_fields(page: str) -> dict[str, str]:
    return {
        html.unescape(name): html.unescape(value)
        for name, value in re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)">', page)
    }
