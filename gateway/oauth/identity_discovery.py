"""Discovery of the identity service's issuer (``{public_url}/identity``), which signs identity pools'
OpenID tokens: ``/identity/.well-known/openid-configuration`` (OpenID Connect Discovery 1.0 §4) and
``/identity/.well-known/jwks.json`` (RFC 7517), so that STS and any OIDC verifier can check those tokens."""

from __future__ import annotations

from aiohttp import web

from gateway.logging import with_request_id
from gateway.oauth.wellknown import SERVICES

CACHE_CONTROL = {"Cache-Control": "public, max-age=300"}


async def identity_jwks(request: web.Request) -> web.Response:
    identities = request.app[SERVICES].identities
    keys = await identities.jwks()
    # As a pool's JWKS: the max-age that a rotated key's delay before signing is made to outlast.
    return web.json_response(keys, headers={"Cache-Control": f"public, max-age={identities.keys.jwks_max_age}"})


async def identity_openid_configuration(request: web.Request) -> web.Response:
    issuer = request.app[SERVICES].identities.issuer
    document = {
        "issuer": issuer,
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "claims_supported": ["sub", "aud", "amr", "iss", "exp", "iat"],
    }
    return web.json_response(document, headers=CACHE_CONTROL)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/identity/.well-known/jwks.json", with_request_id(identity_jwks))
    app.router.add_get("/identity/.well-known/openid-configuration", with_request_id(identity_openid_configuration))
