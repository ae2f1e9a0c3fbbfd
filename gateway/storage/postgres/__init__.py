"""The PostgreSQL store (asyncpg): :class:`~gateway.storage.base.Store` on a database that several Gatehouse
servers share. ``pip install 'gatehouse[postgres]'`` brings its driver.

One schema with the SQLite store (``migrations/``, applied at open) and one set of statements and row converters:
the SQLite store's, module-level in :mod:`gateway.storage.sqlite` and imported from there, turned into PostgreSQL's
dialect by :func:`~gateway.storage.postgres._base.pg_sql`; only where the dialects differ is a statement written
here. A method that is one such statement in both stores is written once, in
:class:`~gateway.storage.sqlite.SharedQueries`, which both inherit. The others are grouped as the SQLite store's
are, one module a group, and :class:`PostgresStore` is all of them. Both stores pass one conformance suite
(tests/storage/conformance.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.storage.postgres._aws import AwsMixin
from gateway.storage.postgres._hosted import HostedMixin
from gateway.storage.postgres._sign_in import SignInMixin
from gateway.storage.postgres._users import UsersMixin

if TYPE_CHECKING:
    from gateway.storage.base import Store

__all__ = ["PostgresStore"]


class PostgresStore(UsersMixin, SignInMixin, AwsMixin, HostedMixin):
    """:class:`~gateway.storage.base.Store` on PostgreSQL. Create with :meth:`open` (a DSN such as
    ``postgresql://gatehouse@db.example.com/gatehouse``)."""


if TYPE_CHECKING:

    def _is_a_store(store: PostgresStore) -> Store:
        return store
