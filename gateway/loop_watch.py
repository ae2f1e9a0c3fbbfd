"""Event-loop watch: asyncio's debug mode with a slow-callback threshold, switched on by an environment variable.

With ``GATEHOUSE_SLOW_CALLBACK_SECONDS`` set (for example ``0.05``), each worker's loop runs in debug mode and
asyncio logs ``Executing <Handle ...> took N seconds`` (logger ``asyncio``, level WARNING) for every callback
that held the loop longer than that ("Developing with asyncio: Detect blocking calls" in the Python docs). It
is how tests prove that CPU-heavy work (xmlsec1, RSA, password hashing) runs off the loop; leave it off in
production, since debug mode slows every callback down.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator

from aiohttp import web

ENV = "GATEHOUSE_SLOW_CALLBACK_SECONDS"


def threshold_from_env() -> float | None:
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return None
    value = float(raw)
    if not 0 < value < 60:
        raise ValueError(f"{ENV} must be a number of seconds between 0 and 60")
    return value


async def loop_watch_ctx(app: web.Application) -> AsyncIterator[None]:
    """A cleanup context: turn the watch on for this worker's loop when the environment asks for it."""
    threshold = threshold_from_env()
    if threshold is not None:
        loop = asyncio.get_running_loop()
        loop.set_debug(True)
        loop.slow_callback_duration = threshold
        # asyncio reports slow callbacks at WARNING; make sure its logger lets them through.
        logging.getLogger("asyncio").setLevel(logging.WARNING)
        logging.getLogger("gateway.loop_watch").warning("loop_watch.enabled slow_callback_duration=%s", threshold)
    yield
