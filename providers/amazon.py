"""Login with Amazon: OAuth 2.0 code flow, then the customer profile (``/user/profile``).

Login with Amazon is not an OpenID Connect provider: who signed in is the profile's ``user_id``
(``amzn1.account....``), which Cognito maps to the user name. Endpoints are Cognito's defaults, overridable.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from providers.base import Identity, UpstreamError
from providers.oauth2 import OAuth2Connector


class AmazonConnector(OAuth2Connector):
    provider_type: ClassVar[str] = "LoginWithAmazon"
    subject_claim: ClassVar[str] = "user_id"
    defaults: ClassVar[dict[str, str]] = {
        "attributes_url": "https://api.amazon.com/user/profile",
        "attributes_url_add_attributes": "false",
        "authorize_url": "https://www.amazon.com/ap/oa",
        "token_request_method": "POST",
        "token_url": "https://api.amazon.com/auth/o2/token",
    }

    async def complete(
        self, params: Mapping[str, str], *, nonce: str, code_verifier: str, redirect_uri: str
    ) -> Identity:
        code = self.callback_code(params)
        tokens = await self.exchange_code(code, code_verifier=code_verifier, redirect_uri=redirect_uri)
        profile = await self.fetch_json(
            "GET",
            self.details["attributes_url"],
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
            what="profile",
        )
        user_id = profile.get("user_id")
        if not isinstance(user_id, str) or not user_id:
            raise UpstreamError("profile_invalid", "the profile has no user_id")
        return identity_from_profile(self.name, self.provider_type, profile)


def identity_from_profile(name: str, provider_type: str, profile: Mapping[str, Any]) -> Identity:
    email = profile.get("email")
    return Identity(
        provider=name,
        provider_type=provider_type,
        issuer=None,
        subject=str(profile["user_id"]),
        email=email if isinstance(email, str) else None,
        # Amazon only shows addresses its customers have verified.
        email_verified=True if isinstance(email, str) else None,
        name=profile.get("name") if isinstance(profile.get("name"), str) else None,
        claims=profile,
    )
