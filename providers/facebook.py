"""Facebook Login: OAuth 2.0 code flow, then the Graph API's ``/me``.

The code exchange is a GET of ``/oauth/access_token`` (Cognito's ``token_request_method: GET``); ``/me`` is read
with ``fields`` for the id plus every attribute AttributeMapping names (``attributes_url_add_attributes``), and
with ``appsecret_proof`` = HMAC-SHA256(app secret, access token), as Facebook recommends for server calls
("Securing Graph API Requests"). Who signed in is the app-scoped ``id``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import ClassVar

from providers.base import Identity, UpstreamError
from providers.oauth2 import OAuth2Connector, with_query

DEFAULT_API_VERSION = "v17.0"


class FacebookConnector(OAuth2Connector):
    provider_type: ClassVar[str] = "Facebook"
    subject_claim: ClassVar[str] = "id"
    scope_separator: ClassVar[str] = ","
    # Fields asked of /me besides the id and what AttributeMapping reads.
    fields: tuple[str, ...] = ("name", "email")

    @classmethod
    def complete_details(cls, details: Mapping[str, str]) -> dict[str, str]:
        version = details.get("api_version") or DEFAULT_API_VERSION
        defaults = {
            "api_version": version,
            "attributes_url": f"https://graph.facebook.com/{version}/me?fields=",
            "attributes_url_add_attributes": "true",
            "authorize_url": f"https://www.facebook.com/{version}/dialog/oauth",
            "token_request_method": "GET",
            "token_url": f"https://graph.facebook.com/{version}/oauth/access_token",
        }
        merged = {**defaults, **{k: v for k, v in details.items() if v is not None}}
        return super().complete_details(merged)

    async def complete(
        self, params: Mapping[str, str], *, nonce: str, code_verifier: str, redirect_uri: str
    ) -> Identity:
        code = self.callback_code(params)
        tokens = await self.exchange_code(code, code_verifier=code_verifier, redirect_uri=redirect_uri)
        access_token = str(tokens["access_token"])
        proof = hmac.new(self.client_secret().encode(), access_token.encode(), hashlib.sha256).hexdigest()
        fields = ",".join(dict.fromkeys(("id", *self.fields, *self.wanted_claims)))
        url = self.details["attributes_url"]
        if url.endswith("fields="):
            url = url + fields
        me = await self.fetch_json(
            "GET",
            with_query(url, {"access_token": access_token, "appsecret_proof": proof}),
            what="profile",
        )
        if "error" in me or not isinstance(me.get("id"), str) or not me["id"]:
            raise UpstreamError("profile_invalid", "the Graph API /me answer has no id")
        email = me.get("email")
        return Identity(
            provider=self.name,
            provider_type=self.provider_type,
            issuer=None,
            subject=me["id"],
            email=email if isinstance(email, str) else None,
            name=me.get("name") if isinstance(me.get("name"), str) else None,
            claims=me,
        )
