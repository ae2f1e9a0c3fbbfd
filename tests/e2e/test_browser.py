"""The browser the UI tests use: Debian's Chromium, driven by Playwright, reaching a running Gatehouse."""

from __future__ import annotations

import json
from typing import Any

from tests.support import GatehouseServer


def test_chromium_reads_a_pools_discovery_document(gatehouse: GatehouseServer, idp: Any, browser: Any) -> None:
    pool_id = idp.create_user_pool(PoolName="browser-smoke")["UserPool"]["Id"]
    context = browser.new_context()
    try:
        page = context.new_page()
        response = page.goto(f"{gatehouse.url}/{pool_id}/.well-known/openid-configuration")
        assert response is not None and response.status == 200
        document = json.loads(page.inner_text("body"))
        assert document["issuer"] == f"{gatehouse.url}/{pool_id}"
        keys = page.goto(document["jwks_uri"])
        assert keys is not None and keys.status == 200
        assert {key["kid"] for key in json.loads(page.inner_text("body"))["keys"]}
    finally:
        context.close()
