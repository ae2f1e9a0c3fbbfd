"""The broker example runs as its README says: ``examples/broker/standin_idps.py`` starts the stand-in IdPs,
``gatehouse serve --config examples/broker/broker.yaml`` brokers them, and people sign in to the app through
each one over HTTP (Google; the corporate SAML IdP with its group rules; Apple's form_post)."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest
import requests

from tests.support import GatehouseServer, free_port

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "broker"
POOL_ID = "us-east-1_Broker001"
CLIENT_ID = "brokerapp000000000000000001"
CALLBACK = "http://localhost:8080/callback"


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatehouseServer]:
    base = tmp_path_factory.mktemp("broker")
    server = GatehouseServer(base / "data", config=(EXAMPLE / "broker.yaml").read_text())
    ports = {"google": free_port(), "apple": free_port(), "saml": free_port()}
    state = base / "standin"
    log = (base / "standin.log").open("wb")
    standins = subprocess.Popen(
        [sys.executable, str(EXAMPLE / "standin_idps.py"), "--gatehouse-url", server.url, "--state-dir", str(state),
         "--google-port", str(ports["google"]), "--apple-port", str(ports["apple"]),
         "--saml-port", str(ports["saml"])],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not (state / "ready").exists():
            assert standins.poll() is None, (base / "standin.log").read_text()
            assert time.monotonic() < deadline, "the stand-ins did not start"
            time.sleep(0.1)
        server.extra_env = {
            "BROKER_PUBLIC_URL": server.url,
            "GOOGLE_BASE": f"http://127.0.0.1:{ports['google']}",
            "APPLE_BASE": f"http://127.0.0.1:{ports['apple']}",
            "CORP_SAML_METADATA_URL": f"http://127.0.0.1:{ports['saml']}/metadata",
            "APPLE_PRIVATE_KEY": (state / "apple_key.p8").read_text(),
        }
        server.start()
        try:
            yield server
        finally:
            server.stop()
    finally:
        standins.terminate()
        standins.wait(timeout=10)
        log.close()


def sign_in(broker: GatehouseServer, **extra: str) -> dict[str, Any]:
    """Authorize with PKCE, act as a browser without scripts through the upstream, redeem the code."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    params = {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": CALLBACK,
              "scope": "openid email profile", "state": "s1", "code_challenge": challenge,
              "code_challenge_method": "S256", **extra}  # fmt: skip
    http = requests.Session()
    response = http.get(f"{broker.url}/oauth2/authorize?{urlencode(params)}", allow_redirects=False, timeout=10)
    for _ in range(10):
        if response.is_redirect:
            location = response.headers["Location"]
            if location.startswith(CALLBACK):
                break
            response = http.get(location, allow_redirects=False, timeout=10)
            continue
        assert response.status_code == 200, response.text
        action = html.unescape(re.search(r'action="([^"]+)"', response.text).group(1))  # type: ignore[union-attr]
        fields = {k: html.unescape(v) for k, v in re.findall(r'name="([^"]+)" value="([^"]*)"', response.text)}
        response = http.post(action, data=fields, allow_redirects=False, timeout=10)
    else:
        raise AssertionError("too many steps")
    answer = {k: v[0] for k, v in parse_qs(urlsplit(response.headers["Location"]).query).items()}
    assert answer.get("state") == "s1" and "code" in answer, answer
    tokens = http.post(
        f"{broker.url}/oauth2/token",
        data={"grant_type": "authorization_code", "client_id": CLIENT_ID, "code": answer["code"],
              "redirect_uri": CALLBACK, "code_verifier": verifier},
        timeout=10,
    ).json()  # fmt: skip
    token = tokens["id_token"]
    keys = jwt.PyJWKClient(f"{broker.url}/{POOL_ID}/.well-known/jwks.json")
    return dict(
        jwt.decode(token, keys.get_signing_key_from_jwt(token).key, algorithms=["RS256"], audience=CLIENT_ID,
                   issuer=f"{broker.url}/{POOL_ID}")
    )  # fmt: skip


def test_google_stand_in_sign_in(broker: GatehouseServer) -> None:
    claims = sign_in(broker, identity_provider="Google")
    assert claims["cognito:username"] == "google_110000000000000000001"
    assert claims["email"] == "ann@gmail.example" and claims["given_name"] == "Ann"
    assert claims["identities"][0]["providerName"] == "Google"


def test_corporate_saml_sign_in_maps_groups(broker: GatehouseServer) -> None:
    claims = sign_in(broker, idp_identifier="corp.example")
    assert claims["cognito:username"] == "corpsso_ann@corp.example" and claims["email"] == "ann@corp.example"
    assert set(claims["cognito:groups"]) == {"admins", "engineering", f"{POOL_ID}_CorpSSO"}


def test_apple_stand_in_sign_in(broker: GatehouseServer) -> None:
    claims = sign_in(broker, identity_provider="SignInWithApple")
    assert claims["cognito:username"] == "signinwithapple_000111.standin.0001"


def test_the_example_does_not_import_the_tests() -> None:
    source = (EXAMPLE / "standin_idps.py").read_text()
    assert "from tests" not in source and "import tests" not in source


def test_the_login_page_offers_the_three_providers(broker: GatehouseServer) -> None:
    challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"  # RFC 7636's example
    params = {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": CALLBACK, "scope": "openid",
              "code_challenge": challenge, "code_challenge_method": "S256"}  # fmt: skip
    page = requests.get(f"{broker.url}/oauth2/authorize?{urlencode(params)}", timeout=10)
    assert page.status_code == 200
    assert set(re.findall(r"Sign in with ([A-Za-z]+)</a>", page.text)) == {"Google", "Apple", "CorpSSO"}
