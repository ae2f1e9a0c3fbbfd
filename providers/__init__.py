"""Upstream identity provider connectors (Google, Facebook, Apple, Amazon, OIDC, SAML).

Each connector will implement the capability interfaces of ``providers/base.py`` and return one normalised
``Identity``; the gateway's federation broker never names a provider (see DESIGN.md). Federation is not built
yet: this package is where it lands.
"""
