"""Starting and stopping Flower's processes for ``medsilo coordinator start`` / ``site start``.

Shared plumbing: the environment every Flower process gets (offline: no dependency
installs, no telemetry, no update check; a private ``FLWR_HOME``), children that die with
their parent (Linux ``PR_SET_PDEATHSIG``, so a killed coordinator does not leave a SuperLink
holding the port), waiting for a TCP port, stopping a process tree politely and then firmly,
and the Flower App folder that ``flwr run`` bundles (its components are medsilo's deployed
apps, imported from the installed package on both ends, so the bundle carries only
``pyproject.toml``).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

SERVER_APP = "medsilo.runtime.flower.deployed_server:server_app"
CLIENT_APP = "medsilo.runtime.flower.deployed_site:client_app"
_PR_SET_PDEATHSIG = 1


class DeploymentError(RuntimeError):
    """A Flower process could not be started or did not come up."""


def flower_env(flwr_home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    flwr_home.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        {
            "FLWR_HOME": str(flwr_home),
            "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
            "FLWR_TELEMETRY_ENABLED": "0",
            # Flower 1.42 otherwise asks api.flower.ai:443 for updates at every process
            # start: a call home that a hospital's proxy (which opens 443) would let through.
            "FLWR_DISABLE_UPDATE_CHECK": "1",
            "PYTHONUNBUFFERED": "1",
            # Flower starts its helpers (flower-superexec, flwr-serverapp, flwr-clientapp)
            # by name: they must resolve to this installation's scripts.
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        }
    )
    env.update(extra or {})
    return env


def executable(name: str) -> str:
    """A Flower console script next to this Python (the venv's), else on ``PATH``."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise DeploymentError(f"{name} not found next to {sys.executable} or on PATH")
    return found


def die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass  # not Linux: the child may outlive a killed parent


def start(
    args: Sequence[str], env: Mapping[str, str], log_file: Path, *, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start ``args`` with output appended to ``log_file``; it is killed if we die."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    out: IO[bytes] = log_file.open("ab")
    try:
        return subprocess.Popen(
            list(args),
            env=dict(env),
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent if sys.platform.startswith("linux") else None,
        )
    finally:
        out.close()


def stop(process: subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
    """SIGTERM, wait ``grace_s``, then SIGKILL."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_for_port(
    host: str, port: int, timeout_s: float, process: subprocess.Popen[bytes], log_file: Path
) -> None:
    """Until ``host:port`` accepts a TCP connection; fail early if ``process`` exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DeploymentError(
                f"{Path(str(process.args[0])).name} exited with code {process.returncode} "  # type: ignore[index]
                f"before listening on {host}:{port}; last lines of {log_file}:\n" + tail(log_file)
            )
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise DeploymentError(f"nothing listening on {host}:{port} after {timeout_s:.0f}s")


def tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def write_app(folder: Path, run_config: Mapping[str, str | float | bool]) -> Path:
    """The Flower App folder ``flwr run`` bundles: a ``pyproject.toml`` naming medsilo's
    deployed ServerApp and ClientApp and declaring the run-config keys (``flwr run
    --run-config`` may only override declared keys)."""
    folder.mkdir(parents=True, exist_ok=True)

    def toml_value(value: str | float | bool) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int):
            return str(value)
        if isinstance(value, float):
            return repr(value)
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    config = "\n".join(f'"{k}" = {toml_value(v)}' for k, v in run_config.items())
    (folder / "pyproject.toml").write_text(
        f"""[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "medsilo-federation"
version = "1.0.0"
description = "medsilo deployed federation (apps come from the installed medsilo package)"
license = "Apache-2.0"
dependencies = []

[tool.flwr.app]
publisher = "medsilo"

[tool.flwr.app.components]
serverapp = "{SERVER_APP}"
clientapp = "{CLIENT_APP}"

[tool.flwr.app.config]
{config}
"""
    )
    return folder
