"""examples/web_app runs as its README says, against a real Gatehouse: sign in through the hosted UI,
see the claims, sign out."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
import requests

from tests.e2e.oauth_support import PASSWORD, Browser, make_user
from tests.support import GatehouseServer, free_port

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "web_app" / "app.py"


@pytest.fixture(scope="module")
def web_app(gatehouse: GatehouseServer, idp: Any) -> Iterator[tuple[str, str]]:
    port = free_port()
    app_url = f"http://127.0.0.1:{port}"
    pool_id = idp.create_user_pool(PoolName="web-app")["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="web-app",
        AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=["openid", "email", "profile"],
        CallbackURLs=[f"{app_url}/callback"],
        LogoutURLs=[f"{app_url}/"],
        SupportedIdentityProviders=["COGNITO"],
    )["UserPoolClient"]["ClientId"]
    make_user(idp, pool_id, "kim", email="kim@example.com")
    env = {
        **os.environ,
        "GATEHOUSE_ISSUER": f"{gatehouse.url}/{pool_id}",
        "CLIENT_ID": client_id,
        "PORT": str(port),
        "APP_URL": app_url,
    }
    process = subprocess.Popen([sys.executable, str(EXAMPLE)], env=env)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if requests.get(app_url, timeout=1).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.2)
        yield app_url, gatehouse.url
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_example_signs_in_shows_claims_and_signs_out(web_app: tuple[str, str]) -> None:
    app_url, gatehouse_url = web_app
    http = requests.Session()
    assert "not signed in" in http.get(app_url, timeout=10).text
    # The app sends the browser to the hosted UI; sign in there like a person would.
    to_gatehouse = http.get(f"{app_url}/login", allow_redirects=False, timeout=10)
    assert to_gatehouse.status_code == 302 and to_gatehouse.headers["Location"].startswith(gatehouse_url)
    browser = Browser(gatehouse_url)
    browser.http = http  # one cookie jar, as one browser
    back = browser.sign_in(to_gatehouse.headers["Location"], "kim", PASSWORD)
    assert back.status_code == 303 and back.headers["Location"].startswith(f"{app_url}/callback")
    home = http.get(back.headers["Location"], timeout=10)
    assert home.status_code == 200 and "Hello, kim@example.com" in home.text and "cognito:username" in home.text
    signed_out = http.get(f"{app_url}/logout", allow_redirects=False, timeout=10)
    logout_url = signed_out.headers["Location"]
    assert logout_url.startswith(f"{gatehouse_url}/") and "/logout?" in logout_url
    final = http.get(urljoin(app_url, logout_url), allow_redirects=True, timeout=10)
    assert final.url == f"{app_url}/" and "not signed in" in final.text
