"""Which store a Gatehouse opens: PostgreSQL when the settings name a database URL (``GATEHOUSE_DATABASE_URL`` or
the config file's ``server.database_url``), else the SQLite file under the data dir."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from gateway.services.change_stamp import ChangeStamps
from gateway.storage.base import Store
from gateway.storage.sqlite import SqliteStore

if TYPE_CHECKING:
    from gateway.settings import Settings

__all__ = ["change_stamps", "open_store", "share_changes"]


async def open_store(settings: Settings) -> Store:
    """The store the settings name, open and migrated."""
    if settings.database_url is not None:
        try:
            from gateway.storage.postgres import PostgresStore
        except ImportError as exc:  # asyncpg, the postgres extra
            raise RuntimeError(
                "the database URL names a PostgreSQL database, but its driver is not installed: "
                "pip install 'gatehouse[postgres]'"
            ) from exc
        size = settings.database_pool_size
        return await PostgresStore.open(settings.database_url.reveal(), min_size=min(2, size), max_size=size)
    return await SqliteStore.open(settings.database)


def change_stamps(settings: Settings) -> ChangeStamps:
    """The change stamps this process shares with the others on its machine: beside the SQLite file, or in the
    data dir when the store is PostgreSQL (where servers on other machines hear of changes through it)."""
    if settings.database_url is not None:
        return ChangeStamps(Path(settings.data_dir) / "gatehouse-stamps")
    return ChangeStamps.beside(settings.database)


async def share_changes(store: Store, stamps: ChangeStamps) -> None:
    """Tie ``stamps`` to the servers on other machines, when the store is one they share (PostgreSQL)."""
    announce = getattr(store, "announce_change", None)
    listen = getattr(store, "listen_for_changes", None)
    if announce is not None and listen is not None:
        await listen(stamps.receive)
        stamps.publish = announce
