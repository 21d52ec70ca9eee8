"""A real deployment on 127.0.0.1: kits, a coordinator and sites as separate processes.

Used by the end-to-end tests (tests/deploy/test_loopback.py) and ``medsilo bench
deployment``. Every process is the real command (``python -m medsilo coordinator start`` /
``site start``) in its own session, so a caller can ``kill -9`` one whole process tree (a
coordinator with its SuperLink and ServerApp, or a site's SuperNode) as a crash would.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from medsilo.data.paths import data_root
from medsilo.deploy.kits import provision
from medsilo.deploy.spec import parse_federation
from medsilo.runtime.round_record import RoundRecord, read_rounds

SITES = ["cleveland", "hungarian", "va"]


def heart_data() -> Path:
    return data_root() / "heart_disease"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def heart_experiment(rounds: int = 4, **training: Any) -> dict[str, Any]:
    """A short heart-disease FedAvg over the three sites, standardised federatedly."""
    return {
        "name": "heart-loopback",
        "seed": 0,
        "data": {
            "dataset": "heart_disease",
            "partition": "natural",
            "hospitals": SITES,
            "standardize": "federated",
        },
        "model": {"name": "logistic"},
        "evaluation": {"every": 1},
        "algorithm": {"name": "fedavg"},
        "training": {
            "rounds": rounds,
            "local_steps": 20,
            "batch_size": 4,
            "lr": 0.01,
            "optimizer": "sgd",
        }
        | training,
    }


@dataclass
class Loopback:
    root: Path
    experiment: dict[str, Any]
    sites: list[str] = field(default_factory=lambda: list(SITES))
    council: dict[str, Any] | None = None  # FEDERATION.yaml's council section, if any
    #: each site's ``--data``; None: sites read what the config names (e.g. data.omop)
    site_data: Path | None = field(default_factory=heart_data)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.port = free_port()
        spec = parse_federation(
            {
                "federation": "loopback",
                "coordinator": {
                    "address": "127.0.0.1",
                    "bind_host": "127.0.0.1",
                    "port": self.port,
                },
                "sites": [{"name": s} for s in self.sites],
                "enrolment": {"allowed_backends": ["software"]},
            }
            | ({"council": self.council} if self.council is not None else {})
        )
        provision(spec, self.root / "kits")
        self.exp_path = self.root / "experiment.yaml"
        self.exp_path.write_text(yaml.safe_dump(self.experiment))

    @property
    def coordinator_kit(self) -> Path:
        return self.root / "kits" / "coordinator"

    def site_kit(self, site: str) -> Path:
        return self.root / "kits" / "sites" / site

    def _start(self, args: list[str], log: Path) -> subprocess.Popen[bytes]:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with log.open("ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "medsilo", *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # its own process group: kill -9 takes the whole tree
            )
        self.processes.append(process)
        return process

    def start_coordinator(
        self, run: str = "run", *extra: str, round_timeout: float = 60
    ) -> subprocess.Popen[bytes]:
        """``medsilo coordinator start`` into ``root/run``; ``extra`` CLI arguments."""
        return self._start(
            [
                "coordinator",
                "start",
                str(self.coordinator_kit),
                "--config",
                str(self.exp_path),
                "--out",
                str(self.root / run),
                "--round-timeout",
                str(round_timeout),
                "--connect-timeout",
                "90",
                *extra,
            ],
            self.root / f"coordinator-{run}.log",
        )

    def start_site(
        self, site: str, kit: Path | None = None, *extra: str
    ) -> subprocess.Popen[bytes]:
        """``medsilo site start`` with ``site``'s kit (or ``kit``) on :attr:`site_data`."""
        kit = kit or self.site_kit(site)
        data = [] if self.site_data is None else ["--data", str(self.site_data)]
        return self._start(
            ["site", "start", str(kit), *data, *extra],
            self.root / f"site-{kit.name}.log",
        )

    def log(self, name: str) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def rounds(self, run: str = "run") -> list[RoundRecord]:
        """The run's records so far (a line being written is not one yet)."""
        path = self.root / run / "rounds.jsonl"
        return read_rounds(path) if path.exists() else []

    def wait(self, process: subprocess.Popen[bytes], timeout_s: float) -> int:
        try:
            return process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            kill(process)
            raise TimeoutError(
                f"{process.args!r} did not finish in {timeout_s}s; logs:\n" + self.all_logs()
            ) from None

    def all_logs(self) -> str:
        return "\n".join(
            f"===== {p.name}\n{p.read_text(errors='replace')[-4000:]}"
            for p in sorted(self.root.glob("*.log"))
        )

    def stop_all(self) -> None:
        for process in self.processes:
            kill(process)


def kill(process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    """Signal the process's whole group (it was started in its own session)."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        process.wait(30)


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
