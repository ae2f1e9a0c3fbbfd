"""Identity pool logins from the public providers of SupportedLoginProviders, against stand-ins on loopback.

Google and Apple ID tokens are checked against a JWKS served over real HTTP; Login with Amazon and Facebook
access tokens against token-info and Graph API stand-ins that answer as the real ones do. The server is
pointed at them with ``GATEHOUSE_SOCIAL_ENDPOINTS``; nothing in Gatehouse is patched.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fakes.json_http import JsonServer
from tests.support import GatehouseServer, MailServer, smtp_config

GOOGLE_APP = "google-app.apps.example"
APPLE_APP = "com.example.app"
AMAZON_APP = "amzn1.application-oa2-client.example"
FACEBOOK_APP = "1234567890"


class SocialStandIns:
    """Google's and Apple's JWKS, Amazon's token-info endpoint and Facebook's Graph API, on one port."""

    def __init__(self) -> None:
        self.keys = {
            name: rsa.generate_private_key(public_exponent=65537, key_size=2048) for name in ("google", "apple")
        }
        # Access tokens the stand-ins know: token -> (app it was issued to, user).
        self.amazon_tokens = {"amzn-good": (AMAZON_APP, "amzn1.account.ALICE"), "amzn-other": ("other-app", "x")}
        self.facebook_tokens = {"fb-good": (FACEBOOK_APP, "10150000001"), "fb-other": ("999", "10150000002")}
        self._http = JsonServer(self._answer)
        self.url = f"http://127.0.0.1:{self._http.port}"

    def start(self) -> None:
        self._http.start()

    def stop(self) -> None:
        self._http.stop()

    def _answer(self, path: str) -> tuple[int, dict[str, Any] | None]:
        parts = urlsplit(path)
        return self.answer(parts.path, parse_qs(parts.query).get("access_token", [""])[0])

    def answer(self, path: str, token: str) -> tuple[int, dict[str, Any]]:
        if path in ("/google/certs", "/apple/keys"):
            name = path.split("/")[1]
            public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.keys[name].public_key()))
            return 200, {"keys": [{**public, "kid": f"{name}-1", "alg": "RS256", "use": "sig"}]}
        if path == "/amazon/tokeninfo":
            if token == "amzn-broken":
                return 503, {"error": "unavailable"}
            if token not in self.amazon_tokens:
                return 400, {"error": "invalid_token", "error_description": "The access token is invalid"}
            app, user = self.amazon_tokens[token]
            return 200, {"aud": app, "user_id": user, "iss": "https://www.amazon.com", "exp": 3600}
        if path in ("/facebook/app", "/facebook/me"):
            if token not in self.facebook_tokens:
                return 400, {"error": {"message": "Invalid OAuth access token.", "type": "OAuthException"}}
            app, user = self.facebook_tokens[token]
            return 200, {"id": app} if path.endswith("/app") else {"id": user}
        return 404, {}

    def endpoints(self) -> str:
        return json.dumps(
            {
                "accounts.google.com": {"jwks_uri": f"{self.url}/google/certs"},
                "appleid.apple.com": {"jwks_uri": f"{self.url}/apple/keys"},
                "www.amazon.com": {"tokeninfo": f"{self.url}/amazon/tokeninfo"},
                "graph.facebook.com": {"graph": f"{self.url}/facebook"},
            }
        )

    def id_token(self, name: str, *, key: Any = None, **claims: Any) -> str:
        issuer, audience = {
            "google": ("https://accounts.google.com", GOOGLE_APP),
            "apple": ("https://appleid.apple.com", APPLE_APP),
        }[name]
        now = int(time.time())
        body = {"iss": issuer, "aud": audience, "sub": f"{name}-user-1", "iat": now, "exp": now + 600, **claims}
        return jwt.encode(body, key or self.keys[name], algorithm="RS256", headers={"kid": f"{name}-1"})


@pytest.fixture(scope="module")
def stand_ins() -> Iterator[SocialStandIns]:
    fake = SocialStandIns()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def gatehouse(
    tmp_path_factory: pytest.TempPathFactory, mail: MailServer, stand_ins: SocialStandIns
) -> Iterator[GatehouseServer]:
    data_dir: Path = tmp_path_factory.mktemp("gatehouse-social") / "data"
    server = GatehouseServer(
        data_dir, config=smtp_config(mail), extra_env={"GATEHOUSE_SOCIAL_ENDPOINTS": stand_ins.endpoints()}
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pool_id(ci: Any) -> str:
    return str(
        ci.create_identity_pool(
            IdentityPoolName="social",
            AllowUnauthenticatedIdentities=False,
            AllowClassicFlow=True,
            SupportedLoginProviders={
                "accounts.google.com": f"{GOOGLE_APP};another-google-app",
                "appleid.apple.com": APPLE_APP,
                "www.amazon.com": AMAZON_APP,
                "graph.facebook.com": FACEBOOK_APP,
            },
        )["IdentityPoolId"]
    )


def error_of(call: Callable[[], Any]) -> tuple[str, str]:
    with pytest.raises(ClientError) as exc:
        call()
    return str(exc.value.response["Error"]["Code"]), str(exc.value.response["Error"]["Message"])


def test_google_and_apple_id_tokens(ci: Any, public_ci: Any, pool_id: str, stand_ins: SocialStandIns) -> None:
    google = {"accounts.google.com": stand_ins.id_token("google")}
    identity = public_ci.get_id(IdentityPoolId=pool_id, Logins=google)["IdentityId"]
    # Google's tokens have carried iss with and without the scheme; the same user is the same identity.
    again = {"accounts.google.com": stand_ins.id_token("google", iss="accounts.google.com")}
    assert public_ci.get_id(IdentityPoolId=pool_id, Logins=again)["IdentityId"] == identity
    token = public_ci.get_open_id_token(IdentityId=identity, Logins=google)["Token"]
    amr = jwt.decode(token, options={"verify_signature": False})["amr"]
    assert amr == ["authenticated", "accounts.google.com", "accounts.google.com:google-user-1"]
    apple = {"appleid.apple.com": stand_ins.id_token("apple")}
    assert public_ci.get_id(IdentityPoolId=pool_id, Logins=apple)["IdentityId"] != identity
    second_app = {"accounts.google.com": stand_ins.id_token("google", aud="another-google-app", sub="google-user-2")}
    assert public_ci.get_id(IdentityPoolId=pool_id, Logins=second_app)["IdentityId"] != identity

    before = len(ci.list_identities(IdentityPoolId=pool_id, MaxResults=60)["Identities"])
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    refused = {
        "another app": (stand_ins.id_token("google", aud="someone-elses-app"), "audience"),
        "expired": (stand_ins.id_token("google", exp=int(time.time()) - 3600), "expired"),
        "another key": (stand_ins.id_token("google", key=other_key), "signature"),
        "another issuer": (stand_ins.id_token("google", iss="https://evil.example"), "Issuer"),
        "apple token as google": (stand_ins.id_token("apple"), "signature"),
        "not a JWT": ("ya29.an-access-token", "identity token"),
    }
    # Not a compact JWS, though its signature is Google's: the JSON serialization, or junk characters that a
    # lenient decoder would skip (RFC 7519 §7.2).
    header, payload, signature = stand_ins.id_token("google").split(".")
    refused["JSON serialization"] = (
        json.dumps({"protected": header, "payload": payload, "signature": signature}),
        "identity token",
    )
    refused["junk in a segment"] = (f"{header}.{payload}.{signature[:9]}!!{signature[9:]}", "identity token")
    for name, (bad, reason) in refused.items():
        code, message = error_of(
            lambda bad=bad: public_ci.get_id(IdentityPoolId=pool_id, Logins={"accounts.google.com": bad})
        )
        assert code == "NotAuthorizedException" and reason in message, (name, message)
    assert len(ci.list_identities(IdentityPoolId=pool_id, MaxResults=60)["Identities"]) == before


def test_amazon_and_facebook_access_tokens_and_linking(ci: Any, public_ci: Any, pool_id: str) -> None:
    amazon = {"www.amazon.com": "amzn-good"}
    identity = public_ci.get_id(IdentityPoolId=pool_id, Logins=amazon)["IdentityId"]
    facebook = {"graph.facebook.com": "fb-good"}
    public_ci.get_open_id_token(IdentityId=identity, Logins={**amazon, **facebook})
    assert public_ci.get_id(IdentityPoolId=pool_id, Logins=facebook)["IdentityId"] == identity
    assert ci.describe_identity(IdentityId=identity)["Logins"] == ["graph.facebook.com", "www.amazon.com"]
    token = public_ci.get_open_id_token(IdentityId=identity, Logins=facebook)["Token"]
    assert jwt.decode(token, options={"verify_signature": False})["amr"] == [
        "authenticated",
        "graph.facebook.com",
        "graph.facebook.com:10150000001",
    ]
    refused = [
        ({"www.amazon.com": "amzn-other"}, "NotAuthorizedException", "audience"),
        ({"www.amazon.com": "amzn-unknown"}, "NotAuthorizedException", "refused"),
        ({"graph.facebook.com": "fb-other"}, "NotAuthorizedException", "audience"),
        ({"graph.facebook.com": "fb-unknown"}, "NotAuthorizedException", "refused"),
        ({"www.amazon.com": "amzn-broken"}, "ExternalServiceException", "could not"),
    ]
    for logins, expected, reason in refused:
        code, message = error_of(lambda logins=logins: public_ci.get_id(IdentityPoolId=pool_id, Logins=logins))
        assert (code, reason in message) == (expected, True), (logins, message)


def test_unconfigured_social_provider_is_not_supported(ci: Any, public_ci: Any, stand_ins: SocialStandIns) -> None:
    only_google = ci.create_identity_pool(
        IdentityPoolName="google only",
        AllowUnauthenticatedIdentities=False,
        SupportedLoginProviders={"accounts.google.com": GOOGLE_APP},
    )["IdentityPoolId"]
    code, message = error_of(
        lambda: public_ci.get_id(IdentityPoolId=only_google, Logins={"appleid.apple.com": stand_ins.id_token("apple")})
    )
    assert code == "NotAuthorizedException" and "supported provider" in message
