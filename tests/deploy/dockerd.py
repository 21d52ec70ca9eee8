"""A throwaway Docker daemon for the container tests: its own data root, exec root and socket.

``with Dockerd() as docker:`` starts Debian's ``dockerd`` (``docker.io``) in a fresh folder
under /tmp (short paths: containerd's sockets live under the exec root and a Unix socket path
is limited to 108 bytes), on ``unix://FOLDER/docker.sock``, so it never touches a daemon the
machine already runs. No bridge and no iptables rules: the tests run containers with host
networking. Its data root is a tmpfs where one can be mounted. On exit it removes every
container, stops the daemon by its PID, unmounts anything left mounted under the folder
(the tmpfs too) and deletes the folder. ``.ci/run`` installs
``docker.io``, ``mmdebstrap`` and ``docker-compose``; without them, or without root, the test
is skipped, and under CI it fails instead.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import pytest

from medsilo.deploy.containers import Docker


def require_docker_tools() -> None:
    """Skip (fail under CI) unless this is root with dockerd, docker, mmdebstrap and
    docker-compose."""
    tools = ("dockerd", "docker", "mmdebstrap", "docker-compose")
    missing = [p for p in tools if shutil.which(p) is None]
    problem = None
    if os.geteuid() != 0:
        problem = "starting a Docker daemon needs root"
    elif missing:
        problem = (
            f"{', '.join(missing)} not installed "
            "(apt-get install docker.io mmdebstrap docker-compose)"
        )
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)


def _mounts_under(folder: Path) -> list[str]:
    prefix = str(folder) + "/"
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        points = [line.split()[1] for line in mounts]
    return sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True)


#: Upper bound of the data root's tmpfs (memory is used only as files are written).
TMPFS_SIZE = "12g"


class Dockerd:
    """A ``dockerd`` of our own, for the duration of a ``with`` block."""

    def __init__(self, start_timeout_s: float = 120) -> None:
        self.start_timeout_s = start_timeout_s
        self.folder = Path(tempfile.mkdtemp(prefix="medsilo-dockerd-", dir="/tmp"))
        self.docker = Docker(f"unix://{self.folder}/docker.sock")
        self.log_file = self.folder / "dockerd.log"
        self._process: subprocess.Popen[bytes] | None = None

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def __enter__(self) -> Docker:
        require_docker_tools()
        self._data_in_memory()
        command = [
            "dockerd",
            f"--data-root={self.folder}/data",
            f"--exec-root={self.folder}/exec",
            f"--host={self.docker.host}",
            f"--pidfile={self.folder}/docker.pid",
            "--storage-driver=overlay2",
            "--iptables=false",
            "--ip-masq=false",
            "--bridge=none",
        ]
        with self.log_file.open("wb") as log:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            probe = subprocess.run(self.docker.command("info"), capture_output=True, check=False)
            if probe.returncode == 0:
                return self.docker
            if self._process.poll() is not None or time.monotonic() > deadline:
                self._stop()
                raise RuntimeError(f"dockerd did not start; its log:\n{self.log()[-4000:]}")
            time.sleep(0.5)

    def _data_in_memory(self) -> None:
        """Put the data root (about 72,000 files, 2.3 GB once the images are loaded) on a
        tmpfs: deleting it from disk took about 3 minutes of the test, unmounting takes
        none. Where tmpfs cannot be mounted, the data root stays on disk."""
        data = self.folder / "data"
        data.mkdir(mode=0o700)
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0700", "medsilo-dockerd", data],
            capture_output=True,
            check=False,
        )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop()

    def _stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            ids = subprocess.run(
                self.docker.command("ps", "--all", "--quiet"), capture_output=True, text=True
            ).stdout.split()
            if ids:
                subprocess.run(self.docker.command("rm", "--force", *ids), capture_output=True)
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(60)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait(30)
        for point in _mounts_under(self.folder):  # never delete through a live mount
            subprocess.run(["umount", "--lazy", point], capture_output=True, check=False)
        if not _mounts_under(self.folder):
            shutil.rmtree(self.folder, ignore_errors=True)
