"""Debian's tinyproxy as a throwaway hospital forward proxy on 127.0.0.1, for the proxy tests.

Each :class:`Tinyproxy` writes its own configuration file in its folder, listens on a free
loopback port, admits clients from 127.0.0.1 only and opens CONNECT tunnels only to
``connect_ports`` (tinyproxy allows every port when none is listed, so at least one is
required; Debian's packaged default is 443 and 563). Its log, at ``Info`` level, names every
tunnel asked for (``CONNECT host:port``) and every refusal (``Refused CONNECT method on port
N``). ``.ci/run`` installs it (``tinyproxy-bin``); without it the tests are skipped, or fail
under CI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from types import TracebackType

import pytest

from medsilo.deploy import processes as proc


def tinyproxy_binary() -> str:
    """The installed tinyproxy; skips the test without one (fails it under CI)."""
    found = shutil.which("tinyproxy") or next(
        (p for p in ("/usr/bin/tinyproxy", "/usr/sbin/tinyproxy") if os.path.exists(p)), None
    )
    if found is None:
        message = "tinyproxy is not installed (apt-get install tinyproxy-bin)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


class Tinyproxy:
    """``with Tinyproxy(folder, connect_ports) as proxy:`` runs one until the block ends."""

    def __init__(self, folder: Path, connect_ports: tuple[int, ...]) -> None:
        if not connect_ports:
            raise ValueError("list the ports CONNECT may reach (none would allow every port)")
        self.folder = folder
        self.connect_ports = connect_ports
        self.port = proc.free_port()
        self.log_file = folder / "tinyproxy.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def __enter__(self) -> Tinyproxy:
        binary = tinyproxy_binary()
        self.folder.mkdir(parents=True, exist_ok=True)
        config = self.folder / "tinyproxy.conf"
        config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "Listen 127.0.0.1",
                    "Allow 127.0.0.1",
                    "Timeout 600",
                    "MaxClients 50",
                    f'LogFile "{self.log_file}"',
                    "LogLevel Info",
                    *(f"ConnectPort {port}" for port in self.connect_ports),
                ]
            )
            + "\n"
        )
        # -d: stay in the foreground, so stopping this process stops the proxy.
        stdout = self.folder / "tinyproxy.out"
        self._process = proc.start([binary, "-d", "-c", str(config)], os.environ, stdout)
        try:
            proc.wait_for_port("127.0.0.1", self.port, 30, self._process, stdout)
        except BaseException:
            proc.stop(self._process)
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._process is not None:
            proc.stop(self._process, grace_s=5)
