"""The PostgreSQL store: IAM roles and OIDC providers, identity pools, other issuers' signing keys, user import jobs
and client ID metadata documents.

Each method keeps the promise :class:`gateway.storage.base.Store` states, as the SQLite store's does (its SQL and
row converters are reused where the dialects agree; see :mod:`gateway.storage.postgres._base`)."""

from __future__ import annotations

from gateway.storage.postgres._base import PostgresBase


class AwsMixin(PostgresBase):
    pass
