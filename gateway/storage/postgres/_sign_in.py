"""The PostgreSQL store: One-time codes, challenge sessions, token families and refresh tokens, signing keys, devices
and threat protection.

Each method keeps the promise :class:`gateway.storage.base.Store` states, as the SQLite store's does (its SQL and
row converters are reused where the dialects agree; see :mod:`gateway.storage.postgres._base`)."""

from __future__ import annotations

from gateway.storage.postgres._base import PostgresBase


class SignInMixin(PostgresBase):
    pass
