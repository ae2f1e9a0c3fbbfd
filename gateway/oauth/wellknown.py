"""Per-pool discovery: ``/{poolId}/.well-known/jwks.json`` (RFC 7517) and
``/{poolId}/.well-known/openid-configuration`` (OpenID Connect Discovery 1.0 §4)."""

from __future__ import annotations

from aiohttp import web

from gateway.errors import ResourceNotFoundException
from gateway.services.container import Services
from gateway.services.tokens import ADMIN_SCOPE

SERVICES = web.AppKey("services", Services)


async def jwks(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    pool_id = request.match_info["pool_id"]
    try:
        await services.pools.get_pool(pool_id)
    except ResourceNotFoundException:
        return web.json_response({"message": "User pool does not exist"}, status=404)
    keys = await services.tokens.keys.jwks(pool_id)
    return web.json_response(keys, headers={"Cache-Control": "public, max-age=300"})


async def openid_configuration(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    pool_id = request.match_info["pool_id"]
    try:
        await services.pools.get_pool(pool_id)
    except ResourceNotFoundException:
        return web.json_response({"message": "User pool does not exist"}, status=404)
    issuer = services.tokens.issuer(pool_id)
    base = services.settings.issuer_base
    document = {
        "issuer": issuer,
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "authorization_endpoint": f"{base}/oauth2/authorize",
        "token_endpoint": f"{base}/oauth2/token",
        "userinfo_endpoint": f"{base}/oauth2/userInfo",
        "revocation_endpoint": f"{base}/oauth2/revoke",
        "end_session_endpoint": f"{base}/logout",
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "email", "phone", "profile", ADMIN_SCOPE],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "token_use",
            "cognito:username",
            "cognito:groups",
            "email",
            "email_verified",
            "phone_number",
            "phone_number_verified",
            "name",
            "given_name",
            "family_name",
        ],
        "code_challenge_methods_supported": ["S256"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
    }
    return web.json_response(document, headers={"Cache-Control": "public, max-age=300"})
