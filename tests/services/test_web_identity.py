"""The web identity verifier's in-process issuers: how identity pools' OpenID tokens reach STS's trust check."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.errors import ExpiredTokenException, InvalidIdentityTokenException
from gateway.secretbox import SecretBox
from gateway.services.iam import COGNITO_IDENTITY_PROVIDER, IamService
from gateway.services.tokens import SigningKeys, TokenService, b64url
from gateway.services.web_identity import WebIdentityVerifier
from gateway.storage.sqlite import SqliteStore

ISSUER = "https://cognito-identity.amazonaws.com"
POOL = "us-east-1:11111111-2222-3333-4444-555555555555"


def fake_token(claims: dict[str, Any]) -> str:
    """An unsigned-looking JWT: the registered verifier below is what decides, not a signature."""
    header = b64url(json.dumps({"alg": "RS256", "kid": "k"}).encode())
    return f"{header}.{b64url(json.dumps(claims).encode())}.c2ln"


@pytest.fixture
async def verifier() -> AsyncIterator[tuple[WebIdentityVerifier, IamService]]:
    store = await SqliteStore.open(":memory:")
    box = SecretBox(SecretBox.generate_key())
    iam = IamService(store, account_id="000000000000")
    tokens = TokenService(store, SigningKeys(store, box), "http://gatehouse.test")
    web = WebIdentityVerifier(iam, tokens, "http://gatehouse.test")
    yield web, iam
    await web.close()
    await store.close()


async def test_registered_issuer_decides_and_names_the_provider(
    verifier: tuple[WebIdentityVerifier, IamService],
) -> None:
    web, iam = verifier
    seen: list[str] = []

    async def verify(token: str) -> dict[str, Any]:
        seen.append(token)
        claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
        if claims.get("case") == "expired":
            raise ExpiredTokenException("Token expired")
        if claims.get("case") == "forged":
            raise InvalidIdentityTokenException("bad signature")
        return dict(claims)

    web.register_issuer(ISSUER, verify, provider=COGNITO_IDENTITY_PROVIDER)
    good = fake_token(
        {"iss": ISSUER, "sub": "us-east-1:identity-1", "aud": POOL, "amr": ["authenticated", "gatehouse"], "exp": 1}
    )
    verified = await web.verify(good)
    assert seen == [good]
    identity = verified.identity
    assert (identity.provider, identity.subject, identity.audience, identity.amr) == (
        COGNITO_IDENTITY_PROVIDER,
        "us-east-1:identity-1",
        (POOL,),
        ("authenticated", "gatehouse"),
    )
    trust = {
        "Version": "2012-10-17",
        "Statement": {
            "Effect": "Allow",
            "Principal": {"Federated": COGNITO_IDENTITY_PROVIDER},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {"cognito-identity.amazonaws.com:aud": POOL},
                "ForAnyValue:StringLike": {"cognito-identity.amazonaws.com:amr": "authenticated"},
            },
        },
    }
    role = await iam.create_role("Authenticated", json.dumps(trust))
    assert iam.trust_allows(role, identity)

    # Another issuer's token with base64 padding in its segments still reaches that issuer's check (only
    # Gatehouse's own tokens are read strictly).
    header, payload, signature = good.split(".")
    padded = ".".join(part + "=" * (-len(part) % 4) for part in (header, payload, signature))
    assert padded != good and (await web.verify(padded)).identity.subject == "us-east-1:identity-1"
    assert seen[-1] == padded
    # But a compact JWS all the same (RFC 7519 §7.2): not the JSON serialization, and no junk characters in a
    # segment, which a lenient decoder would skip.
    junk = f"{header}.{payload[:5]}!!{payload[5:]}.{signature}"
    serialized = json.dumps({"protected": header, "payload": payload, "signature": signature})
    for token in (junk, serialized):
        with pytest.raises(InvalidIdentityTokenException):
            await web.verify(token)
    assert seen[-1] == padded  # neither reached the issuer's check
    with pytest.raises(InvalidIdentityTokenException):
        await web.verify(fake_token({"iss": ISSUER, "sub": "x", "aud": POOL, "case": "forged"}))
    with pytest.raises(ExpiredTokenException):
        await web.verify(fake_token({"iss": ISSUER, "sub": "x", "aud": POOL, "case": "expired"}))


async def test_unknown_issuers_and_garbage(verifier: tuple[WebIdentityVerifier, IamService]) -> None:
    web, _ = verifier
    for token in ("", "a.b", "not-base64!.x.y", fake_token({"sub": "x"})):
        with pytest.raises(InvalidIdentityTokenException):
            await web.verify(token)
    with pytest.raises(InvalidIdentityTokenException, match="No OpenIDConnect provider"):
        await web.verify(fake_token({"iss": "https://elsewhere.example", "sub": "x", "aud": "y"}))
    # A token claiming a Gatehouse pool as issuer is checked against that pool's keys (there are none).
    with pytest.raises(InvalidIdentityTokenException):
        await web.verify(
            fake_token({"iss": "http://gatehouse.test/us-east-1_Nope", "sub": "x", "aud": "y", "exp": 9e9})
        )
