"""One node process driving a JavaScript client library for a test module, one request at a time.

The driver scripts in tests/e2e/js/ read one JSON request per line on stdin and write each answer as one line that
starts with ``@@``; anything else on stdout is the library's own console output, and stderr goes to a file the
failures quote."""

from __future__ import annotations

import json
import os
import pathlib
import queue
import shutil
import subprocess
import threading
from typing import Any

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


def js_modules(*packages: str) -> pathlib.Path:
    """The node_modules folder holding ``packages`` (GATEHOUSE_COGNITO_JS_DIR, else .cache/js); skips the test
    where one is not installed."""
    js_dir = pathlib.Path(os.environ.get("GATEHOUSE_COGNITO_JS_DIR") or REPO / ".cache" / "js")
    missing = [name for name in packages if not (js_dir / "node_modules" / name).is_dir()]
    if missing:
        pytest.skip(
            f"{', '.join(missing)} not installed in {js_dir}: run scripts/test.sh, or `npm install --no-save` the "
            "packages it names there and set GATEHOUSE_COGNITO_JS_DIR"
        )
    return js_dir / "node_modules"


class NodeDriver:
    """A driver script running under node with ``modules`` on its NODE_PATH; :meth:`request` sends one request
    and returns its answer."""

    def __init__(self, script: pathlib.Path, modules: pathlib.Path, stderr_path: pathlib.Path, timeout: float) -> None:
        node = shutil.which("node")
        if node is None:
            pytest.skip("node is not installed (scripts/test.sh installs it)")
        self.timeout = timeout
        self.stderr_path = stderr_path
        self._stderr = stderr_path.open("w")
        self.process = subprocess.Popen(
            [node, str(script)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env={**os.environ, "NODE_PATH": str(modules)},
        )
        self._answers: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("@@"):
                self._answers.put(line[2:])
        self._answers.put("")  # node exited

    def request(self, message: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()
        try:
            line = self._answers.get(timeout=self.timeout)
        except queue.Empty:
            raise AssertionError(f"no answer to {message.get('op')}: {self.stderr_path.read_text()}") from None
        assert line, f"node exited: {self.stderr_path.read_text()}"
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._stderr.close()
