"""Signing key rollover as relying parties see it: a rotated key is published before it signs.

OpenID Connect Core §10.1.1 ("Rotation of Asymmetric Signing Keys"): the signer publishes the new key in its
jwks_uri and "can begin using a new key at its discretion", signalled by ``kid``; verifiers that cache the JWK
Set (for its Cache-Control max-age, RFC 9111 §5.2.2.1) and do not refetch on an unknown ``kid`` must never
meet a token whose key their cached copy lacks. Gatehouse's rule (gateway/services/tokens.py SigningKeys): a
key made by ``gatehouse keys rotate`` signs from ``now + JWKS max-age + key cache time``. ``--now`` switches at
once (a leaked key) and ``--now --retire-old`` also drops the earlier keys, so their tokens are refused, even
tokens a worker verified (and remembered) before.

One real server with two workers; the JWKS max-age is 4 s and the key cache 1 s here, so a rotation takes over
5 s after it is made.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from botocore.exceptions import ClientError

from tests.e2e.oauth_support import CALLBACK, PASSWORD, Browser, make_pool, make_user, pkce_pair, query_of
from tests.support import ADMIN_KEY_ID, ADMIN_SECRET, GatehouseServer

MAX_AGE = 4
KEY_CACHE = 1
ENV = {"GATEHOUSE_JWKS_MAX_AGE_SECONDS": str(MAX_AGE), "GATEHOUSE_KEY_CACHE_SECONDS": str(KEY_CACHE)}
FLOWS = ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]


@pytest.fixture(scope="module")
def gatehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatehouseServer]:
    server = GatehouseServer(tmp_path_factory.mktemp("s7-keys-rollover") / "data", workers=2, extra_env=ENV)
    server.start()
    yield server
    server.stop()


def fresh(gatehouse: GatehouseServer, service: str = "cognito-idp", **kwargs: Any) -> Any:
    """A new client, hence a new connection: with two workers, successive calls reach either one."""
    return gatehouse.client(service, **kwargs)


class CachingRelyingParty:
    """A verifier as many are written: it fetches the JWK Set, keeps it for the response's max-age, and does
    not refetch on an unknown ``kid`` (so a key it has not seen yet means a rejected token)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.keys: dict[str, Any] = {}
        self.expires = 0.0
        self.fetches = 0

    def _fetch(self) -> None:
        fetched_at = time.time()
        response = requests.get(self.url, timeout=10)
        assert response.status_code == 200
        match = re.fullmatch(r"public, max-age=(\d+)", response.headers["Cache-Control"])
        assert match, response.headers["Cache-Control"]
        self.keys = {str(key.key_id): key for key in jwt.PyJWKSet.from_dict(response.json()).keys}
        self.expires = fetched_at + int(match.group(1))
        self.fetches += 1

    def verify(self, token: str, **options: Any) -> dict[str, Any]:
        if time.time() >= self.expires:
            self._fetch()
        kid = jwt.get_unverified_header(token)["kid"]
        if kid not in self.keys:
            raise AssertionError(f"token signed with {kid}, not in the cached JWKS {sorted(self.keys)}")
        claims: dict[str, Any] = jwt.decode(token, self.keys[kid].key, algorithms=["RS256"], **options)
        return claims


def run_cli(
    gatehouse: GatehouseServer, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {
        **os.environ,
        "GATEHOUSE_ADMIN_ACCESS_KEY_ID": ADMIN_KEY_ID,
        "GATEHOUSE_ADMIN_SECRET_ACCESS_KEY": ADMIN_SECRET,
        **(ENV if env is None else env),
    }
    command = [sys.executable, "-m", "gateway.cli", "keys", "rotate", "--data-dir", str(gatehouse.data_dir), *args]
    return subprocess.run(command, env=environ, capture_output=True, text=True, timeout=60, check=False)


def takeover_time(output: str) -> float:
    match = re.search(r"signing from (\S+Z)", output)
    assert match, output
    return datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S%z").timestamp()


def kid(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


def jwks_kids(url: str, times: int = 6) -> list[set[str]]:
    """The kids each of several fetches (across both workers) publishes."""
    return [{key["kid"] for key in requests.get(url, timeout=10).json()["keys"]} for _ in range(times)]


def user_pool(gatehouse: GatehouseServer, name: str) -> tuple[str, str]:
    idp = gatehouse.client()
    pool_id = str(idp.create_user_pool(PoolName=name)["UserPool"]["Id"])
    client = idp.create_user_pool_client(UserPoolId=pool_id, ClientName=name, ExplicitAuthFlows=FLOWS)
    make_user(idp, pool_id, "kim")
    return pool_id, str(client["UserPoolClient"]["ClientId"])


def sign_in(gatehouse: GatehouseServer, client_id: str) -> dict[str, Any]:
    answer = fresh(gatehouse, signed=False).initiate_auth(
        ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": "kim", "PASSWORD": PASSWORD}
    )
    return dict(answer["AuthenticationResult"])


def refresh(gatehouse: GatehouseServer, client_id: str, refresh_token: str) -> dict[str, Any]:
    answer = fresh(gatehouse, signed=False).initiate_auth(
        ClientId=client_id, AuthFlow="REFRESH_TOKEN_AUTH", AuthParameters={"REFRESH_TOKEN": refresh_token}
    )
    return dict(answer["AuthenticationResult"])


def get_user_error(gatehouse: GatehouseServer, access_token: str) -> tuple[str, int] | None:
    try:
        fresh(gatehouse, signed=False).get_user(AccessToken=access_token)
    except ClientError as error:
        return error.response["Error"]["Code"], error.response["ResponseMetadata"]["HTTPStatusCode"]
    return None


def pool_key_rows(gatehouse: GatehouseServer, pool_id: str) -> list[tuple[str, int, float | None]]:
    with sqlite3.connect(Path(gatehouse.data_dir) / "gatehouse.db") as db:
        return list(db.execute("SELECT kid, active, retired_at FROM signing_keys WHERE pool_id = ?", (pool_id,)))


# --- the JWKS -----------------------------------------------------------------------------------------------


def test_both_jwks_are_cached_for_the_configured_max_age(gatehouse: GatehouseServer) -> None:
    pool_id, _ = user_pool(gatehouse, "max-age")
    for path in (f"/{pool_id}/.well-known/jwks.json", "/identity/.well-known/jwks.json"):
        response = requests.get(gatehouse.url + path, timeout=10)
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == f"public, max-age={MAX_AGE}"
        assert response.json()["keys"]


# --- a scheduled rotation -----------------------------------------------------------------------------------


def test_a_rotated_key_is_published_first_and_signs_only_once_every_cached_jwks_has_it(
    gatehouse: GatehouseServer,
) -> None:
    pool_id, client_id = user_pool(gatehouse, "scheduled")
    issuer = f"{gatehouse.url}/{pool_id}"
    jwks_url = f"{issuer}/.well-known/jwks.json"
    # The /oauth2/token path too: a public client's code flow gives a refresh token for the refresh grant.
    oauth = make_pool(gatehouse.client(), gatehouse.url, "scheduled-oauth")
    make_user(gatehouse.client(), oauth.pool_id, "kim")
    browser = Browser(gatehouse.url)
    verifier, challenge = pkce_pair()
    url = browser.authorize_url(
        oauth.public_id, scope="openid email", code_challenge=challenge, code_challenge_method="S256"
    )
    code = query_of(browser.sign_in(url, "kim").headers["Location"])["code"]
    token_url = f"{oauth.issuer}/oauth2/token"
    grant = {"grant_type": "authorization_code", "client_id": oauth.public_id, "code": code}
    exchanged = requests.post(
        token_url, data={**grant, "redirect_uri": CALLBACK, "code_verifier": verifier}, timeout=10
    )
    assert exchanged.status_code == 200, exchanged.text
    oauth_refresh = exchanged.json()["refresh_token"]

    rp = CachingRelyingParty(jwks_url)
    oauth_rp = CachingRelyingParty(f"{oauth.issuer}/.well-known/jwks.json")
    first = sign_in(gatehouse, client_id)
    old_kids = {kid(first["IdToken"]), kid(first["AccessToken"])}
    assert rp.verify(first["IdToken"], audience=client_id, issuer=issuer)["cognito:username"] == "kim"
    assert oauth_rp.verify(exchanged.json()["access_token"], issuer=oauth.issuer, options={"verify_aud": False})
    oauth_old = {kid(exchanged.json()["id_token"]), kid(exchanged.json()["access_token"])}

    oauth_rotated = run_cli(gatehouse, oauth.pool_id)
    before = time.time()
    rotated = run_cli(gatehouse, pool_id)
    after = time.time()
    assert rotated.returncode == 0 and oauth_rotated.returncode == 0, rotated.stderr + oauth_rotated.stderr
    starts = takeover_time(rotated.stdout)
    # The rule: JWKS max-age + key cache time after the rotation (rounded up to a whole second).
    assert before + MAX_AGE + KEY_CACHE <= starts <= after + MAX_AGE + KEY_CACHE + 1
    assert "published now" in rotated.stdout and "earlier keys stay published" in rotated.stdout
    new_kids = set(re.findall(r"new signing keys (\S+), (\S+) ", rotated.stdout)[0])
    assert len(new_kids) == 2 and not new_kids & old_kids

    # Published by every worker within its key cache time, while the old keys still sign.
    time.sleep(KEY_CACHE + 0.2)
    assert all(new_kids | old_kids <= published for published in jwks_kids(jwks_url))

    seen_new = False
    refresh_token = first["RefreshToken"]
    while time.time() < starts + KEY_CACHE + 1.5:
        sent = time.time()
        for tokens in (sign_in(gatehouse, client_id), refresh(gatehouse, client_id, refresh_token)):
            received = time.time()
            kids = {kid(tokens["IdToken"]), kid(tokens["AccessToken"])}
            if received < starts - 0.5:
                assert kids == old_kids, "a published key signed before its time"
            if sent > starts + 0.5:
                assert kids <= new_kids, "an old key still signs after the new one took over"
            seen_new = seen_new or kids <= new_kids
            # The caching verifier never meets a key it lacks, before, during or after the switch.
            assert rp.verify(tokens["IdToken"], audience=client_id, issuer=issuer)["token_use"] == "id"
            claims = rp.verify(tokens["AccessToken"], issuer=issuer, options={"verify_aud": False})
            assert claims["token_use"] == "access" and claims["username"] == "kim"
        refreshed = requests.post(
            token_url,
            data={"grant_type": "refresh_token", "client_id": oauth.public_id, "refresh_token": oauth_refresh},
            timeout=10,
        )
        assert refreshed.status_code == 200, refreshed.text
        for name in ("id_token", "access_token"):
            claims = oauth_rp.verify(refreshed.json()[name], issuer=oauth.issuer, options={"verify_aud": False})
            assert claims["sub"]
            if sent > starts + 0.5:
                assert kid(refreshed.json()[name]) not in oauth_old
        time.sleep(0.3)
    assert seen_new
    assert rp.fetches >= 2  # it did refetch on expiry, and only then
    # Tokens signed before the rotation still work, and the old keys stay published.
    assert fresh(gatehouse, signed=False).get_user(AccessToken=first["AccessToken"])["Username"] == "kim"
    assert all(old_kids | new_kids <= published for published in jwks_kids(jwks_url))


def test_the_identity_issuer_publishes_before_it_signs(gatehouse: GatehouseServer) -> None:
    ci = gatehouse.client("cognito-identity")
    public_ci = fresh(gatehouse, "cognito-identity", signed=False)
    pool_id = ci.create_identity_pool(
        IdentityPoolName="rollover guests", AllowUnauthenticatedIdentities=True, AllowClassicFlow=True
    )["IdentityPoolId"]
    identity_id = public_ci.get_id(IdentityPoolId=pool_id)["IdentityId"]
    issuer = f"{gatehouse.url}/identity"
    rp = CachingRelyingParty(f"{issuer}/.well-known/jwks.json")

    def open_id_token() -> str:
        return str(
            fresh(gatehouse, "cognito-identity", signed=False).get_open_id_token(IdentityId=identity_id)["Token"]
        )

    first = open_id_token()
    old_kid = kid(first)
    assert rp.verify(first, audience=pool_id, issuer=issuer)["sub"] == identity_id
    rotated = run_cli(gatehouse, "identity")
    assert rotated.returncode == 0, rotated.stderr
    starts = takeover_time(rotated.stdout)
    (new_kid,) = re.findall(r"new signing keys (\S+) ", rotated.stdout)
    assert new_kid != old_kid
    assert all({old_kid, new_kid} <= published for published in jwks_kids(f"{issuer}/.well-known/jwks.json"))
    while time.time() < starts + KEY_CACHE + 1.5:
        sent = time.time()
        token = open_id_token()
        if time.time() < starts - 0.5:
            assert kid(token) == old_kid
        if sent > starts + 0.5:
            assert kid(token) == new_kid
        assert rp.verify(token, audience=pool_id, issuer=issuer)["sub"] == identity_id
        time.sleep(0.3)
    # The token signed before the rotation still verifies against what is published.
    assert rp.verify(first, audience=pool_id, issuer=issuer)["sub"] == identity_id
    assert all({old_kid, new_kid} <= published for published in jwks_kids(f"{issuer}/.well-known/jwks.json"))


# --- emergencies: --now and --retire-old --------------------------------------------------------------------


def test_now_switches_at_once_and_keeps_the_old_keys_trusted(gatehouse: GatehouseServer) -> None:
    pool_id, client_id = user_pool(gatehouse, "now")
    first = sign_in(gatehouse, client_id)
    old_kids = {kid(first["IdToken"]), kid(first["AccessToken"])}
    rotated = run_cli(gatehouse, "--now", pool_id)
    assert rotated.returncode == 0, rotated.stderr
    assert "signing now" in rotated.stdout and "signing from" not in rotated.stdout
    time.sleep(KEY_CACHE + 0.2)
    for _ in range(4):
        tokens = sign_in(gatehouse, client_id)
        kids = {kid(tokens["IdToken"]), kid(tokens["AccessToken"])}
        assert not kids & old_kids and all(k in rotated.stdout for k in kids)
    assert get_user_error(gatehouse, first["AccessToken"]) is None


def test_retire_old_refuses_the_leaked_keys_tokens_even_ones_verified_before(gatehouse: GatehouseServer) -> None:
    pool_id, client_id = user_pool(gatehouse, "leaked")
    jwks_url = f"{gatehouse.url}/{pool_id}/.well-known/jwks.json"
    leaked = sign_in(gatehouse, client_id)
    old_kids = {kid(leaked["IdToken"]), kid(leaked["AccessToken"])}
    # Both workers verify (and remember) the token before the key is dropped.
    for _ in range(8):
        assert get_user_error(gatehouse, leaked["AccessToken"]) is None

    rotated = run_cli(gatehouse, "--now", "--retire-old", pool_id)
    assert rotated.returncode == 0, rotated.stderr
    assert "retired at once" in rotated.stdout and all(k in rotated.stdout for k in old_kids)
    assert not old_kids & {row[0] for row in pool_key_rows(gatehouse, pool_id)}
    time.sleep(KEY_CACHE + 0.2)
    # Refused by every worker, remembered or not; unpublished.
    for _ in range(8):
        assert get_user_error(gatehouse, leaked["AccessToken"]) == ("NotAuthorizedException", 400)
    assert not any(old_kids & published for published in jwks_kids(jwks_url))
    # The sign-in's refresh token is not a JWT: it still works, and gets tokens under the new keys.
    renewed = refresh(gatehouse, client_id, leaked["RefreshToken"])
    assert not {kid(renewed["IdToken"]), kid(renewed["AccessToken"])} & old_kids
    assert get_user_error(gatehouse, renewed["AccessToken"]) is None


def test_retire_old_without_now_is_refused_and_changes_nothing(gatehouse: GatehouseServer) -> None:
    pool_id, _ = user_pool(gatehouse, "refused")
    before = pool_key_rows(gatehouse, pool_id)
    result = run_cli(gatehouse, "--retire-old", pool_id)
    assert result.returncode == 1
    assert "--retire-old needs --now" in result.stderr and "Traceback" not in result.stderr
    assert pool_key_rows(gatehouse, pool_id) == before


def test_an_unknown_pool_is_refused_and_nothing_is_made(gatehouse: GatehouseServer) -> None:
    result = run_cli(gatehouse, "--now", "--retire-old", "us-east-1_Nope0000")
    assert result.returncode != 0 and "no user pool us-east-1_Nope0000" in result.stderr
    assert pool_key_rows(gatehouse, "us-east-1_Nope0000") == []


def test_a_second_rotation_before_the_first_takes_over(gatehouse: GatehouseServer) -> None:
    """Two scheduled rotations in a row: each key signs from its own time (the first one until the second one
    takes over), every one of them published before it signs."""
    pool_id, client_id = user_pool(gatehouse, "twice")
    jwks_url = f"{gatehouse.url}/{pool_id}/.well-known/jwks.json"
    first = sign_in(gatehouse, client_id)
    old_kids = {kid(first["IdToken"]), kid(first["AccessToken"])}
    one = run_cli(gatehouse, pool_id)
    time.sleep(2.5)
    two = run_cli(gatehouse, pool_id)
    assert one.returncode == 0 and two.returncode == 0
    one_kids = set(re.findall(r"new signing keys (\S+), (\S+) ", one.stdout)[0])
    two_kids = set(re.findall(r"new signing keys (\S+), (\S+) ", two.stdout)[0])
    starts_one, starts_two = takeover_time(one.stdout), takeover_time(two.stdout)
    assert starts_two >= starts_one + 2
    time.sleep(KEY_CACHE + 0.2)
    assert all(old_kids | one_kids | two_kids <= published for published in jwks_kids(jwks_url))
    while time.time() < starts_two + KEY_CACHE + 1:
        sent = time.time()
        tokens = sign_in(gatehouse, client_id)
        received = time.time()
        kids = {kid(tokens["IdToken"]), kid(tokens["AccessToken"])}
        if received < starts_one - 0.5:
            assert kids == old_kids
        if starts_one + 0.5 < sent and received < starts_two - 0.5:
            assert kids == one_kids
        if sent > starts_two + 0.5:
            assert kids == two_kids
        time.sleep(0.4)


@pytest.mark.parametrize("value", ["soon", "-1", "nan", "inf", "1e308"])
def test_a_bad_jwks_max_age_is_refused(gatehouse: GatehouseServer, value: str) -> None:
    """Refused before any key is written, infinity and absurd durations too (their arithmetic would fail after)."""
    pool_id, _ = user_pool(gatehouse, f"bad-max-age-{value.replace('.', '')}")
    before = pool_key_rows(gatehouse, pool_id)
    result = run_cli(gatehouse, pool_id, env={**ENV, "GATEHOUSE_JWKS_MAX_AGE_SECONDS": value})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    expected = f"GATEHOUSE_JWKS_MAX_AGE_SECONDS: expected a number of seconds from 0 to 315360000, got '{value}'"
    assert expected in result.stderr
    assert pool_key_rows(gatehouse, pool_id) == before
