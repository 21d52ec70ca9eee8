"""A real Ethereum JSON-RPC node for tests: ganache (npm), started on a free port, stopped after.

``scripts/test.sh`` installs it into ``.tools/ganache`` (``npm install ganache@7.9.2``).
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

GANACHE = (
    Path(__file__).resolve().parents[2] / ".tools" / "ganache" / "node_modules" / ".bin" / "ganache"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(url: str) -> bool:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
    request = urllib.request.Request(
        url, body.encode(), {"content-type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return "result" in json.loads(response.read())
    except OSError:
        return False


@contextmanager
def ganache_node(log: Path) -> Iterator[str]:
    """The URL of a fresh ganache node (10 unlocked accounts), stopped on exit."""
    if not GANACHE.exists():
        pytest.fail(f"ganache is not installed at {GANACHE}: run scripts/test.sh (it installs it)")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("w") as out:
        node = subprocess.Popen(
            [str(GANACHE), "--port", str(port), "--host", "127.0.0.1", "--quiet"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while not _answers(url):
                if node.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"ganache did not start; see {log}")
                time.sleep(0.2)
            yield url
        finally:
            node.terminate()
            try:
                node.wait(timeout=10)
            except subprocess.TimeoutExpired:
                node.kill()
                node.wait()
