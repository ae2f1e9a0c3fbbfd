"""Headless Chromium for the browser tests: Debian's ``chromium`` package driven by Playwright.

Playwright's own browser downloads are never used; ``executable_path`` points at the system Chromium. The flags
keep Chromium off the network it would otherwise call home to (this machine's network is closed) and let it run
as root in a container.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def chromium_path() -> str:
    path = os.environ.get("GATEHOUSE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(path):
        raise RuntimeError(f"Chromium not found at {path}; scripts/test.sh installs Debian's chromium package")
    return path


@contextmanager
def launch_chromium(extra_args: list[str] | None = None) -> Iterator[Any]:
    """A Playwright ``Browser`` running the system Chromium headless, with ``extra_args`` after the usual flags."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=[*CHROMIUM_FLAGS, *(extra_args or [])]
        )
        try:
            yield browser
        finally:
            browser.close()
