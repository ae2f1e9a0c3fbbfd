"""The hosted pages' form posts and the API's unsigned calls share the rate limits (against a server started
with low ones): a password-spraying script gains nothing by posting the sign-in form instead of calling
InitiateAuth, from one address or (per app client) from many. Past a limit the answer is a 429 page, before
any work."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.oauth_support import PASSWORD, Browser, OAuthPool, make_pool, make_user
from tests.support import GatehouseServer

CLIENT_BURST = 4
ADDRESS_BURST = 9

CONFIG = f"""version: 1
server:
  rate_limits:
    per_client: {{rate: 0.01, burst: {CLIENT_BURST}}}
    per_address: {{rate: 0.01, burst: {ADDRESS_BURST}}}
pools: []
"""


@pytest.fixture(scope="module")
def gatehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatehouseServer]:
    data_dir: Path = tmp_path_factory.mktemp("gatehouse") / "data"
    server = GatehouseServer(data_dir, config=CONFIG)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pool(gatehouse: GatehouseServer, idp: Any) -> OAuthPool:
    created = make_pool(idp, gatehouse.url, "limits")
    make_user(idp, created.pool_id, "alice")
    return created


def _spray(browser: Browser, page: requests.Response, times: int) -> list[requests.Response]:
    return [browser.submit(page, {"username": "alice", "password": "wrong-Password-1"}) for _ in range(times)]


def test_hosted_form_posts_take_from_the_client_and_address_buckets(
    gatehouse: GatehouseServer, idp: Any, pool: OAuthPool
) -> None:
    browser = Browser(gatehouse.url)
    first = browser.follow(browser.get(browser.authorize_url(pool.secret_id)))
    assert first.status_code == 200
    # One app client's bucket: the authorization request kept for the page took one token, the wrong passwords
    # take the others, and the next is refused.
    answers = _spray(browser, first, CLIENT_BURST)
    assert [a.status_code for a in answers] == [400] * (CLIENT_BURST - 1) + [429]
    refused = answers[-1]
    assert "Too many requests" in refused.text and "text/html" in refused.headers["Content-Type"]
    assert refused.headers["X-Frame-Options"] == "DENY" and "Location" not in refused.headers
    # Another client of the pool still has its bucket, until the address's is empty (every post took from it).
    second = browser.follow(
        browser.get(browser.authorize_url(pool.public_id, code_challenge="b" * 43, code_challenge_method="S256"))
    )
    assert second.status_code == 200
    left = ADDRESS_BURST - (CLIENT_BURST + 2)  # two authorization requests and the first client's posts
    answers = _spray(browser, second, left + 1)
    assert [a.status_code for a in answers] == [400] * left + [429]
    # Pages are still shown (GETs are not counted), and the user is untouched.
    assert browser.get(second.url).status_code == 200
    assert idp.admin_get_user(UserPoolId=pool.pool_id, Username="alice")["Enabled"] is True
    # The unsigned API from the same address is refused too: one bucket per address.
    public = gatehouse.client(signed=False)
    with pytest.raises(public.exceptions.TooManyRequestsException):
        public.initiate_auth(
            ClientId=pool.public_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": "alice", "PASSWORD": PASSWORD},
        )
