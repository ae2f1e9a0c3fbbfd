"""Sign in with Apple: OpenID Connect with an ES256 client secret and the form_post response mode.

Apple's client secret is a JWT the client signs itself ("Creating a client secret", Apple developer docs):
header ``{"alg": "ES256", "kid": key_id}``, claims ``iss`` = team id, ``sub`` = client id (the Services ID),
``aud`` = ``https://appleid.apple.com`` (the issuer), ``iat`` and ``exp`` (at most six months later), signed
with the P-256 private key Apple issued. When the name or email scope is asked for, Apple answers by
``response_mode=form_post``, and on the first sign-in only the form carries a ``user`` JSON with the person's
name ({"name": {"firstName", "lastName"}, "email"}): it is merged into the claims then, never afterwards.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwcrypto import jwk, jwt

from providers.base import Identity, ProviderConfigError
from providers.oauth2 import require
from providers.oidc import OIDCConnector

APPLE_ISSUER = "https://appleid.apple.com"
CLIENT_SECRET_SECONDS = 300


def load_apple_key(private_key: str) -> jwk.JWK:
    """The P-256 key from the PEM Apple issues (a .p8 file's text, with or without the armour lines)."""
    text = private_key.strip().replace("\\n", "\n")
    if "-----BEGIN" not in text:
        text = "-----BEGIN PRIVATE KEY-----\n" + text + "\n-----END PRIVATE KEY-----"
    try:
        key = serialization.load_pem_private_key(text.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise ProviderConfigError("ProviderDetails private_key is not a PEM private key.") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ProviderConfigError("ProviderDetails private_key must be an EC P-256 key.")
    return jwk.JWK.from_pyca(key)


def apple_client_secret(*, team_id: str, key_id: str, client_id: str, audience: str, key: jwk.JWK) -> str:
    now = int(time.time())
    token = jwt.JWT(
        header={"alg": "ES256", "kid": key_id},
        claims={"iss": team_id, "iat": now, "exp": now + CLIENT_SECRET_SECONDS, "aud": audience, "sub": client_id},
    )
    token.make_signed_token(key)
    return str(token.serialize())


class AppleConnector(OIDCConnector):
    provider_type: ClassVar[str] = "SignInWithApple"
    response_mode: ClassVar[Literal["query", "form_post"]] = "form_post"
    required_keys: ClassVar[tuple[str, ...]] = ("client_id", "team_id", "key_id", "private_key", "authorize_scopes")
    secret_keys: ClassVar[frozenset[str]] = frozenset({"private_key"})
    # Cognito never describes the private key back.
    hidden_keys: ClassVar[frozenset[str]] = frozenset({"private_key"})
    scope_separator: ClassVar[str] = " "
    defaults: ClassVar[dict[str, str]] = {
        "attributes_url_add_attributes": "false",
        "authorize_url": "https://appleid.apple.com/auth/authorize",
        "oidc_issuer": APPLE_ISSUER,
        "token_request_method": "POST",
        "token_url": "https://appleid.apple.com/auth/token",
        "jwks_uri": "https://appleid.apple.com/auth/keys",
    }

    @classmethod
    def complete_details(cls, details: Mapping[str, str]) -> dict[str, str]:
        completed = super(OIDCConnector, cls).complete_details(details)
        require(completed, "team_id", "key_id")
        load_apple_key(completed["private_key"])
        for scope in completed["authorize_scopes"].split():
            if scope not in ("email", "name", "openid"):
                raise ProviderConfigError("ProviderDetails authorize_scopes for Apple may hold only email and name.")
        return completed

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._key: jwk.JWK | None = None

    def scopes(self) -> list[str]:
        # Apple issues the ID token for every authorization; "openid" is not one of its scopes.
        return [s for s in super().scopes() if s != "openid"]

    def extra_authorize_params(self) -> dict[str, str]:
        return {"response_mode": "form_post"}

    async def authorization_url(self, *, state: str, nonce: str, code_challenge: str, redirect_uri: str) -> str:
        url = await super().authorization_url(
            state=state, nonce=nonce, code_challenge=code_challenge, redirect_uri=redirect_uri
        )
        # Apple checks the nonce whatever the scopes; scopes() never holds "openid", so add it here.
        return url if "&nonce=" in url else url + "&nonce=" + nonce

    def client_secret(self) -> str:
        if self._key is None:
            self._key = load_apple_key(self.details["private_key"])
        return apple_client_secret(
            team_id=self.details["team_id"],
            key_id=self.details["key_id"],
            client_id=self.details["client_id"],
            audience=self.details["oidc_issuer"],
            key=self._key,
        )

    async def userinfo(self, access_token: str) -> dict[str, Any]:
        return {}  # Apple has no userinfo endpoint; the ID token is all there is.

    async def complete(
        self, params: Mapping[str, str], *, nonce: str, code_verifier: str, redirect_uri: str
    ) -> Identity:
        identity = await super().complete(params, nonce=nonce, code_verifier=code_verifier, redirect_uri=redirect_uri)
        user = _first_login_user(params.get("user"))
        if not user:
            return identity
        claims = {**user, **identity.claims}
        return Identity(
            provider=identity.provider,
            provider_type=identity.provider_type,
            issuer=identity.issuer,
            subject=identity.subject,
            email=identity.email,
            email_verified=identity.email_verified,
            name=claims.get("name") if isinstance(claims.get("name"), str) else identity.name,
            groups=identity.groups,
            claims=claims,
            unsigned_claims=frozenset(user) - frozenset(identity.claims),
        )


def _first_login_user(raw: str | None) -> dict[str, str]:
    """The ``user`` form field of a first sign-in: only the name is taken (the email is in the ID token)."""
    if not raw or len(raw) > 4096:
        return {}
    try:
        user = json.loads(raw)
    except ValueError:
        return {}
    name = user.get("name") if isinstance(user, dict) else None
    if not isinstance(name, dict):
        return {}
    given = name.get("firstName") if isinstance(name.get("firstName"), str) else None
    family = name.get("lastName") if isinstance(name.get("lastName"), str) else None
    claims: dict[str, str] = {}
    if given:
        claims["given_name"] = given
    if family:
        claims["family_name"] = family
    if given or family:
        claims["name"] = " ".join(x for x in (given, family) if x)
    return claims
