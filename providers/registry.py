"""The one place that knows which connector serves which Cognito ProviderType.

Everything else asks here by type name, so adding a provider is one line (as Dex's connector registry).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from providers.amazon import AmazonConnector
from providers.apple import AppleConnector
from providers.base import Connector, ConnectorContext, ProviderConfigError
from providers.facebook import FacebookConnector
from providers.google import GoogleConnector
from providers.oidc import OIDCConnector

CONNECTORS: dict[str, type[Connector]] = {
    "Google": GoogleConnector,
    "Facebook": FacebookConnector,
    "SignInWithApple": AppleConnector,
    "LoginWithAmazon": AmazonConnector,
    "OIDC": OIDCConnector,
}


def _register_saml() -> None:
    # pysaml2 is imported only where SAML is used; its absence must not break the other providers.
    from providers.saml import SAMLConnector

    CONNECTORS["SAML"] = SAMLConnector


_register_saml()


def connector_class(provider_type: str) -> type[Connector]:
    cls = CONNECTORS.get(provider_type)
    if cls is None:
        raise ProviderConfigError(f"Unsupported ProviderType {provider_type}.")
    return cls


def open_connector(
    provider_type: str,
    name: str,
    details: Mapping[str, str],
    context: ConnectorContext,
    *,
    wanted_claims: Sequence[str] = (),
) -> Connector:
    return connector_class(provider_type)(name, details, context, wanted_claims=wanted_claims)
