"""The hosted pages' form posts and the API's unsigned calls share the per-address rate limit (against a server
started with a low one): a password-spraying script gains nothing by posting the sign-in form instead of
calling InitiateAuth. Past the limit the answer is a 429 page, before any work."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.oauth_support import PASSWORD, Browser, OAuthPool, make_pool, make_user
from tests.support import GatehouseServer

BURST = 6

CONFIG = f"""version: 1
server:
  rate_limits:
    per_client: {{rate: 0}}
    per_address: {{rate: 0.01, burst: {BURST}}}
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


def test_hosted_form_posts_take_from_the_address_bucket(gatehouse: GatehouseServer, idp: Any, pool: OAuthPool) -> None:
    browser = Browser(gatehouse.url)
    page = browser.follow(browser.get(browser.authorize_url(pool.secret_id)))
    assert page.status_code == 200
    answers = [browser.submit(page, {"username": "alice", "password": "wrong-Password-1"}) for _ in range(BURST + 2)]
    statuses = [answer.status_code for answer in answers]
    assert statuses[:BURST] == [400] * BURST, statuses
    refused = answers[-1]
    assert refused.status_code == 429 and "Too many requests" in refused.text
    assert "text/html" in refused.headers["Content-Type"] and refused.headers["X-Frame-Options"] == "DENY"
    # Pages are still shown (GETs are not counted), and the user is untouched.
    assert browser.get(page.url).status_code == 200
    assert idp.admin_get_user(UserPoolId=pool.pool_id, Username="alice")["Enabled"] is True
    # The unsigned API from the same address is refused too: one bucket.
    public = gatehouse.client(signed=False)
    with pytest.raises(public.exceptions.TooManyRequestsException):
        public.initiate_auth(
            ClientId=pool.public_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": "alice", "PASSWORD": PASSWORD},
        )
