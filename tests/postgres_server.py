"""A throwaway PostgreSQL server for the tests: Debian's own binaries (``/usr/lib/postgresql/<version>/bin``, from
the ``postgresql`` package that scripts/test.sh installs), a fresh cluster in a temporary directory, on a free
loopback port, stopped and deleted afterwards. Durability is switched off (``fsync``, ``synchronous_commit``,
``full_page_writes``): the tests need PostgreSQL's semantics, not its crash safety.

PostgreSQL refuses to run as root; run as root (as CI does), the cluster belongs to the ``postgres`` user the
package creates and its commands run through ``runuser``.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support import free_port

__all__ = ["PostgresServer", "postgres_binaries"]


def postgres_binaries() -> Path | None:
    """The newest installed server's bin directory, or None if there is none."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


class PostgresServer:
    """``start()``, then :attr:`dsn` names its ``postgres`` database (user ``gatehouse``, no password);
    :meth:`create_database` makes more; ``stop()`` removes it all."""

    def __init__(self) -> None:
        bindir = postgres_binaries()
        if bindir is None:
            raise RuntimeError("PostgreSQL is not installed (Debian's postgresql package)")
        self.bindir = bindir
        self.port = free_port()
        self.user = "gatehouse"
        self._root = Path(tempfile.mkdtemp(prefix="gatehouse-pg-"))
        self.data_dir = self._root / "data"
        self._as_root = os.geteuid() == 0
        if self._as_root:
            shutil.chown(self._root, "postgres", "postgres")

    @property
    def dsn(self) -> str:
        return self.dsn_for("postgres")

    def dsn_for(self, database: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def _run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [str(self.bindir / command[0]), *command[1:]]
        if self._as_root:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=120)

    def start(self) -> PostgresServer:
        self._run("initdb", "-D", str(self.data_dir), "-U", self.user, "-A", "trust", "-E", "UTF8",
                  "--locale=C", "--no-sync")  # fmt: skip
        options = (
            f"-p {self.port} -k {self._root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run("pg_ctl", "start", "-D", str(self.data_dir), "-w", "-t", "60", "-o", options,
                  "-l", str(self._root / "server.log"))  # fmt: skip
        deadline = time.monotonic() + 30
        while self._run("pg_isready", "-h", "127.0.0.1", "-p", str(self.port), check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError("PostgreSQL did not start: " + self.log_text())
            time.sleep(0.1)
        return self

    def restart(self) -> None:
        """Stop the server (every connection cut, as by a database's restart or fail-over) and start it again."""
        self._run("pg_ctl", "restart", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "60",
                  "-l", str(self._root / "server.log"))  # fmt: skip

    def psql(self, sql: str, database: str = "postgres") -> str:
        done = self._run("psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "-d", database,
                         "-v", "ON_ERROR_STOP=1", "-qAtc", sql)  # fmt: skip
        return done.stdout

    def create_database(self, name: str, *, template: str | None = None) -> str:
        """A new database (a copy of ``template`` if given); its DSN."""
        copy = f" TEMPLATE {template}" if template else ""
        self.psql(f'CREATE DATABASE "{name}"{copy}')
        return self.dsn_for(name)

    def log_text(self) -> str:
        try:
            return (self._root / "server.log").read_text()
        except OSError:
            return ""

    def stop(self) -> None:
        if self.data_dir.exists():
            self._run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "immediate", "-w", check=False)
        shutil.rmtree(self._root, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
