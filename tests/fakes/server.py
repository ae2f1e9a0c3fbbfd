"""A real aiohttp app on a loopback port, run on its own event loop in a thread.

Fakes of upstream IdPs are real HTTP servers (as aiohttp's own ``examples/fake_server.py``): the code under test
keeps its real HTTP client and only its configured URLs point here. The thread makes one fake usable from
synchronous tests (boto3, a Gatehouse subprocess) and asynchronous ones alike.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from aiohttp import web

from tests.support import free_port


class ThreadedApp:
    """Serve ``app`` on 127.0.0.1 until :meth:`stop`."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    def build(self) -> web.Application:
        raise NotImplementedError

    def start(self) -> ThreadedApp:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.build(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
