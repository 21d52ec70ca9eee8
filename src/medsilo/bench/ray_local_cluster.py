"""A multi-node Ray cluster made of processes on this machine, for the test and the bench.

Each node is a ``ray start --block`` in a session of its own (a head, then workers that join
it), all under one fresh temporary directory, so that ``ray.init()`` elsewhere on the
machine (which reads ``/tmp/ray/ray_current_cluster``) never finds it. It is stopped by
signalling those sessions, never with ``ray stop``, which stops every Ray process of the
user on the machine, other people's jobs' included; whatever survives SIGTERM is killed by
process id. Nodes get explicit CPU counts and a small object store, since a node by default
claims every core and 30% of the memory.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

#: Bytes of each node's object store (Ray's minimum is about 75 MB).
OBJECT_STORE_BYTES = 200_000_000
_STARTED = "Ray runtime started."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ray_cli() -> str:
    found = Path(sys.executable).with_name("ray")
    if found.exists():
        return str(found)
    ray = shutil.which("ray")
    if ray is None:
        raise FileNotFoundError("the `ray` command (flwr[simulation] installs it) is missing")
    return ray


@dataclass
class LocalRayCluster:
    """The running nodes; :meth:`add_worker` grows it, :meth:`stop` ends every process."""

    root: Path
    port: int
    object_store_bytes: int = OBJECT_STORE_BYTES
    nodes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def address(self) -> str:
        """The head's GCS address, ``HOST:PORT`` (what ``ray_address=`` takes)."""
        return f"127.0.0.1:{self.port}"

    def _start(self, name: str, args: list[str], timeout_s: float) -> None:
        log = self.root / f"{name}.log"
        env = {
            **os.environ,
            "RAY_USAGE_STATS_ENABLED": "0",
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
        }
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [
                    _ray_cli(),
                    "start",
                    *args,
                    f"--object-store-memory={self.object_store_bytes}",
                    f"--temp-dir={self.root}",
                    "--disable-usage-stats",
                    "--block",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
            )
        self.nodes.append(proc)
        deadline = time.monotonic() + timeout_s
        while _STARTED not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                why = "exited" if proc.poll() is not None else f"not up after {timeout_s:.0f} s"
                tail = log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"Ray {name} node {why}; its log ends:\n{tail}")
            time.sleep(0.2)

    def start_head(self, cpus: int, timeout_s: float = 180.0) -> None:
        self._start(
            "head",
            [
                "--head",
                f"--port={self.port}",
                f"--num-cpus={cpus}",
                "--include-dashboard=false",
                f"--ray-client-server-port={free_port()}",
                f"--dashboard-port={free_port()}",
            ],
            timeout_s,
        )

    def add_worker(self, cpus: int, timeout_s: float = 180.0) -> None:
        self._start(
            f"worker{len(self.nodes)}",
            [f"--address={self.address}", f"--num-cpus={cpus}"],
            timeout_s,
        )

    def stop(self, grace_s: float = 15.0) -> None:
        """SIGTERM each node's session (``ray start --block`` stops its node's processes),
        then SIGKILL whatever is left in those sessions."""
        sessions = [p.pid for p in self.nodes]
        for pid in reversed(sessions):
            _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for proc in self.nodes:
            with suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        while survivors(sessions) and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in survivors(sessions):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for proc in self.nodes:
            if proc.poll() is None:
                proc.wait(timeout=5)
        self.nodes.clear()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def survivors(sessions: list[int]) -> list[int]:
    """Process ids still in one of ``sessions`` (Linux ``/proc``; empty elsewhere)."""
    wanted = set(sessions)
    found = []
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else []:
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        state, sid = fields[0], int(fields[3])  # after "pid (comm)": state ppid pgrp session
        if sid in wanted and state != "Z":
            found.append(int(entry.name))
    return found


@contextmanager
def local_ray_cluster(
    head_cpus: int, worker_cpus: list[int], object_store_bytes: int = OBJECT_STORE_BYTES
) -> Iterator[LocalRayCluster]:
    """A head with ``head_cpus`` CPUs and one worker per entry of ``worker_cpus``, all
    stopped on exit (an error included, and SIGTERM, e.g. from ``timeout``, which would
    otherwise end this process without unwinding and leave the nodes running) and their
    temporary directory removed."""
    # Ray's socket paths must stay short (108 bytes on Linux): /tmp, not a deep temp dir.
    root = Path(tempfile.mkdtemp(prefix="msray-", dir="/tmp" if os.name == "posix" else None))
    cluster = LocalRayCluster(root, free_port(), object_store_bytes)
    with _sigterm_unwinds():
        try:
            cluster.start_head(head_cpus)
            for cpus in worker_cpus:
                cluster.add_worker(cpus)
            yield cluster
        finally:
            cluster.stop()
            shutil.rmtree(root, ignore_errors=True)


@contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """SIGTERM raises ``SystemExit`` meanwhile (main thread only: signals go there)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _exit(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
