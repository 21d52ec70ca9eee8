"""Flower process plumbing: the App folder Flower's own loader accepts (with run-config
types kept), the environment Flower's children need, and waiting for a port that fails
fast with the log when the process dies."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from flwr.cli.config_utils import load_and_validate
from flwr.common.config import get_fused_config_from_dir

from medsilo.deploy import processes as proc

RUN_CONFIG: dict[str, str | float | bool] = {
    "experiment": '/data/exp "quoted"\\dir/exp.yaml',
    "run-dir": "/runs/one",
    "resume": True,
    "insecure": False,
    "round-timeout": 600.0,
    "poll-interval": 0.1,
    "min-sites": 2,
}


def test_app_is_a_valid_flower_app_with_medsilos_components(tmp_path: Path) -> None:
    folder = proc.write_app(tmp_path / "app", RUN_CONFIG)
    # check_module=True: Flower imports both components, as `flwr run` would.
    config, _warnings = load_and_validate(folder / "pyproject.toml", check_module=True)
    app = config["tool"]["flwr"]["app"]
    assert app["components"] == {
        "serverapp": "medsilo.runtime.flower.deployed_server:server_app",
        "clientapp": "medsilo.runtime.flower.deployed_site:client_app",
    }
    assert app["publisher"] == "medsilo"


def test_run_config_keeps_values_and_types(tmp_path: Path) -> None:
    folder = proc.write_app(tmp_path / "app", RUN_CONFIG)
    # What the ServerApp's context.run_config starts from (no overrides).
    fused = get_fused_config_from_dir(folder, {})
    assert fused == RUN_CONFIG
    for key, value in RUN_CONFIG.items():
        assert type(fused[key]) is type(value), key


def test_flower_env_finds_this_installation_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.delenv("FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION", raising=False)
    home = tmp_path / "flwr-home"
    env = proc.flower_env(home, {"EXTRA": "1"})
    assert env["PATH"].split(os.pathsep) == [str(Path(sys.executable).parent), "/usr/bin", "/bin"]
    assert env["FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION"] == "1"
    assert env["FLWR_TELEMETRY_ENABLED"] == "0" and env["FLWR_DISABLE_UPDATE_CHECK"] == "1"
    assert env["FLWR_HOME"] == str(home) and home.is_dir()
    assert env["EXTRA"] == "1"
    assert "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION" not in os.environ  # a copy


def test_wait_for_port_fails_fast_with_the_log_tail(tmp_path: Path) -> None:
    log = tmp_path / "superlink.log"
    script = "import sys; print('line one'); print('bind failed: address in use'); sys.exit(3)"
    process = proc.start([sys.executable, "-c", script], dict(os.environ), log)
    port = proc.free_port()
    with pytest.raises(proc.DeploymentError) as err:
        proc.wait_for_port("127.0.0.1", port, 30.0, process, log)
    message = str(err.value)
    assert "code 3" in message and f"127.0.0.1:{port}" in message
    assert "bind failed: address in use" in message


def test_wait_for_port_returns_once_listening(tmp_path: Path) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        try:
            proc.wait_for_port("127.0.0.1", port, 5.0, process, tmp_path / "log")
        finally:
            proc.stop(process, grace_s=5.0)
    assert process.returncode is not None


def test_tail_of_a_missing_log(tmp_path: Path) -> None:
    assert proc.tail(tmp_path / "nope.log") == "(no log)"
    log = tmp_path / "x.log"
    log.write_text("".join(f"{i}\n" for i in range(50)))
    assert proc.tail(log, lines=3) == "47\n48\n49"
