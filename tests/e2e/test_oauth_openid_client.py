"""node's openid-client (v6, the certified OpenID relying party library) as an independent client of Gatehouse.

The script (tests/e2e/js/openid_client_rp.mjs) discovers a pool's issuer, builds an authorization request
with PKCE S256, a nonce and a state; the test signs in on the hosted /login page over HTTP; the script then
redeems the code (openid-client checks the RFC 9207 ``iss`` parameter, state, and the ID token's signature,
``iss``, ``aud``, ``exp``, ``iat`` and ``nonce``; the script checks ``at_hash``), calls userinfo, refreshes,
revokes the refresh token and sees it refused. Wrong verifiers, nonces, states and replayed codes fail.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
from typing import Any

import pytest

from tests.e2e.oauth_support import CALLBACK, Browser, OAuthPool, make_pool, make_user, query_of
from tests.support import GatehouseServer

REPO = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = pathlib.Path(__file__).resolve().parent / "js" / "openid_client_rp.mjs"


def _modules() -> pathlib.Path:
    for candidate in (os.environ.get("GATEHOUSE_COGNITO_JS_DIR"), str(REPO / ".cache" / "js")):
        if candidate and (pathlib.Path(candidate) / "node_modules" / "openid-client").is_dir():
            return pathlib.Path(candidate) / "node_modules"
    pytest.fail("openid-client is not installed: run scripts/test.sh (npm install --no-save openid-client@6)")


def _node(mode: str, **params: Any) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (scripts/test.sh installs it)")
    out = subprocess.run(
        [node, str(SCRIPT), str(_modules()), mode, json.dumps(params)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    result: dict[str, Any] = json.loads(out.stdout)
    return result


@pytest.fixture(scope="module")
def pool(gatehouse: GatehouseServer, idp: Any) -> OAuthPool:
    made = make_pool(idp, gatehouse.url, "openid-client")
    make_user(idp, made.pool_id, "olga")
    return made


def _client(pool: OAuthPool, confidential: bool) -> dict[str, str]:
    common = {"issuer": pool.issuer, "redirectUri": CALLBACK}
    if confidential:
        return {**common, "clientId": pool.secret_id, "clientSecret": pool.secret, "scope": "openid email profile"}
    return {**common, "clientId": pool.public_id, "scope": "openid email"}


def _authorize(
    gatehouse: GatehouseServer, client: dict[str, str], username: str = "olga"
) -> tuple[dict[str, Any], str]:
    """The script's authorization URL, signed in on the hosted page: (what start returned, the callback URL)."""
    started = _node("start", **client)
    assert started["url"].startswith(started["metadata"]["authorization_endpoint"] + "?")
    browser = Browser(gatehouse.url)
    back = browser.sign_in(started["url"], username)
    assert back.status_code == 303 and back.headers["Location"].startswith(CALLBACK), back.text
    return started, back.headers["Location"]


@pytest.mark.parametrize("confidential", [True, False], ids=["client_secret_basic", "public_pkce"])
def test_code_flow_userinfo_refresh_and_revocation(
    gatehouse: GatehouseServer, pool: OAuthPool, confidential: bool
) -> None:
    client = _client(pool, confidential)
    started, callback = _authorize(gatehouse, client)
    metadata = started["metadata"]
    assert metadata["issuer"] == pool.issuer and "S256" in metadata["code_challenge_methods_supported"]
    assert query_of(callback)["state"] == started["state"]
    done = _node(
        "finish",
        **client,
        callback=callback,
        verifier=started["verifier"],
        nonce=started["nonce"],
        state=started["state"],
    )
    assert done["ok"] is True, done
    claims = done["claims"]
    assert claims["iss"] == pool.issuer and claims["aud"] == client["clientId"]
    assert claims["nonce"] == started["nonce"] and claims["cognito:username"] == "olga"
    assert done["atHashMatches"] is True
    assert done["tokenType"].lower() == "bearer" and done["expiresIn"] > 0
    assert done["userinfo"]["sub"] == claims["sub"] and done["userinfo"]["email"] == "olga@example.com"
    assert done["wrongSubject"] != "accepted"  # openid-client compares userinfo's sub with the ID token's
    assert done["refreshed"]["sub"] == claims["sub"] and done["refreshed"]["newAccessToken"] is True
    assert done["afterRevocation"] != "accepted" and done["afterRevocation"]["error"] == "invalid_grant"
    assert done["replay"] != "accepted" and done["replay"]["error"] == "invalid_grant"


def test_wrong_pkce_verifier_is_refused(gatehouse: GatehouseServer, pool: OAuthPool) -> None:
    client = _client(pool, confidential=False)
    started, callback = _authorize(gatehouse, client)
    wrong = "w" * 64
    done = _node("finish", **client, callback=callback, verifier=wrong, nonce=started["nonce"], state=started["state"])
    assert done["ok"] is False and done["step"] == "authorizationCodeGrant"
    assert done["failure"]["error"] == "invalid_grant"


def test_wrong_nonce_and_state_are_refused_by_the_client(gatehouse: GatehouseServer, pool: OAuthPool) -> None:
    client = _client(pool, confidential=True)
    started, callback = _authorize(gatehouse, client)
    nonce = _node(
        "finish",
        **client,
        callback=callback,
        verifier=started["verifier"],
        nonce="not-the-nonce",
        state=started["state"],
    )
    assert nonce["ok"] is False and nonce["failure"]["code"] == "OAUTH_JWT_CLAIM_COMPARISON_FAILED"
    started, callback = _authorize(gatehouse, client)
    state = _node(
        "finish", **client, callback=callback, verifier=started["verifier"], nonce=started["nonce"], state="other"
    )
    assert state["ok"] is False and state["failure"]["code"] == "OAUTH_INVALID_RESPONSE"


def test_callback_from_another_issuer_is_refused(gatehouse: GatehouseServer, idp: Any, pool: OAuthPool) -> None:
    """RFC 9207: a code that came back with another pool's ``iss`` is not redeemed (mix-up defence)."""
    client = _client(pool, confidential=True)
    started, callback = _authorize(gatehouse, client)
    other = make_pool(idp, gatehouse.url, "openid-client-other")
    forged = callback.replace(pool.pool_id, other.pool_id)
    assert forged != callback
    done = _node(
        "finish",
        **client,
        callback=forged,
        verifier=started["verifier"],
        nonce=started["nonce"],
        state=started["state"],
    )
    assert done["ok"] is False and done["failure"]["code"] == "OAUTH_INVALID_RESPONSE"
