"""The PostgreSQL store: The OAuth 2.0 provider's records, domains, resource servers, hosted UI customization,
passkeys, federation, managed login branding and terms documents.

Each method keeps the promise :class:`gateway.storage.base.Store` states, as the SQLite store's does (its SQL and
row converters are reused where the dialects agree; see :mod:`gateway.storage.postgres._base`)."""

from __future__ import annotations

from gateway.storage.postgres._base import PostgresBase


class HostedMixin(PostgresBase):
    pass
