"""ID token verification stays cheap whatever the issuer's JWKS holds: a token is tried against a few keys of
the algorithm's key type at most, and one without a kid is not swept across a crowded set (each try is a
public-key operation on the event loop)."""

from __future__ import annotations

import base64
import json
import time

import pytest
from jwcrypto import jwk, jws, jwt

from providers.base import UpstreamError
from providers.oidc import MAX_CANDIDATE_KEYS, verify_id_token

ISSUER = "https://idp.example"


def signed(key: jwk.JWK, header: dict[str, str]) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": "client-1", "sub": "u-1", "iat": now, "exp": now + 300, "nonce": "n-1"}
    token = jwt.JWT(header=header, claims=claims)
    token.make_signed_token(key)
    return str(token.serialize())


@pytest.fixture(scope="module")
def crowded() -> tuple[jwk.JWK, jwk.JWKSet]:
    """One real key after a thousand decoys (copies of an unrelated public key under other kids)."""
    real = jwk.JWK.generate(kty="RSA", size=2048, kid="real")
    decoy = json.loads(jwk.JWK.generate(kty="RSA", size=2048).export_public())
    keys = [{**decoy, "kid": f"decoy-{i}"} for i in range(1000)] + [json.loads(real.export_public())]
    return real, jwk.JWKSet.from_json(json.dumps({"keys": keys}))


def test_a_token_without_kid_is_tried_against_a_few_keys_only(crowded: tuple[jwk.JWK, jwk.JWKSet]) -> None:
    real, keys = crowded
    options = {"issuers": frozenset({ISSUER}), "client_id": "client-1", "nonce": "n-1"}
    # Without a kid, a set of more than MAX_CANDIDATE_KEYS keys is not swept: the token is refused at once.
    assert len(keys["keys"]) > MAX_CANDIDATE_KEYS
    with pytest.raises(UpstreamError) as refused:
        verify_id_token(signed(real, {"alg": "RS256"}), keys, **options)  # type: ignore[arg-type]
    assert refused.value.reason == "id_token_key"
    # Named by its kid, the same key is found at once.
    claims = verify_id_token(signed(real, {"alg": "RS256", "kid": "real"}), keys, **options)  # type: ignore[arg-type]
    assert claims["sub"] == "u-1"


def test_an_ec_algorithm_is_never_tried_with_rsa_keys(crowded: tuple[jwk.JWK, jwk.JWKSet]) -> None:
    _, keys = crowded
    ec = jwk.JWK.generate(kty="EC", crv="P-256")
    with pytest.raises(UpstreamError) as refused:
        verify_id_token(
            signed(ec, {"alg": "ES256"}), keys, issuers=frozenset({ISSUER}), client_id="client-1", nonce="n-1"
        )
    assert refused.value.reason == "id_token_key"


def claims_token(key: jwk.JWK, **changes: object) -> str:
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": ISSUER, "aud": "client-1", "sub": "u-1", "iat": now, "exp": now + 300, "nonce": "n-1",
    }  # fmt: skip
    claims.update(changes)
    claims = {k: v for k, v in claims.items() if v is not None}
    token = jwt.JWT(header={"alg": "RS256", "kid": key.kid}, claims=claims)
    token.make_signed_token(key)
    return str(token.serialize())


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"iat": int(time.time()) + 3600}, "id_token_iat"),
        ({"nonce": None}, "id_token_nonce"),
        ({"exp": None}, "id_token_expired"),
        ({"exp": "9999999999"}, "id_token_expired"),
        ({"aud": ["client-1", "other-client"]}, "id_token_aud"),
        ({"aud": ["client-1", "other-client"], "azp": "other-client"}, "id_token_aud"),
        ({"aud": "client-1", "azp": "other-client"}, "id_token_aud"),
        ({"iss": ISSUER + "/"}, "id_token_iss"),
        ({"sub": ""}, "id_token_sub"),
    ],
)
def test_claims_oidc_core_refuses(changes: dict[str, object], reason: str) -> None:
    """OIDC Core §3.1.3.7: iat not in the future, nonce present and ours, exp a number, several audiences only
    with our azp, an azp only ours, iss exactly the issuer, a subject."""
    key = jwk.JWK.generate(kty="RSA", size=2048, kid="k1")
    keys = jwk.JWKSet()
    keys.add(key)
    with pytest.raises(UpstreamError) as refused:
        verify_id_token(
            claims_token(key, **changes), keys, issuers=frozenset({ISSUER}), client_id="client-1", nonce="n-1"
        )
    assert refused.value.reason == reason


def test_hs256_with_the_client_secret_and_unknown_kids_are_refused() -> None:
    key = jwk.JWK.generate(kty="RSA", size=2048, kid="k1")
    keys = jwk.JWKSet()
    keys.add(key)
    options = {"issuers": frozenset({ISSUER}), "client_id": "client-1", "nonce": "n-1"}
    # HMAC keyed with the client secret the IdP and we share: not an algorithm an ID token may use here.
    secret = jwk.JWK(kty="oct", k="Y2xpZW50LXNlY3JldC1vZi1hdC1sZWFzdC10aGlydHktdHdvLWJ5dGVz", kid="k1")
    forged = jwt.JWT(header={"alg": "HS256", "kid": "k1"}, claims={"iss": ISSUER, "aud": "client-1", "sub": "x"})
    forged.make_signed_token(secret)
    with pytest.raises(UpstreamError) as refused:
        verify_id_token(str(forged.serialize()), keys, **options)  # type: ignore[arg-type]
    assert refused.value.reason == "id_token_alg"
    stranger = jwk.JWK.generate(kty="RSA", size=2048, kid="k2")
    with pytest.raises(UpstreamError) as refused:
        verify_id_token(claims_token(stranger), keys, **options)  # type: ignore[arg-type]
    assert refused.value.reason == "id_token_key"


def test_only_a_well_formed_compact_jws_is_read() -> None:
    """RFC 7519 §7.2: an ID token is a compact JWS. The JSON serialization, junk characters inside a segment
    (which a lenient decoder skips), and JSON nested past any parser's depth are malformed, never a signature
    check or an error the callback does not expect (a RecursionError was a 500)."""
    key = jwk.JWK.generate(kty="RSA", size=2048, kid="k1")
    keys = jwk.JWKSet()
    keys.add(key)
    options = {"issuers": frozenset({ISSUER}), "client_id": "client-1", "nonce": "n-1"}
    genuine = claims_token(key)
    assert verify_id_token(genuine, keys, **options)["sub"] == "u-1"  # type: ignore[arg-type]
    header, payload, signature = genuine.split(".")
    deep = base64.urlsafe_b64encode(b"[" * 5000 + b"]" * 5000).rstrip(b"=").decode()
    deep_signed = jws.JWS(b"[" * 5000 + b"]" * 5000)
    deep_signed.add_signature(key, None, json.dumps({"alg": "RS256", "kid": "k1"}))
    variants = [
        f"{header}.{payload}.{signature[:10]}!!{signature[10:]}",  # characters a lenient decoder skips
        json.dumps({"protected": header, "payload": payload, "signature": signature}),  # the JSON serialization
        f"{deep}.{payload}.{signature}",  # a header nested too deep to parse
        deep_signed.serialize(compact=True),  # a signed payload nested too deep
    ]
    for variant in variants:
        with pytest.raises(UpstreamError) as refused:
            verify_id_token(variant, keys, **options)  # type: ignore[arg-type]
        assert refused.value.reason == "id_token_malformed", variant[:80]
