"""Per-pool discovery: ``/{poolId}/.well-known/jwks.json`` (RFC 7517) and
``/{poolId}/.well-known/openid-configuration`` (OpenID Connect Discovery 1.0 §4)."""

from __future__ import annotations

from aiohttp import web

from gateway.errors import ResourceNotFoundException
from gateway.services.container import Services
from gateway.services.oauth import SCOPE_CLAIMS
from gateway.services.token_exchange import GRANT_TYPE as EXCHANGE_GRANT_TYPE
from gateway.services.tokens import ADMIN_SCOPE

SERVICES = web.AppKey("services", Services)


async def jwks(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    pool_id = request.match_info["pool_id"]
    try:
        await services.pools.get_pool(pool_id)
    except ResourceNotFoundException:
        return web.json_response({"message": "User pool does not exist"}, status=404)
    signing_keys = services.tokens.keys
    keys = await signing_keys.jwks(pool_id)
    # A key published here signs only once every cached copy of an earlier response has expired (SigningKeys).
    return web.json_response(keys, headers={"Cache-Control": f"public, max-age={signing_keys.jwks_max_age}"})


async def openid_configuration(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    pool_id = request.match_info["pool_id"]
    try:
        await services.pools.get_pool(pool_id)
    except ResourceNotFoundException:
        return web.json_response({"message": "User pool does not exist"}, status=404)
    issuer = services.tokens.issuer(pool_id)
    # The endpoints under the issuer's path are the ones this document can promise for this pool (the
    # same endpoints also answer at Cognito's paths on the pool's domain).
    document = {
        "issuer": issuer,
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "authorization_endpoint": f"{issuer}/oauth2/authorize",
        "token_endpoint": f"{issuer}/oauth2/token",
        "userinfo_endpoint": f"{issuer}/oauth2/userInfo",
        "revocation_endpoint": f"{issuer}/oauth2/revoke",
        "end_session_endpoint": f"{issuer}/logout",
        "response_types_supported": ["code", "token"],
        "response_modes_supported": ["query", "fragment"],
        "grant_types_supported": [
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "implicit",
            # RFC 8693 token exchange (gateway/services/token_exchange.py).
            EXCHANGE_GRANT_TYPE,
        ],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "email", "phone", "profile", ADMIN_SCOPE],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
        # Cognito's four: none and login act on the hosted UI's session; consent and select_account are the
        # identity provider's to honour (forwarded to it, as login is).
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "authorization_response_iss_parameter_supported": True,
        # draft-ietf-oauth-client-id-metadata-document: an https URL may be the client_id (when a CIMD policy
        # of the pool admits it).
        "client_id_metadata_document_supported": True,
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "at_hash",
            "token_use",
            "cognito:username",
            "cognito:groups",
            # The standard claims the scopes release (OpenID Connect Core §5.4), as userInfo releases them.
            *dict.fromkeys(claim for claims in SCOPE_CLAIMS.values() for claim in claims),
        ],
    }
    return web.json_response(document, headers={"Cache-Control": "public, max-age=300"})
