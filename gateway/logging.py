"""Logging: structlog events as JSON lines on stderr — Gatehouse's audit trail.

Every event carries ``timestamp`` (ISO 8601, UTC), ``level``, ``event`` and ``logger`` (the name given to
``structlog.get_logger``), plus the request it was logged in: ``request_id`` and ``operation`` for the AWS wires'
calls (bound with :func:`bind_call`, the id sent as ``x-amzn-RequestId``), ``request_id`` alone for every other
endpoint (bound by :func:`with_request_id`, the id sent as ``x-amz-cognito-request-id``), and whatever was bound
with ``structlog.contextvars.bind_contextvars``, so every authentication decision made while serving a request
can be traced back to it. Lines that libraries write
through the standard library's ``logging`` (aiohttp's access log, say), and Python warnings (the ``py.warnings``
logger), go through the same processors, so stderr stays one JSON object per line.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import contextvars
import logging
import os
import select
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import IO, Any, TextIO

import orjson
import structlog
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler
from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger

from gateway.ids import RequestIds

# The batched outputs configure_logging made (see flush_logs).
_batched: list[_BatchedStderr] = []


def flush_logs() -> None:
    """Write out every line still batched: for an exit that skips ``atexit`` (``os._exit``)."""
    for out in _batched:
        out.flush()


def configure_logging(*, json: bool = True, level: str = "info") -> None:
    """Set up structlog (and the standard library's root logger) once, at start-up.

    ``json=False`` prints coloured key-value lines for a developer's terminal instead. ``level`` is a
    standard level name (``debug``, ``info``, ``warning``, ``error``, ``critical``).
    """
    level_number = logging.getLevelNamesMapping()[level.upper()]
    # Every sign-in writes an audit event, so the per-event work is kept to two processors: one that adds
    # what structlog's merge_contextvars, add_log_level and TimeStamper add, one that renders.
    shared: list[Processor] = [_stamp]
    stdlib_renderer: Processor
    logger_factory: Any
    if json:
        # Every sign-in writes an audit event: orjson renders straight to bytes for a bytes logger, the
        # cheapest path structlog offers ("Performance" in its docs); see _render_json.
        out = _BatchedStderr(sys.stderr.buffer)
        _batched.append(out)
        # One logger per name (structlog.get_logger's first argument), all on one buffer with one flush; the
        # name rides on the logger, so naming an event costs _stamp one attribute read.
        logger_factory = _named_factory(lambda name: _BatchedBytesLogger(out, name))
        stream: Any = _BatchedText(out)
        # The standard library's handlers want text.
        stdlib_renderer = structlog.processors.JSONRenderer(serializer=_orjson_text)
    else:
        # plain_traceback: with rich installed, structlog's default shows every frame's local variables (a form
        # with its password, a token being checked) for a library's record that carries an exception.
        console = structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
        stdlib_renderer = _escaping_controls(console)
        logger_factory = _named_factory(lambda name: _NamedPrintLogger(sys.stderr, name))
        stream = sys.stderr
    structlog.configure(
        # For JSON, exceptions and rendering in one processor: one call fewer per event.
        processors=[*shared, _render_json] if json else [*shared, _render_exceptions, stdlib_renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level_number),
        logger_factory=logger_factory,
        # Loggers made at import time are proxies that resolve on first use, which comes after this.
        cache_logger_on_first_use=True,
    )

    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, _add_stdlib_logger_name],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, stdlib_renderer],
        )
    )
    handler.addFilter(_client_errors_are_warnings)
    handler.addFilter(_libraries_say_little)
    # force=True replaces earlier handlers, so calling this twice does not print every line twice.
    logging.basicConfig(handlers=[handler], level=level_number, force=True)
    # Python warnings (a library's, a trigger function's, asyncio's "never awaited") as events of the py.warnings
    # logger: printed as Python prints them, they were lines of plain text among the JSON ones.
    logging.captureWarnings(True)


class _BatchedStderr:
    """stderr, written once per event-loop iteration rather than once per line.

    Under load one iteration of the loop serves many requests, each with its audit event, and stderr is
    unbuffered: a ``write`` system call per event is about a tenth of a token exchange's time. Here lines
    collect in a buffer, and one callback, scheduled with ``call_soon`` by the first line of an iteration,
    writes them all at the start of the next, so a line is on stderr within one iteration of being logged.
    structlog's events and the standard library's records share the buffer, so their order is kept. Outside a
    running loop (start-up, worker threads) each line is written at once; what is still buffered when the
    process exits is written by ``atexit``.
    """

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file
        self._lock = threading.Lock()
        self._pending = bytearray()
        self._flush_scheduled = False
        atexit.register(self.flush)
        # A worker forked with lines still buffered must not write its parent's lines a second time.
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._pending = bytearray()
        self._flush_scheduled = False

    def write_bytes(self, data: bytes) -> None:
        with self._lock:
            self._pending += data
            if self._flush_scheduled:
                return
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
            else:
                self._flush_scheduled = True
        if loop is None:
            self.flush()
        else:
            loop.call_soon(self.flush)

    def flush(self) -> None:
        with self._lock:
            self._flush_scheduled = False
            data, self._pending = bytes(self._pending), bytearray()
        # stderr closed or gone (a pipe whose reader left): nothing more can be said there.
        with contextlib.suppress(OSError, ValueError):
            for chunk in _whole_lines(data, ATOMIC_WRITE_BYTES):
                view = memoryview(chunk)
                while view:
                    written = self._file.write(view)
                    if not written:
                        break
                    view = view[written:]
                self._file.flush()  # one write(2) of the chunk: the buffer is empty, the chunk fits in it


# The most a write(2) to a pipe may carry and still never be interleaved with another process's writes (POSIX
# PIPE_BUF; 4096 on Linux). The workers of `serve --workers N` share one stderr, which a container runtime or
# systemd reads through a pipe: a longer write, when the reader fell behind, was split where the pipe filled
# and another worker's lines landed inside one of its lines, leaving two lines that are not JSON.
ATOMIC_WRITE_BYTES = select.PIPE_BUF


def _whole_lines(data: bytes, limit: int) -> Iterator[bytes]:
    """``data`` in pieces of whole lines of at most ``limit`` bytes each (a longer line is a piece alone)."""
    start = 0
    while len(data) - start > limit:
        cut = data.rfind(b"\n", start, start + limit) + 1
        if cut <= start:  # one line longer than the limit
            cut = data.find(b"\n", start + limit) + 1 or len(data)
        yield data[start:cut]
        start = cut
    if start < len(data):
        yield data[start:]


def _named_factory(make: Any) -> Any:
    """A structlog logger factory that gives each logger name (``structlog.get_logger("gateway.x")``) one
    logger carrying that name, which :func:`_stamp` writes as the event's ``logger``."""
    made: dict[str | None, Any] = {}

    def factory(*args: Any) -> Any:
        name = args[0] if args and isinstance(args[0], str) else None
        logger = made.get(name)
        if logger is None:
            logger = made[name] = make(name)
        return logger

    return factory


class _NamedPrintLogger(structlog.PrintLogger):
    """structlog's PrintLogger with the name it was asked for (console output)."""

    def __init__(self, file: TextIO, name: str | None) -> None:
        super().__init__(file)
        self.name = name


class _BatchedBytesLogger:
    """structlog's BytesLogger on a :class:`_BatchedStderr`, named (``name``) as ``structlog.get_logger`` was."""

    __slots__ = ("_out", "name")

    def __init__(self, out: _BatchedStderr, name: str | None = None) -> None:
        self._out = out
        self.name = name

    def msg(self, message: bytes) -> None:
        # The renderer (_render_json) ends the line already.
        self._out.write_bytes(message)

    log = debug = info = warn = warning = err = error = critical = exception = fatal = failure = msg


class _BatchedText:
    """The text stream the standard library's handler writes to, on the same :class:`_BatchedStderr`."""

    def __init__(self, out: _BatchedStderr) -> None:
        self._out = out

    def write(self, text: str) -> int:
        self._out.write_bytes(text.encode("utf-8", "backslashreplace"))
        return len(text)

    def flush(self) -> None:
        """Nothing: the shared buffer is written within one iteration of the loop (or at once outside it)."""


def _client_errors_are_warnings(record: logging.LogRecord) -> bool:
    """aiohttp logs a request it could not parse (a line too long, a bad header: its 400 answers) at error
    level with a traceback, and so a body it could not read (corrupt gzip, a client gone before its
    Content-Length) when it drains the rest after Gatehouse answered. That is the client's fault, not the
    server's: logged as a warning, without the traceback, so error level keeps meaning that Gatehouse itself
    failed."""
    error = record.exc_info[1] if record.name == "aiohttp.server" and record.exc_info else None
    if isinstance(error, HttpProcessingError | web.RequestPayloadError):
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        if isinstance(error, HttpProcessingError):
            reason = _parse_error_reason(error)
        else:  # its text is the underlying error's; the classes say what it was without any client bytes
            reason = f"{type(error).__name__} ({type(error.__cause__).__name__})"
        # The client's bytes may hold "%": the message is formatted here, once, with no arguments left.
        record.msg, record.args = f"{record.getMessage()}: {reason}", ()
        record.exc_info = None
    return True


def _parse_error_reason(error: HttpProcessingError) -> str:
    """What was wrong with a request aiohttp could not parse, without the bytes it quotes: its message echoes
    the offending line (``Invalid header value char: b'Authorization: Bearer <token>\\x01'``, a request line
    with its query string), and a client's credentials must not reach the log through a stray byte (OWASP
    Logging Cheat Sheet, "Data to exclude"). The status, the error's class and its first words are kept."""
    words = error.message.partition("\n")[0].partition(":")[0].strip()
    if not words or any(quote in words for quote in "'\"") or len(words) > 80:
        words = ""  # e.g. "Bad status line '<the line>'": nothing of it without the line itself
    named = f"{error.code} {type(error).__name__}"
    return f"{named} ({words})" if words else named


# What the libraries Gatehouse runs on may log, whatever level Gatehouse's own events are logged at. OWASP's
# Logging Cheat Sheet ("Data to exclude": passwords, tokens, keys, sensitive personal data) and Cognito's
# CloudTrail records, which hold no password, code, token or assertion, are the bar: at debug level aiosqlite
# logs every statement with its parameters (password hashes, sealed secrets), and pysaml2 logs a SAML Response
# whole (a bearer assertion), the subject's NameID at info, and an assertion it could not verify at error level
# with a traceback. Gatehouse's own events say what those libraries decided (``federation.refused`` with its
# reason, ``federation.signed_in``), so pysaml2 keeps only its critical records.
_LIBRARY_FLOOR = logging.INFO
_LIBRARY_FLOORS = {"saml2": logging.CRITICAL}
_OWN_LOGGERS = ("gateway", "providers")


def _libraries_say_little(record: logging.LogRecord) -> bool:
    """Drop a library's record below its floor (:data:`_LIBRARY_FLOORS`, else info); Gatehouse's own
    standard-library records (``gateway.*``, ``providers.*``) keep the configured level."""
    top = record.name.partition(".")[0]
    if top in _OWN_LOGGERS:
        return True
    return record.levelno >= _LIBRARY_FLOORS.get(top, _LIBRARY_FLOOR)


# Control characters as escapes for the console: C0 (newlines included), DEL, C1 and the Unicode line and
# paragraph separators. Callers choose some logged values (a Logins map's provider name, a RoleArn, a username):
# raw, a newline would forge a line and an escape sequence would drive the operator's terminal (OWASP Logging
# Cheat Sheet, "Event collection": sanitise against log injection). JSON lines: orjson escapes C0, _one_line
# the Unicode line separators.
_CONTROLS = {
    code: {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(chr(code), f"\\x{code:02x}")
    for code in (*range(0x20), *range(0x7F, 0xA0))
} | {0x2028: "\\u2028", 0x2029: "\\u2029"}
# Rendered on lines of their own by the console renderer, where their newlines are the layout.
_MULTILINE_KEYS = frozenset({"exception", "stack"})


def _escape_controls(value: object) -> object:
    return value.translate(_CONTROLS) if isinstance(value, str) else value


def _escaping_controls(renderer: Processor) -> Processor:
    """``renderer``, given the event with the control characters of its text values escaped (console only)."""

    def render(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> Any:
        escaped = {
            key: value if key in _MULTILINE_KEYS else _escape_controls(value) for key, value in event_dict.items()
        }
        return renderer(logger, method_name, escaped)

    return render


# structlog's own registry of the context variables bind_contextvars made (name -> ContextVar); when a
# structlog release no longer has it, its merge_contextvars does the same work, only slower.
_STRUCTLOG_VARS: dict[str, contextvars.ContextVar[Any]] | None = getattr(structlog.contextvars, "_CONTEXT_VARS", None)
_PREFIX_LENGTH = len(getattr(structlog.contextvars, "STRUCTLOG_KEY_PREFIX", "structlog_"))


# The API call or HTTP request being served (request id, operation): one variable set once per request, where
# binding two structlog context variables and unbinding them again cost several times more on every request.
# The operation is the AWS wires' (GetUser, AssumeRole); HTTP endpoints (/oauth2/*, the hosted UI) bind "".
_CALL: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar("gatehouse_call", default=None)


def bind_call(request_id: str, operation: str) -> contextvars.Token[tuple[str, str] | None]:
    """Name the API call (or, with ``operation=""``, the HTTP request) every event logged from here on belongs
    to, until :func:`unbind_call`."""
    return _CALL.set((request_id, operation))


def unbind_call(token: contextvars.Token[tuple[str, str] | None]) -> None:
    _CALL.reset(token)


def _merge_contextvars(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """structlog's ``merge_contextvars``, reading only structlog's own variables (and the call bound with
    :func:`bind_call`): its version copies the whole context (aiohttp's variables included) on every event, which
    cost more than rendering the line."""
    call = _CALL.get()
    if call is not None:
        event_dict.setdefault("request_id", call[0])
        if call[1]:
            event_dict.setdefault("operation", call[1])
    if _STRUCTLOG_VARS is None:
        return structlog.contextvars.merge_contextvars(logger, method_name, event_dict)
    for name, var in list(_STRUCTLOG_VARS.items()):
        value = var.get(Ellipsis)
        if value is not Ellipsis:
            event_dict.setdefault(name[_PREFIX_LENGTH:], value)
    return event_dict


_second: list[Any] = [-1, ""]


def _iso_utc_timestamp(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """``timestamp`` as structlog's ``TimeStamper(fmt="iso", utc=True)`` writes it (``2024-05-01T12:00:00.123456Z``),
    the date and time formatted once per second."""
    now = time.time()
    second = int(now)
    if _second[0] != second:
        _second[0], _second[1] = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
    event_dict["timestamp"] = f"{_second[1]}.{min(int((now - second) * 1_000_000), 999_999):06d}Z"
    return event_dict


# structlog's add_log_level names: "warn" is the standard library's alias of warning, exception() is error().
_LEVEL_NAMES = {"warn": "warning", "exception": "error"}


def _stamp(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """The logger's name (``logger``), the request's bound context, ``level`` and ``timestamp``, in that order
    (as the four structlog processors it stands for would add them: add_logger_name, merge_contextvars,
    add_log_level, TimeStamper). The name is the one given to ``structlog.get_logger``, kept on the logger
    the factory made for it (:func:`_named_factory`); a standard-library record's is added after this."""
    name = getattr(logger, "name", None)
    if name is not None:
        event_dict.setdefault("logger", name)
    _merge_contextvars(logger, method_name, event_dict)
    event_dict["level"] = _LEVEL_NAMES.get(method_name, method_name)
    return _iso_utc_timestamp(logger, method_name, event_dict)


_stack_info = structlog.processors.StackInfoRenderer()


def _render_exceptions(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """structlog's StackInfoRenderer and format_exc_info, run only for an event that asks for them."""
    if "stack_info" in event_dict:
        event_dict = _stack_info(logger, method_name, event_dict)
    if "exc_info" in event_dict:
        event_dict = structlog.processors.format_exc_info(logger, method_name, event_dict)
    return event_dict


def _render_json(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> bytes:
    """:func:`_render_exceptions`, then the JSON line as bytes with its newline (for :class:`_BatchedBytesLogger`),
    in one processor: structlog's JSONRenderer with orjson writes the same line, through more calls."""
    if "stack_info" in event_dict or "exc_info" in event_dict:
        event_dict = _render_exceptions(logger, method_name, event_dict)
    # default=str: a value orjson cannot encode (an exception, a path) is written as its text, as json's would.
    return _one_line(orjson.dumps(event_dict, default=str, option=orjson.OPT_APPEND_NEWLINE))


def _orjson_text(value: Any, **_: Any) -> str:
    return _one_line(orjson.dumps(value, default=str)).decode()


# U+0085 (NEL), U+2028 and U+2029 in UTF-8. orjson escapes only C0 controls, but Python's str.splitlines() and
# other readers end a line at these too, so a caller's value holding one (a RoleArn may) would cut an event in
# two. In JSON text they can only stand inside strings, where their escapes mean the same (RFC 8259, section 7).
_NEL, _LS, _PS = "\u0085".encode(), "\u2028".encode(), "\u2029".encode()


def _one_line(line: bytes) -> bytes:
    """``line`` with the Unicode line separators escaped. Most lines are ASCII, which one fast test tells."""
    if line.isascii() or (_NEL not in line and _LS not in line and _PS not in line):
        return line
    return line.replace(_NEL, b"\\u0085").replace(_LS, b"\\u2028").replace(_PS, b"\\u2029")


def _add_stdlib_logger_name(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """Name a standard-library record's logger under the same key (``logger``) structlog's events use."""
    record = event_dict.get("_record")
    if isinstance(record, logging.LogRecord):
        event_dict["logger"] = record.name
    return event_dict


def get_logger(name: str) -> FilteringBoundLogger:
    """A logger whose events carry ``logger=name`` (as ``structlog.get_logger(name)``'s do); lazy, so it may be
    created at import time."""
    logger: FilteringBoundLogger = structlog.get_logger(name)
    return logger


# --- one request id per HTTP request outside the AWS wires -------------------------------------------------

# The response header that names the request id of an /oauth2/*, hosted UI, federation or /gatehouse/verify
# request, as Cognito's user pool domain names its own requests (the AWS wires send x-amzn-RequestId).
REQUEST_ID_HEADER = "x-amz-cognito-request-id"
_request_ids = RequestIds()
_log = structlog.get_logger("gateway.http")


Recover = Callable[[web.Request, Exception], "web.StreamResponse | None"]


def with_request_id(handler: Handler, recover: Recover | None = None) -> Handler:
    """``handler``, binding one request id to every event logged while it serves a request (as the AWS wires
    bind theirs with :func:`bind_call`) and echoing it in :data:`REQUEST_ID_HEADER`, so a support engineer can
    find a sign-in's events from the id the browser saw.

    ``recover``: turns an exception the handler raised into the response a person should see (the hosted
    pages' error page), or None to let it through. An exception nobody recovers from becomes a plain 500
    logged with the id (aiohttp would log it after the id is unbound); an HTTPException (a redirect, a 404)
    goes on to aiohttp carrying the id.

    Wrapped route by route, not as a middleware: aiohttp then runs the middleware for every request, the AWS
    wires' ``POST /`` included (which bind their own id, with the operation), and the middleware machinery
    alone cost about 1 us a request, a hosted page GET about 43 us in all. Here a request sets one context
    variable, once, in one coroutine (the hosted pages' error handling is ``recover``, not a second layer)."""

    async def bound_to_a_request_id(request: web.Request) -> web.StreamResponse:
        request_id = _request_ids.next()
        bound = bind_call(request_id, "")
        try:
            response = await handler(request)
        except Exception as exc:
            recovered = recover(request, exc) if recover is not None else None
            if recovered is None:
                if isinstance(exc, web.HTTPException):  # redirects and errors raised as responses
                    exc.headers[REQUEST_ID_HEADER] = request_id
                    raise
                _log.exception("http.unhandled", method=request.method, path=request.path)
                recovered = web.Response(status=500, text="500 Internal Server Error")
            response = recovered
        finally:
            unbind_call(bound)
        if not response.prepared:  # a streamed response has sent its headers already
            response.headers[REQUEST_ID_HEADER] = request_id
        return response

    bound_to_a_request_id.__name__ = bound_to_a_request_id.__qualname__ = getattr(handler, "__name__", "handler")
    return bound_to_a_request_id


def binds_request_id(handler: object) -> bool:
    """Whether ``handler`` was wrapped by :func:`with_request_id` (for tests that every route is)."""
    return getattr(handler, "__code__", None) is _WRAPPER_CODE


async def _nothing(request: web.Request) -> web.StreamResponse:  # pragma: no cover - never called
    return web.Response()


_WRAPPER_CODE = with_request_id(_nothing).__code__
