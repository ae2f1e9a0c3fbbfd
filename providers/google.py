"""Sign in with Google: OpenID Connect with Google's endpoints as Cognito's defaults.

Google documents both ``https://accounts.google.com`` and ``accounts.google.com`` as the ID token's ``iss``
("OpenID Connect", Google Identity docs), so both are accepted when the issuer is Google's own. Every URL can be
overridden in ProviderDetails (tests point them at a local fake).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from providers.oidc import OIDCConnector

GOOGLE_ISSUER = "https://accounts.google.com"


class GoogleConnector(OIDCConnector):
    provider_type: ClassVar[str] = "Google"
    required_keys: ClassVar[tuple[str, ...]] = ("client_id", "client_secret", "authorize_scopes")
    defaults: ClassVar[dict[str, str]] = {
        "attributes_url": "https://people.googleapis.com/v1/people/me?personFields=",
        "attributes_url_add_attributes": "true",
        "authorize_url": "https://accounts.google.com/o/oauth2/v2/auth",
        "oidc_issuer": GOOGLE_ISSUER,
        "token_request_method": "POST",
        "token_url": "https://www.googleapis.com/oauth2/v4/token",
        "jwks_uri": "https://www.googleapis.com/oauth2/v3/certs",
    }

    @classmethod
    def complete_details(cls, details: Mapping[str, str]) -> dict[str, str]:
        # Cognito accepts Google scopes without "openid"; the ID token is how we learn who signed in, so we
        # always ask for it (scopes()).
        return super(OIDCConnector, cls).complete_details(details)

    def scopes(self) -> list[str]:
        scopes = super().scopes()
        return scopes if "openid" in scopes else ["openid", *scopes]

    def issuers(self) -> frozenset[str]:
        issuer = self.details["oidc_issuer"]
        if issuer == GOOGLE_ISSUER:
            return frozenset({GOOGLE_ISSUER, "accounts.google.com"})
        return frozenset({issuer})

    async def userinfo(self, access_token: str) -> dict[str, object]:
        # The People API answers in its own shape (names[], emailAddresses[]), not OIDC userinfo; the ID token
        # already carries sub, email, email_verified, name and picture.
        return {}
