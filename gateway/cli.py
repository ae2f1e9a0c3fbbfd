"""The ``gatehouse`` command: ``serve``, ``config check``, ``keys rotate``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import json
import multiprocessing
import os
import re
import shutil
import signal
import socket
import stat
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from multiprocessing.connection import wait
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.services.passwords import Argon2Params
from gateway.settings import Secret, Settings, admin_credentials_from_env, postgres_url_problem

if TYPE_CHECKING:
    from aiohttp import web

    from gateway.storage.base import Store

ADMIN_ENV = ("GATEHOUSE_ADMIN_ACCESS_KEY_ID", "GATEHOUSE_ADMIN_SECRET_ACCESS_KEY")


class UsageError(Exception):
    """A problem with how the command was run (options, environment, data dir, port): one line on stderr,
    exit status 1, no stack trace."""


# The longest duration an environment variable may set (ten years): a key schedule or a cache time beyond it is
# a typo, and an infinite one would make the key schedule's arithmetic fail after keys were written.
MAX_ENV_SECONDS = 10 * 365 * 86400


def _env_seconds(name: str) -> float:
    expected = f"{name}: expected a number of seconds from 0 to {MAX_ENV_SECONDS}, got {os.environ[name]!r}"
    try:
        value = float(os.environ[name])
    except ValueError:
        raise UsageError(expected) from None
    if not 0 <= value <= MAX_ENV_SECONDS:  # also refuses nan and inf, which no time arithmetic survives
        raise UsageError(expected)
    return value


def _env_flag(name: str) -> bool:
    text = os.environ[name].strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise UsageError(f"{name}: expected 1 or 0 (true or false), got {os.environ[name]!r}")


def _env_bytes(name: str) -> int:
    text = os.environ[name]
    if not (text.isascii() and text.isdigit() and int(text) > 0):
        raise UsageError(f"{name}: expected a number of bytes above 0, got {text!r}")
    return int(text)


def _settings_from_args(args: argparse.Namespace) -> Settings:
    overrides = _listening_options(args)  # checked first: a mistyped option is reported before any file is read
    settings = Settings()
    if args.config:
        from gateway.config_file import load_config, server_settings

        settings = server_settings(load_config(Path(args.config)), settings)
        settings = replace(settings, config_path=Path(args.config))
    if args.data_dir is not None:
        overrides["data_dir"] = Path(args.data_dir)
    env_creds = admin_credentials_from_env()
    half_set = [name for name in ADMIN_ENV if os.environ.get(name)]
    if env_creds is None and half_set:
        # Otherwise the generated credentials would be used without a word, and the given one ignored.
        missing = next(name for name in ADMIN_ENV if name not in half_set)
        raise UsageError(f"{half_set[0]} is set but {missing} is not: set both, or neither")
    if env_creds is not None:
        _check_admin_env(env_creds[0], env_creds[1].reveal())
        overrides["admin_access_key_id"], overrides["admin_secret_access_key"] = env_creds
    if os.environ.get("GATEHOUSE_DATABASE_URL"):
        problem = postgres_url_problem(os.environ["GATEHOUSE_DATABASE_URL"])
        if problem is not None:
            raise UsageError(f"GATEHOUSE_DATABASE_URL: {problem}")
        overrides["database_url"] = Secret(os.environ["GATEHOUSE_DATABASE_URL"])
    log_format = os.environ.get("GATEHOUSE_LOG_FORMAT")
    if log_format and log_format not in ("json", "console"):
        raise UsageError(f"GATEHOUSE_LOG_FORMAT: expected json or console, got {log_format!r}")
    if log_format == "console":
        overrides["log_json"] = False
    if os.environ.get("GATEHOUSE_KEY_CACHE_SECONDS"):
        overrides["key_cache_seconds"] = _env_seconds("GATEHOUSE_KEY_CACHE_SECONDS")
    if os.environ.get("GATEHOUSE_JWKS_MAX_AGE_SECONDS"):
        overrides["jwks_max_age_seconds"] = _env_seconds("GATEHOUSE_JWKS_MAX_AGE_SECONDS")
    if os.environ.get("GATEHOUSE_OAUTH_CODE_SECONDS"):
        overrides["oauth_code_seconds"] = _env_seconds("GATEHOUSE_OAUTH_CODE_SECONDS")
        if not overrides["oauth_code_seconds"]:  # every authorization code expired as it was issued
            raise UsageError("GATEHOUSE_OAUTH_CODE_SECONDS: expected a number of seconds above 0, got '0'")
    if os.environ.get("GATEHOUSE_SOCIAL_ENDPOINTS"):
        overrides["social_endpoints"] = os.environ["GATEHOUSE_SOCIAL_ENDPOINTS"]
    if os.environ.get("GATEHOUSE_USER_IMPORT_URL_SECONDS"):
        url_seconds = _env_seconds("GATEHOUSE_USER_IMPORT_URL_SECONDS")
        overrides["user_import_url_seconds"] = url_seconds
        if not url_seconds:  # a URL that has expired when it is handed out
            raise UsageError("GATEHOUSE_USER_IMPORT_URL_SECONDS: expected a number of seconds above 0, got '0'")
        if url_seconds > 604800:
            # An S3 pre-signed URL lasts a week at most; a URL good for longer is a leak that never heals (and
            # past 12 digits of expiry, one the upload route refuses).
            raise UsageError(
                "GATEHOUSE_USER_IMPORT_URL_SECONDS: expected at most 604800 seconds (7 days), got "
                f"{os.environ['GATEHOUSE_USER_IMPORT_URL_SECONDS']!r}"
            )
    if os.environ.get("GATEHOUSE_USER_IMPORT_IDLE_SECONDS"):
        overrides["user_import_idle_seconds"] = _env_seconds("GATEHOUSE_USER_IMPORT_IDLE_SECONDS")
        if not overrides["user_import_idle_seconds"]:  # every upload would be cut off before its first byte
            raise UsageError("GATEHOUSE_USER_IMPORT_IDLE_SECONDS: expected a number of seconds above 0, got '0'")
    if os.environ.get("GATEHOUSE_CIMD_PRIVATE_ADDRESSES"):
        overrides["cimd_private_addresses"] = _env_flag("GATEHOUSE_CIMD_PRIVATE_ADDRESSES")
    if os.environ.get("GATEHOUSE_USER_IMPORT_MAX_BYTES"):
        overrides["user_import_max_bytes"] = _env_bytes("GATEHOUSE_USER_IMPORT_MAX_BYTES")
    if os.environ.get("GATEHOUSE_MIN_FREE_BYTES"):
        overrides["min_free_bytes"] = _env_bytes("GATEHOUSE_MIN_FREE_BYTES")
    argon2 = _env_argon2(settings)
    if argon2 is not None:
        overrides["argon2"] = argon2
    _check_worker_environment()
    return replace(settings, **overrides)  # type: ignore[arg-type]


def _check_admin_env(key_id: str, secret: str) -> None:
    """Refuse admin credentials no client could sign with: a key id with white space, "/" or "," in it (it is
    sent in SigV4's ``Credential=<key id>/<date>/...``, which they cut), or either value with white space or a
    control character at an end -- the newline a secret file mounted as a variable ends with. They were taken as
    they were, and every admin call was refused without a word at start. The secret is never shown."""
    if not (key_id.isascii() and key_id.isprintable()) or any(c in key_id for c in " /,"):
        raise UsageError(
            "GATEHOUSE_ADMIN_ACCESS_KEY_ID: expected printable ASCII without spaces, '/' or ',' (a file's newline?), "
            f"got {key_id!r}"
        )
    if not secret.isprintable() or secret != secret.strip():
        raise UsageError(
            "GATEHOUSE_ADMIN_SECRET_ACCESS_KEY: expected no control character, and no white space at either end "
            "(a file's newline?)"
        )


def _check_worker_environment() -> None:
    """Refuse the variables each worker reads at start-up when they make no sense, here, before any worker
    opens the store: in a worker they were a traceback, or a process that neither served nor exited."""
    from gateway.loop_watch import ENV as SLOW_CALLBACK
    from gateway.loop_watch import threshold_from_env
    from gateway.services.social_logins import endpoints_from_json

    try:
        endpoints_from_json(os.environ.get("GATEHOUSE_SOCIAL_ENDPOINTS"))
    except ValueError as exc:  # json.JSONDecodeError is one; the message names no value but the entry's key
        reason = str(exc).removeprefix("GATEHOUSE_SOCIAL_ENDPOINTS").lstrip(": ")
        raise UsageError(f"GATEHOUSE_SOCIAL_ENDPOINTS: {reason}") from None
    try:
        threshold_from_env()
    except ValueError:
        raise UsageError(f"{SLOW_CALLBACK}: expected a number of seconds above 0 and below 60") from None
    for name in PROVIDER_ENV_SECONDS:
        if os.environ.get(name):
            _env_seconds(name)


# The identity providers' timings (providers/base.py, providers/oidc.py), read when their modules are imported:
# a value that was not a number there was a traceback before any option was checked; one below 0, or nan, made
# metadata never refresh, or an IdP fetched from on every sign-in.
PROVIDER_ENV_SECONDS = (
    "GATEHOUSE_METADATA_REFRESH_SECONDS",
    "GATEHOUSE_METADATA_RETRY_SECONDS",
    "GATEHOUSE_JWKS_RETRY_SECONDS",
)


# The Argon2id cost from the environment, as the config file's server.argon2 (which it overrides), e.g. for a
# throw-away test server that hashes thousands of passwords and measures none of them.
_ARGON2_ENV = {
    "memory_kib": ("GATEHOUSE_ARGON2_MEMORY_KIB", 8),
    "time_cost": ("GATEHOUSE_ARGON2_TIME_COST", 1),
    "parallelism": ("GATEHOUSE_ARGON2_PARALLELISM", 1),
}


def _env_argon2(settings: Settings) -> Argon2Params | None:
    from gateway.config_file import ARGON2_MAX_MEMORY_KIB, ARGON2_MAX_PARALLELISM, ARGON2_MAX_TIME_COST

    # As server.argon2 is bounded: beyond these every hash would fail (argon2 takes 32-bit numbers) or crawl.
    most = {"memory_kib": ARGON2_MAX_MEMORY_KIB, "time_cost": ARGON2_MAX_TIME_COST,
            "parallelism": ARGON2_MAX_PARALLELISM}  # fmt: skip
    given: dict[str, int] = {}
    for field_name, (name, least) in _ARGON2_ENV.items():
        text = os.environ.get(name)
        if not text:
            continue
        try:
            value = int(text)
        except ValueError:
            raise UsageError(f"{name}: expected a whole number, got {text!r}") from None
        if value < least:
            raise UsageError(f"{name}: expected at least {least}, got {value}")
        if value > most[field_name]:
            raise UsageError(f"{name}: expected at most {most[field_name]}, got {value}")
        given[field_name] = value
    if not given:
        return None
    params = replace(settings.argon2, **given)
    if params.memory_kib < 8 * params.parallelism:  # RFC 9106 §3.1: m >= 8p
        raise UsageError("GATEHOUSE_ARGON2_MEMORY_KIB: expected at least 8 KiB per lane")
    return params


def _run_worker(settings: Settings, parent_pid: int | None = None, sock: socket.socket | None = None) -> None:
    from gateway.app import create_app
    from gateway.config_file import ConfigError
    from gateway.logging import configure_logging

    configure_logging(json=settings.log_json, level=settings.log_level)
    app = create_app(settings)
    if parent_pid is not None:
        app.cleanup_ctx.append(_stop_when_parent_dies(parent_pid))
    try:
        _listen(app, settings, sock)
    except ConfigError as error:
        # The file is valid but cannot be applied to this store (e.g. a setting Cognito fixes at creation).
        print(str(error), file=sys.stderr)
        raise SystemExit(1) from None


# How long the `serve` process of several workers waits for a stop signal of its own after a worker exited 0 (see
# _serve): longer than a signal sent to every process of the server takes to reach each of them.
STOP_SIGNAL_GRACE_SECONDS = 0.5

# How often a worker checks that the `serve` process that started it is still there.
PARENT_CHECK_SECONDS = 1.0


def _stop_when_parent_dies(parent_pid: int) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context that stops this worker gracefully (as SIGTERM does) once the ``serve`` process that
    forked it is gone. Killed outright (SIGKILL, the OOM killer), the parent could not stop its workers: they
    went on serving on its port (SO_REUSEPORT) with no process left to watch them, and the server that a
    supervisor started in its place was refused with "port in use" for as long as they lived."""
    from gateway.logging import get_logger

    async def watch_parent() -> None:
        while True:  # a worker whose parent died is re-parented: getppid() changes
            await asyncio.sleep(PARENT_CHECK_SECONDS)
            if os.getppid() != parent_pid:
                break
        get_logger("gateway.cli").error(
            "worker.parent_exited", parent_pid=parent_pid, action="stopping this worker gracefully"
        )
        os.kill(os.getpid(), signal.SIGTERM)

    async def ctx(_app: web.Application) -> AsyncIterator[None]:
        watcher = asyncio.create_task(watch_parent())
        try:
            yield
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    return ctx


# How long a stopping server waits for the requests in flight before it closes their connections. aiohttp's
# default, 60 s, let one client that stopped half-way through its request body (or a hung upstream call) hold a
# stop for a minute, past an orchestrator's grace period (Kubernetes' 30 s), whose SIGKILL then skips the
# store's orderly close. A request in flight is answered within it unless it waits on a slow client or upstream
# (whose own timeouts are 10-15 s): that one's connection is closed, and its client retries elsewhere.
SHUTDOWN_SECONDS = 10.0
# Once a server has closed its store and everything else, the rest of a stop (cancelling leftover tasks, joining
# worker threads) takes milliseconds, unless an in-process trigger handler (server.lambda.functions) never ends: a
# thread still running one is joined at exit, and a coroutine that swallows its cancellation is awaited by
# aiohttp's run_app, either of them for ever, until an orchestrator's SIGKILL. Its answer was given up at its
# 5 s deadline already, so after this long the process exits all the same.
EXIT_GRACE_SECONDS = 2.0


def _listen(app: web.Application, settings: Settings, sock: socket.socket | None = None) -> None:
    from aiohttp import web

    from gateway.services.tokens import MAX_HEADER_BYTES

    loop = _loop_stopped_once_by_signals(app)
    # aiohttp reads a request line and a header of at most 8190 bytes by default, and answers 400 past them:
    # less than the tokens Gatehouse issues to a user in many groups, which come back in an Authorization
    # header (userInfo) or a URL (a logout's id_token_hint). Every worker listens through here.
    limit = MAX_HEADER_BYTES
    # Last of the cleanup (after the services' context, which aiohttp puts first): the store is closed by then.
    app.on_cleanup.append(_exit_within_grace)
    if sock is not None:  # --port 0: bound by serve(), which chose the port
        web.run_app(
            app, sock=sock, print=None, access_log=None, handle_signals=False,
            shutdown_timeout=SHUTDOWN_SECONDS, loop=loop, max_line_size=limit, max_field_size=limit,
        )  # fmt: skip
        return
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        print=None,
        access_log=None,
        max_line_size=limit,
        max_field_size=limit,
        # SO_REUSEPORT only when several workers share the port: serve() has checked that no other program
        # holds it, and a lone server must not quietly split a port with another one.
        reuse_port=True if settings.workers > 1 else None,
        handle_signals=False,
        shutdown_timeout=SHUTDOWN_SECONDS,
        loop=loop,
    )


async def _exit_within_grace(_app: web.Application) -> None:
    """Arm :func:`_force_exit` to run EXIT_GRACE_SECONDS from now, should the process still be alive."""
    timer = threading.Timer(EXIT_GRACE_SECONDS, _force_exit)
    timer.daemon = True  # never itself what keeps the process alive
    timer.start()


def _force_exit() -> None:
    """End a process that its server has closed but something keeps alive (see EXIT_GRACE_SECONDS), exit status 1."""
    from gateway.logging import flush_logs, get_logger

    running = sorted(t.name for t in threading.enumerate() if t is not threading.current_thread())
    get_logger("gateway.cli").error(
        "gateway.stop_forced", reason="work still running after the server closed", threads=running
    )
    flush_logs()
    os._exit(1)


# The signals that stop a server gracefully. SIGHUP too: its default action killed the server outright (status
# 129: requests in flight dropped, no orderly close of the store; with workers, the parent gone and its workers
# stopping a second later). A terminal that hangs up sends it, and so may a supervisor's "reload": Gatehouse reads
# its config file when it starts, so a restart is what applies a changed one. A server started with SIGHUP ignored
# (nohup) is to outlive its terminal, and keeps it ignored.
STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT) + (
    () if signal.getsignal(signal.SIGHUP) == signal.SIG_IGN else (signal.SIGHUP,)
)


class _ServerLoop(asyncio.SelectorEventLoop):
    """A server process's event loop, whose removed signal handlers leave their signal ignored. asyncio's loop
    puts back the signal's default action (terminate, for SIGTERM) when a handler is removed or the loop closes,
    and a server could only ignore the signal after that: one arriving in between killed the process (status
    -15; a parent that saw a worker "die" exited 1). Here the signal goes from handled to ignored in one step.
    The handlers are removed only once the stop is under way, when further signals must change nothing."""

    def remove_signal_handler(self, sig: int) -> bool:
        handlers = self._signal_handlers  # type: ignore[attr-defined]  # asyncio's own, by signal number
        if handlers.pop(sig, None) is None:
            return False
        signal.signal(sig, signal.SIG_IGN)
        if not handlers:
            with contextlib.suppress(ValueError, OSError):  # as asyncio's own remove_signal_handler
                signal.set_wakeup_fd(-1)
        return True


def _loop_stopped_once_by_signals(app: web.Application) -> asyncio.AbstractEventLoop:
    """A server's event loop, on which SIGTERM, SIGINT and SIGHUP (STOP_SIGNALS) begin one graceful stop (aiohttp's
    GracefulExit: the listener closes, requests in flight are answered) and later ones are ignored. A worker is
    often told twice: a terminal's Ctrl-C and systemd's KillMode=control-group signal every process of the server,
    and the parent passes the signal on as well; a lone server is told twice by a wrapper that passes a terminal's
    Ctrl-C on, or a supervisor that repeats its SIGTERM. aiohttp's own handlers would raise again inside the
    stop and cut it short: requests dropped, and exit status 1. A signal during start-up takes effect once it
    is done: cut short there, it left the store's thread answering a closed loop (a traceback on stderr)."""
    from aiohttp import web

    from gateway.logging import get_logger

    loop = _ServerLoop()
    asyncio.set_event_loop(loop)
    state = {"started": False, "signalled": False, "stopping": False}
    received: list[signal.Signals] = []

    def graceful_exit(signum: signal.Signals) -> None:
        state["signalled"] = True
        received.append(signum)
        if not state["started"] or state["stopping"]:
            return
        state["stopping"] = True
        get_logger("gateway.cli").info("gateway.stopping", signal=received[0].name)  # which one, for the operator
        # From here on the stop is under way and further signals change nothing: ignored by the process itself
        # (_ServerLoop puts "ignore" in place of these handlers), through the rest of the stop and the exit.
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)
        raise web.GracefulExit()

    async def started(_app: web.Application) -> None:
        state["started"] = True  # after every cleanup_ctx has opened (they run first: appended at creation)
        if state["signalled"]:
            loop.call_soon(graceful_exit, received[0])

    app.on_startup.append(started)
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, graceful_exit, signum)
    # A worker starts with these signals blocked (serve() blocks them before it forks): one sent since then is
    # delivered now, to the handlers above. Until they were installed its action was the default one, and a
    # worker that had not finished starting was killed (status -15: the server exited 1).
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    return loop


def _check_port_free(host: str, port: int) -> None:
    """Raise UsageError when another program listens on ``host:port``. The workers bind with SO_REUSEPORT,
    which the kernel lets a second server (same user, also SO_REUSEPORT) share without an error; a bind
    without it fails on any listener, so it is tried first."""
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a closed connection's TIME_WAIT is fine
            try:
                probe.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise UsageError(f"port {port} on {host} is in use by another program") from None
                raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _bind_a_free_port(host: str) -> socket.socket:
    """A socket bound to a port of the kernel's choosing on ``host`` (``--port 0``), for the server to listen on."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host or None, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:0: {exc.strerror or exc}") from None
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:0: {exc.strerror or exc}") from None
    return sock


def _os_error(exc: OSError) -> str:
    """An OSError as a message names it: the file it was about (the data dir holds several), and the reason."""
    reason = exc.strerror or str(exc)
    return f"{exc.filename}: {reason}" if exc.filename else reason


def _one_line_errors(command: str, run: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """``run(args)``, with a bad config file or a usage problem said in one line on stderr (exit status 1)
    instead of a traceback."""
    from gateway.config_file import ConfigError

    try:
        return run(args)
    except ConfigError as error:
        print(str(error), file=sys.stderr)
    except UsageError as error:
        print(f"gatehouse {command}: {error}", file=sys.stderr)
    return 1


def serve(args: argparse.Namespace) -> int:
    return _one_line_errors("serve", _serve, args)


def _store_errors() -> tuple[type[BaseException], ...]:
    """What opening the store raises when the database cannot be used (not a Gatehouse database, unreachable,
    migrated by a newer Gatehouse: RuntimeError)."""
    import sqlite3

    errors: tuple[type[BaseException], ...] = (OSError, sqlite3.Error, RuntimeError)
    try:
        import asyncpg
    except ImportError:
        return errors
    return (*errors, asyncpg.PostgresError, asyncpg.InterfaceError)


def _database_name(settings: Settings) -> str:
    """The database as messages name it (never the URL, which may hold a password)."""
    return "the PostgreSQL database (the database URL)" if settings.database_url is not None else str(settings.database)


def _open_data_dir(settings: Settings) -> tuple[bytes, dict[str, str]]:
    """ensure_data_dir, and the database opened once (running its migrations), with OSError and a file that
    is not a Gatehouse database reported as a UsageError."""
    from gateway.app import ensure_data_dir
    from gateway.storage.opening import change_stamps, open_store

    # The secret key seals stored secrets (gateway/secretbox.py): 32 bytes, written as 64 hex digits.
    key_source = (
        "GATEHOUSE_SECRET_KEY"
        if os.environ.get("GATEHOUSE_SECRET_KEY")
        else str(Path(settings.data_dir) / "secret.key")
    )
    sealed_check: list[bool] = []
    database_name = _database_name(settings)
    store_errors = _store_errors()
    postgres = settings.database_url is not None
    cannot_open = f"cannot open {database_name}" if postgres else f"cannot open the database {database_name}"

    async def migrate() -> None:
        store = await open_store(settings)
        try:
            sealed_check.append(await _key_opens_store(store, secrets[0]))
        finally:
            await store.close()

    bad_key = UsageError(f"{key_source}: expected 64 hexadecimal digits (a 32-byte key)")
    try:
        database = Path(settings.database)
        # A new data dir: a new key. A PostgreSQL database other servers made needs theirs (checked below).
        new_database = not postgres and (not database.exists() or database.stat().st_size == 0)
        if not _key_given(key_source) and not new_database and asyncio.run(_holds_sealed_secrets(settings)):
            # A new key could open none of them, and the old one, if found later, could not be put back.
            raise UsageError(
                f"{key_source} is missing, but {database_name} holds secrets sealed with that key: put the "
                "file back (or set GATEHOUSE_SECRET_KEY to its 64 hexadecimal digits)"
            )
    except store_errors as exc:
        raise UsageError(f"{cannot_open}: {exc}") from None
    try:
        _make_data_dir(settings)
        if not os.access(settings.data_dir, os.W_OK):
            # The store writes beside its database (the WAL, the change stamps): a data dir it cannot write is
            # refused now, also when a database left by a crash would still open for reading.
            raise PermissionError(errno.EACCES, "not writable (a read-only file system, or another owner)")
        # The change stamps every worker maps (gateway/services/change_stamp.py), opened as they open them: a
        # file they could not map would stop each worker after the database opened.
        change_stamps(settings)
        _warn_if_not_private(Path(settings.data_dir))
        _check_admin_credentials_file(settings)
        secrets = ensure_data_dir(settings)
    except OSError as exc:
        raise UsageError(f"cannot use data dir {settings.data_dir}: {_os_error(exc)}") from None
    except ValueError:  # bytes.fromhex on the key; its message would quote the key
        raise bad_key from None
    if len(secrets[0]) != 32:
        raise bad_key
    if not postgres:
        try:
            # Password hashes, users' attributes and sealed secrets: readable by the owner only, like secret.key
            # and the outbox. An empty file is an empty database, and SQLite gives its -wal and -shm files the
            # same mode. A database that exists keeps the mode it has.
            os.close(os.open(settings.database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            pass
        except OSError as exc:
            raise UsageError(f"{cannot_open}: {exc.strerror or exc}") from None
    try:
        asyncio.run(migrate())
    except store_errors as exc:
        # RuntimeError: the database was migrated by a newer Gatehouse (the stores' migrations).
        raise UsageError(f"{cannot_open}: {exc}") from None
    if sealed_check != [True]:
        raise UsageError(
            f"{key_source} is not the secret key {database_name} was sealed with: its signing keys and "
            "secrets cannot be opened with it; use the key the database was made with"
        )
    return secrets


# A value sealed with the secret key when a database is first opened: a later start with another key cannot
# open it, and is refused before it serves (its sealed secrets would fail to open on every sign-in).
KEY_CHECK_META = "secret_key_check"


async def _key_opens_store(store: Store, key: bytes) -> bool:
    """Whether ``key`` is the one ``store`` was sealed with (recorded on first use)."""
    from gateway.secretbox import SecretBox, SecretBoxError

    box = SecretBox(key)
    aad = KEY_CHECK_META.encode()
    stored = await store.get_meta(KEY_CHECK_META)
    if stored is None:
        stored = await store.put_meta_if_absent(KEY_CHECK_META, box.seal(b"gatehouse", aad=aad))
    try:
        return box.open(stored, aad=aad) == b"gatehouse"
    except SecretBoxError:
        return False


def _key_given(key_source: str) -> bool:
    return key_source == "GATEHOUSE_SECRET_KEY" or Path(key_source).exists()


async def _holds_sealed_secrets(settings: Settings) -> bool:
    """Whether the database was sealed with a secret key: it has the key check, or (made before the check was)
    a user pool or the identity pools' signing keys."""
    from gateway.services.identities import KEY_SET as IDENTITY_KEY_SET
    from gateway.storage.opening import open_store

    store = await open_store(settings)
    try:
        return (
            await store.get_meta(KEY_CHECK_META) is not None
            or bool((await store.list_pools(None, 1)).items)
            or bool(await store.list_signing_keys(IDENTITY_KEY_SET))
        )
    finally:
        await store.close()


def _check_admin_credentials_file(settings: Settings) -> None:
    """Refuse an admin-credentials.json that is not what Gatehouse wrote (damaged, edited by hand): it was a
    traceback, or a wrong complaint about the secret key. Its values are never shown."""
    if settings.admin_access_key_id and settings.admin_secret_access_key:
        return  # from the environment: the file is not read
    path = Path(settings.data_dir) / "admin-credentials.json"
    if not path.exists():
        return
    try:
        creds = json.loads(path.read_bytes())
    except ValueError:
        creds = None
    fields = ("access_key_id", "secret_access_key")
    if not isinstance(creds, dict) or not all(isinstance(creds.get(name), str) and creds[name] for name in fields):
        raise UsageError(
            f"{path}: expected a JSON object with access_key_id and secret_access_key; delete the file to "
            "have new admin credentials made, or set GATEHOUSE_ADMIN_ACCESS_KEY_ID and "
            "GATEHOUSE_ADMIN_SECRET_ACCESS_KEY"
        )


def _require_database(settings: Settings) -> None:
    """Refuse a data dir (or ``server.database``) that holds no Gatehouse database: only ``serve`` makes one. A
    mistyped ``--data-dir`` given to a tool would otherwise get a new, empty store (a new secret key, new admin
    credentials), and the tool would report success on it while the server's store stayed as it was."""
    data_dir, database = Path(settings.data_dir), Path(settings.database)
    if settings.database_url is not None:
        # A PostgreSQL database is named by its URL, not found in the data dir; a data dir made for it here holds
        # no secret key, and a database whose secrets need one is refused (_open_data_dir).
        return
    try:
        if not data_dir.is_dir():
            raise UsageError(f"no data dir {data_dir}: check --data-dir (`gatehouse serve` creates it)")
        if not database.is_file() or database.stat().st_size == 0:
            raise UsageError(f"no Gatehouse database at {database}: check --data-dir (`gatehouse serve` creates it)")
    except OSError as exc:
        raise UsageError(f"cannot use data dir {data_dir}: {exc.strerror or exc}") from None


def _make_data_dir(settings: Settings) -> None:
    """Create the data dir readable by its owner only (the umask may not say so): it holds secret.key,
    admin-credentials.json and the database, which anyone who may write in it could replace."""
    Path(settings.data_dir).mkdir(mode=0o700, parents=True, exist_ok=True)


def _warn_if_not_private(data_dir: Path) -> None:
    """Log a warning when others may write in the data dir, or it belongs to another user. Not refused:
    container volumes are often made world-writable (Kubernetes' emptyDir)."""
    from gateway.logging import get_logger

    found = data_dir.stat()
    mode = stat.S_IMODE(found.st_mode)
    if mode & 0o022 or found.st_uid != os.geteuid():
        get_logger("gateway.cli").warning(
            "data_dir.not_private",
            path=str(data_dir),
            mode=oct(mode),
            owner_uid=found.st_uid,
            advice="make it owned by the user Gatehouse runs as, mode 0700: others could replace its key, "
            "admin credentials and database",
        )


def _check_front_door_hosts(settings: Settings) -> None:
    """An app Gatehouse proxies itself (``upstream``) is served on its own host, before any route of Gatehouse's:
    on the host of Gatehouse's own pages (the issuer's: --public-url, server.public_url, else the listen address)
    it would take the hosted sign-in page too, and every sign-in would be sent to sign in again, in a loop. The
    config file checks server.public_url when it names one; this is the address the server actually has."""
    from gateway.config_front_door import origin_host

    own = origin_host(settings.issuer_base)
    for app in settings.front_door:
        if app.upstream is not None and origin_host(app.url) == own:
            raise UsageError(
                f"front_door app {app.name}: its url {app.url} is the host of Gatehouse's own pages "
                f"({settings.issuer_base}): give the app a host of its own, or Gatehouse another --public-url"
            )


def _serve(args: argparse.Namespace) -> int:
    settings = _settings_from_args(args)
    if settings.port == 0 and settings.workers > 1:
        # Each worker would bind a port of its own choosing, and clients could reach only one of them.
        raise UsageError("--workers above 1 needs a fixed --port (0 would give each worker a different one)")
    _check_port_free(settings.host, settings.port)
    sock = None
    if settings.port == 0:
        # The port is chosen here, so that the log and the tokens' issuer name the one clients can reach.
        sock = _bind_a_free_port(settings.host)
        settings = replace(settings, port=int(sock.getsockname()[1]))
    _check_front_door_hosts(settings)
    if settings.workers > 1:
        try:
            _make_data_dir(settings)  # private, before the metrics folder is made in it
        except OSError as exc:
            raise UsageError(f"cannot use data dir {settings.data_dir}: {exc.strerror or exc}") from None
        # prometheus_client picks its value store at import: the multi-process one must be chosen first.
        # One folder per running server: a second `serve` on the same data dir must neither delete this one's
        # files nor have its values summed into this one's scrapes.
        metrics_dir = Path(settings.data_dir) / "prometheus" / str(os.getpid())
        try:
            _remove_stale_metrics(metrics_dir.parent)  # lists the folder: one this user may not read was a traceback
            metrics_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot use data dir {settings.data_dir}: {_os_error(exc)}") from None
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        if "prometheus_client.values" in sys.modules:
            # Reading a config file (or the ConfigError import) has imported it already: choose again, before
            # any worker makes its metrics.
            from prometheus_client import values

            values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    elif os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None) is not None and "prometheus_client.values" in sys.modules:
        # One process counts in its own memory. Left to a folder named by the environment (set for another
        # program, or left over), every API call failed (500: its counter had no folder to write in) until that
        # folder existed, and then scrapes summed in whatever files it held: another server's counts, or an
        # earlier run's. (The variable goes either way; the value store is chosen again if it was chosen.)
        from prometheus_client import values

        values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    from gateway.logging import configure_logging, get_logger

    configure_logging(json=settings.log_json, level=settings.log_level)
    log = get_logger("gateway.cli")
    _open_data_dir(settings)
    cred_note = (
        "environment" if settings.admin_access_key_id else str(Path(settings.data_dir) / "admin-credentials.json")
    )
    log.info(
        "gateway.listening",
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        admin_credentials=cred_note,
        issuer_base=settings.issuer_base,
    )
    if settings.workers <= 1:
        _run_worker(settings, sock=sock)
        return 0
    # N processes accept on one port (SO_REUSEPORT); each has its own event loop and shares the store.
    context = multiprocessing.get_context("fork")
    workers = [
        context.Process(target=_run_worker, args=(settings, os.getpid()), daemon=False) for _ in range(settings.workers)
    ]
    # The stop signals are blocked (held pending) from before the first fork until stop() below handles them.
    # Until then their action is the default one, terminate: a loaded machine can hold this process up past a
    # worker's start, and a signal sent once that worker answered killed the server (status -15). The workers
    # inherit the blocked signals, and unblock them once their event loop handles them.
    mask_before = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    for worker in workers:
        worker.start()
    # Workers not yet reaped (one leaves this list before it is joined): their pids are still theirs to signal.
    pending = list(workers)
    stopping: list[int] = []  # the signal that began the stop, once one has

    def stop(signum: int, _frame: object) -> None:
        # Once: the workers stop once and ignore further signals, and so does this process from here on. This
        # handler is replaced by "ignore" in one step, first: a Python handler runs between any two bytecodes, its
        # own included, and signals in quick succession ran it nested in itself until a RecursionError escaped the
        # wait below -- or a ProcessLookupError: it asked is_alive(), which reaps a worker that has exited, and a
        # run that interrupted one between reaping and recording it took the worker for alive and signalled a pid
        # that was gone. The interpreter's exit then put back the default action, and the next signal killed the
        # server (status -15). Only workers not yet reaped are signalled, and nothing here reaps one.
        _ignore_late_stop_signals()
        stopping.append(signum)
        for worker in list(pending):
            if worker.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.pid, signum)  # the same signal: each worker logs the one that stopped it

    for signum in STOP_SIGNALS:
        signal.signal(signum, stop)
    signal.pthread_sigmask(signal.SIG_SETMASK, mask_before)  # a signal sent meanwhile is handled now, by stop()
    # A worker that fails (its config cannot be applied, say) stops the others: a server missing a worker
    # would keep running with only part of its capacity and no sign of it but the log. So does one that stopped
    # while the server was not stopping (a signal sent to that worker alone): it exits 0, and the server went on
    # with one worker fewer and not a word in the log.
    failed = False
    while pending:
        ready = set(wait([worker.sentinel for worker in pending]))
        for worker in [worker for worker in pending if worker.sentinel in ready]:
            pending.remove(worker)
            worker.join()
            if worker.exitcode == 0 and not stopping:
                # A signal sent to every process of the server (a terminal's Ctrl-C, systemd) may reach a worker
                # before this process: its handler runs within this pause, which it cuts short.
                time.sleep(STOP_SIGNAL_GRACE_SECONDS)
            if (worker.exitcode != 0 or not stopping) and not failed:
                failed = True
                # Said once, so that the exit status 1 a supervisor sees has its cause in the log.
                log.error(
                    "worker.exited",
                    pid=worker.pid,
                    exit_code=worker.exitcode,  # negative: killed by that signal
                    action="stopping the other workers and exiting 1, for a supervisor to restart the server",
                )
                stop(signal.SIGTERM, None)
    _ignore_late_stop_signals()
    shutil.rmtree(metrics_dir, ignore_errors=True)
    return 1 if failed else 0


def _ignore_late_stop_signals() -> None:
    """Ignore the stop signals from here on, in the ``serve`` process of several workers, whose stop has begun. The
    interpreter's exit puts back the default action of any signal that has a Python handler (not of an ignored
    one), so a second signal (sent by systemd to every process of the server, or by a supervisor that sends it
    again) arriving while it exits killed it: exit status -15 instead of 0."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


def _remove_stale_metrics(folder: Path) -> None:
    """Delete the metrics folders of servers that are no longer running (named by their pid), and files of
    the earlier layout, where every server wrote straight into ``folder``."""
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        if entry.is_dir() and entry.name.isdigit():
            try:
                os.kill(int(entry.name), 0)
                continue  # that server is still running
            except ProcessLookupError:
                pass
            except OSError:
                continue  # a process we may not signal: alive
            shutil.rmtree(entry, ignore_errors=True)
        elif entry.is_file() and entry.suffix == ".db":
            entry.unlink(missing_ok=True)


def config_check(args: argparse.Namespace) -> int:
    from gateway.config_file import ConfigError, handler_problems, load_config

    try:
        config = load_config(Path(args.file))
        problems = handler_problems(config)
        if problems:
            raise ConfigError(config.source, problems)
    except ConfigError as error:
        print(str(error), file=sys.stderr)
        return 1
    print(f"{args.file}: OK ({len(config.pools)} pools)")
    return 0


# Cognito's UserPoolIdType (at most 55 characters), in ASCII.
_USER_POOL_ID = re.compile(r"[A-Za-z0-9_-]+_[0-9a-zA-Z]+")


def keys_rotate(args: argparse.Namespace) -> int:
    return _one_line_errors("keys rotate", _keys_rotate, args)


def _keys_rotate(args: argparse.Namespace) -> int:
    """Publish new signing keys at once and sign with them once every cached copy of the JWK Set without them
    has expired: ``now + jwks_max_age_seconds + key_cache_seconds`` (OpenID Connect Core §10.1.1). ``--now``
    signs with them at once (every running process of the database at once: its change stamps), for a key that
    leaked; ``--retire-old`` (only with ``--now``) also deletes the earlier keys, so that their tokens are
    refused."""
    import math
    from datetime import UTC, datetime

    from gateway.secretbox import SecretBox
    from gateway.services.container import IDENTITY_ISSUER_PATH
    from gateway.services.identities import KEY_SET as IDENTITY_KEY_SET
    from gateway.services.identities import IssuerKeyStore
    from gateway.services.tokens import SigningKeys, SigningKeyStore
    from gateway.storage.opening import change_stamps, open_store, share_changes

    if args.retire_old and not args.now:
        raise UsageError(
            "--retire-old needs --now: the earlier keys sign until the new ones take over, so their tokens "
            "must stay valid"
        )
    identity = args.pool_id == IDENTITY_ISSUER_PATH
    if not identity and not (len(args.pool_id) <= 55 and _USER_POOL_ID.fullmatch(args.pool_id)):
        # Checked before the store is read: an argument with a byte that is not UTF-8 cannot even be looked up.
        raise UsageError(
            f"expected a user pool id (region_id, e.g. us-east-1_AbC123) or {IDENTITY_ISSUER_PATH}, "
            f"got {args.pool_id!r}"
        )
    settings = _settings_from_args(args)
    from gateway.logging import configure_logging

    configure_logging(json=settings.log_json, level=settings.log_level)  # warnings to stderr, as serve's
    _require_database(settings)
    key, _ = _open_data_dir(settings)

    async def rotate() -> tuple[list[str], float, list[str]]:
        store = await open_store(settings)
        try:
            key_store: SigningKeyStore
            uses: tuple[str, ...]
            if identity:
                # The identity pools' issuer ({public_url}/identity) signs OpenID tokens with one key set.
                key_store, key_set, uses = IssuerKeyStore(store), IDENTITY_KEY_SET, ("id",)
            else:
                if await store.get_pool(args.pool_id) is None:
                    raise UsageError(f"no user pool {args.pool_id}")
                key_store, key_set, uses = store, args.pool_id, ("id", "access")
            # The same settings as `serve` reads, so the delay matches the servers' max-age and key cache.
            keys = SigningKeys(
                key_store,
                SecretBox(key),
                cache_seconds=settings.key_cache_seconds,
                jwks_max_age=settings.jwks_max_age_seconds,
            )
            # The running servers' stamps: they read the key set again at once (a retired key stops at once).
            keys.stamps = change_stamps(settings)
            await share_changes(store, keys.stamps)
            before = [k.kid for k in await key_store.list_signing_keys(key_set)]
            # Rounded up to a whole second, so that the time printed is the exact one (and never early).
            starts_at = time.time() if args.now else float(math.ceil(time.time() + keys.publish_seconds))
            kids = await keys.rotate(key_set, uses, starts_at=starts_at, retire_old=args.retire_old)
            after = {k.kid for k in await key_store.list_signing_keys(key_set)}
            return kids, starts_at, [kid for kid in before if kid not in after]
        finally:
            await store.close()

    kids, starts_at, dropped = asyncio.run(rotate())
    what = "identity pools' OpenID tokens" if identity else "ID and access tokens"
    cache = f"{settings.key_cache_seconds:g} s"
    if args.now:
        when = "signing now (running servers of this database switch at once)"
    else:
        at = datetime.fromtimestamp(starts_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        when = (
            f"published now, signing from {at} (in {settings.jwks_max_age_seconds:g} s JWKS max-age "
            f"+ {cache} key cache)"
        )
    print(f"new signing keys {', '.join(kids)} ({what}) for {args.pool_id}: {when}")
    if args.retire_old:
        print(
            f"retired at once: {', '.join(dropped) or 'none'}; tokens they signed are refused "
            "(by running servers of this database at once)"
        )
    else:
        print("earlier keys stay published until their tokens expire")
    return 0


def backup(args: argparse.Namespace) -> int:
    return _one_line_errors("backup", _backup, args)


# What a backup holds, by the names a data dir gives them: `gatehouse serve --data-dir BACKUP` serves it.
BACKUP_DATABASE = "gatehouse.db"
_BACKUP_KEPT_FILES = ("secret.key", "admin-credentials.json")


def _backup(args: argparse.Namespace) -> int:
    """A consistent copy of a SQLite store, taken while servers keep reading and writing it, with the files that
    open it: the secret key its sealed secrets need and the admin credentials. The copy is SQLite's ``VACUUM
    INTO`` (one read transaction: the database as of one moment, WAL included, and never a write lock), checked
    with ``PRAGMA integrity_check`` and the secret key's check before it is reported. Copying the database file
    alone while a server runs is not a backup: the latest writes live in its ``-wal`` file."""
    settings = _settings_from_args(args)
    if settings.database_url is not None:
        raise UsageError(
            "the store is a PostgreSQL database: back it up with PostgreSQL's own tools (pg_dump), and keep the "
            "secret key (GATEHOUSE_SECRET_KEY or secret.key) with it"
        )
    _require_database(settings)
    destination = Path(args.destination)
    try:
        if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
            raise UsageError(f"{destination} is not an empty directory: a backup never overwrites anything")
        made = not destination.exists()
        destination.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot use {destination}: {exc.strerror or exc}") from None
    try:
        return _back_up_into(settings, destination)
    except BaseException:
        # Nothing half-made is left to be taken for a backup: the files written here go, and the directory if
        # this made it.
        for name in (BACKUP_DATABASE, *_BACKUP_KEPT_FILES):
            (destination / name).unlink(missing_ok=True)
        if made:
            destination.rmdir()
        raise


def _back_up_into(settings: Settings, destination: Path) -> int:
    import sqlite3

    from gateway.secretbox import SecretBox, SecretBoxError

    copy = destination / BACKUP_DATABASE
    try:
        # Read-only; as_uri() percent-encodes a path with "?" or "#" in it, which a file: URI would cut there.
        source = sqlite3.connect(f"{Path(settings.database).resolve().as_uri()}?mode=ro", uri=True, timeout=30)
        try:
            source.execute("VACUUM INTO ?", (str(copy.resolve()),))  # absolute: never read as a file: URI
        finally:
            source.close()
        os.chmod(copy, 0o600)
        check = sqlite3.connect(copy)
        try:
            problems = [row[0] for row in check.execute("PRAGMA integrity_check")]
            sealed = check.execute("SELECT value FROM meta WHERE key = ?", (KEY_CHECK_META,)).fetchone()
            users = check.execute("SELECT count(*) FROM users").fetchone()[0]
            pools = check.execute("SELECT count(*) FROM pools").fetchone()[0]
        finally:
            check.close()
    except sqlite3.Error as exc:
        raise UsageError(f"cannot copy the database {settings.database}: {exc}") from None
    except OSError as exc:
        raise UsageError(f"cannot write {copy}: {exc.strerror or exc}") from None
    if problems != ["ok"]:
        raise UsageError(f"the copy at {copy} failed its integrity check: {'; '.join(problems[:3])}")
    copied = [BACKUP_DATABASE]
    for name in _BACKUP_KEPT_FILES:
        found = Path(settings.data_dir) / name
        if name == "secret.key" and os.environ.get("GATEHOUSE_SECRET_KEY"):
            continue  # the key the servers use is not in the data dir: the operator keeps it (printed below)
        if found.is_file():
            try:
                fd = os.open(destination / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as out:
                    out.write(found.read_bytes())
            except OSError as exc:
                raise UsageError(f"cannot copy {found}: {exc.strerror or exc}") from None
            copied.append(name)
    key_text = os.environ.get("GATEHOUSE_SECRET_KEY") or (
        (destination / "secret.key").read_text().strip() if "secret.key" in copied else ""
    )
    if sealed is not None and key_text:
        try:
            if SecretBox(bytes.fromhex(key_text)).open(str(sealed[0]), aad=KEY_CHECK_META.encode()) != b"gatehouse":
                raise SecretBoxError("not the key check")
        except (ValueError, SecretBoxError):
            raise UsageError(
                "the secret key does not open the database's secrets: the backup would be of no use"
            ) from None
    print(f"backed up {settings.database} ({pools} user pools, {users} users) to {destination}: {', '.join(copied)}")
    if "secret.key" not in copied:
        print("the secret key is not in the backup (GATEHOUSE_SECRET_KEY): keep it with the backup, or it is useless")
    print(f"restore: stop the servers, then serve with --data-dir {destination} (or copy its files into the data dir)")
    return 0


def _listening_options(args: argparse.Namespace) -> dict[str, object]:
    """``serve``'s ``--host``, ``--port``, ``--public-url`` and ``--workers`` as Settings fields, checked by the
    rules of the config file's ``server:`` section. They are checked here rather than by argparse, so that a
    wrong value is a UsageError (one line, exit status 1) like the same value in the config file."""
    overrides: dict[str, object] = {}
    if getattr(args, "host", None) is not None:
        overrides["host"] = args.host
    if getattr(args, "port", None) is not None:
        overrides["port"] = _whole_number("--port", args.port, 0, 65535)
    if getattr(args, "public_url", None) is not None:
        # The same rule as server.public_url: it becomes every token's issuer (iss).
        from gateway.config_file import issuer_url_problem

        problem = issuer_url_problem(args.public_url)
        if problem is not None:
            raise UsageError(f"--public-url: {problem}, got {args.public_url!r}")
        overrides["public_url"] = args.public_url
    if getattr(args, "workers", None) is not None:
        overrides["workers"] = _whole_number("--workers", args.workers, 1, 256)
    return overrides


def _whole_number(option: str, text: str, low: int, high: int) -> int:
    # ASCII digits only: int() also takes spaces, "_" between digits and other scripts' digits ("٣" is 3), and
    # a port or a worker count the operator did not mean to give.
    if re.fullmatch(r"-?[0-9]+", text, flags=re.ASCII) is None:
        raise UsageError(f"{option}: expected a whole number from {low} to {high}, got {text!r}")
    value = int(text)
    if not low <= value <= high:
        raise UsageError(f"{option}: expected {low} to {high}, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gatehouse", description="A self-hosted, Cognito-compatible identity gateway."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def config_option(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--config", metavar="PATH", help="the YAML config file (pools, clients, groups, users, server settings)"
        )

    def data_dir_option(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--data-dir",
            dest="data_dir",
            metavar="DIR",
            help="where the database, keys and outbox live (default: server.data_dir, else ./.gatehouse)",
        )

    # --port, --public-url and --workers are plain strings here: _listening_options checks them (one line on
    # stderr and exit status 1, as for the same values in the config file, not argparse's usage and status 2).
    serve_parser = commands.add_parser("serve", help="run the gateway")
    config_option(serve_parser)
    serve_parser.add_argument(
        "--host", metavar="HOST", help="the address to listen on (default: server.host, else 127.0.0.1)"
    )
    serve_parser.add_argument(
        "--port", metavar="PORT", help="the port to listen on, 0 for any (default: server.port, else 9229)"
    )
    data_dir_option(serve_parser)
    serve_parser.add_argument(
        "--public-url", dest="public_url", metavar="URL", help="the URL clients reach this server at (token issuer)"
    )
    serve_parser.add_argument(
        "--workers",
        metavar="N",
        help="processes sharing the port, 1 to 256 (SO_REUSEPORT; default: server.workers, else 1)",
    )
    serve_parser.set_defaults(handler=serve)

    config_parser = commands.add_parser("config", help="config file tools")
    config_commands = config_parser.add_subparsers(dest="config_command", required=True)
    check = config_commands.add_parser("check", help="validate a config file")
    check.add_argument("file", metavar="FILE", help="the YAML config file to validate (nothing is applied or served)")
    check.set_defaults(handler=config_check)

    keys_parser = commands.add_parser("keys", help="signing key tools")
    keys_commands = keys_parser.add_subparsers(dest="keys_command", required=True)
    rotate = keys_commands.add_parser(
        "rotate", help="publish new signing keys for a pool; they sign once cached JWK Sets hold them"
    )
    # Only the options that find the database and the key schedule's settings: it listens on nothing and
    # issues no token, so --host, --port and --public-url would change nothing.
    config_option(rotate)
    data_dir_option(rotate)
    rotate.add_argument(
        "pool_id", metavar="POOL_ID", help='a user pool id, or "identity" for the identity pools\' OpenID tokens'
    )
    rotate.add_argument(
        "--now",
        action="store_true",
        help="sign with the new keys at once, before relying parties' cached JWKS hold them (a leaked key)",
    )
    rotate.add_argument(
        "--retire-old",
        action="store_true",
        help="with --now: delete the earlier keys at once, so that every token they signed is refused",
    )
    rotate.set_defaults(handler=keys_rotate)

    backup_parser = commands.add_parser(
        "backup", help="copy the database, its secret key and admin credentials, while servers run"
    )
    config_option(backup_parser)
    data_dir_option(backup_parser)
    backup_parser.add_argument("destination", metavar="DIR", help="a new (or empty) directory for the copy")
    backup_parser.set_defaults(handler=backup)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
