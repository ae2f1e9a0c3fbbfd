"""Upstream identity provider connectors (Google, Facebook, Apple, Amazon, OIDC, SAML).

Each connector implements a capability interface of ``providers/base.py`` (redirect-based or SAML) and returns
one normalised ``Identity``; ``providers/registry.py`` maps Cognito's ProviderType to its connector. The
gateway's federation broker (``gateway/services/federation.py``) never names a provider (see DESIGN.md).
"""
