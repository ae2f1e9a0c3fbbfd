"""`gatehouse serve --workers N` sets PROMETHEUS_MULTIPROC_DIR before prometheus_client is first imported
(the client picks its value store at import). Nothing the CLI imports at start may import it earlier."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_cli_leaves_prometheus_client_unimported() -> None:
    probe = "import sys, gateway.cli; print('prometheus_client' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
