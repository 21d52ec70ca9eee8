"""The dashboard in a real browser while a federation runs (headless Debian chromium)."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from medsilo.bundled import resolve_config
from medsilo.dashboard.app import create_app
from medsilo.dashboard.state import DashboardState
from medsilo.experiment import run_experiment
from tests.dashboard.cdp import HeadlessChromium, chromium_binary

ARTIFACT = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard.png"


class _Stop(Exception):
    pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(check: Callable[[], Any], what: str, timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_dashboard_shows_rounds_and_site_health_updating_live(tmp_path: Path) -> None:
    binary = chromium_binary()
    if binary is None:
        message = "chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    base = resolve_config("heart_fedavg")
    cfg = base.model_copy(
        update={
            "training": base.training.model_copy(update={"rounds": 30}),
            "evaluation": base.evaluation.model_copy(update={"loho": False}),
        }
    )
    run_dir = tmp_path / "run"
    stop = threading.Event()

    def slow_round(_: dict[str, Any]) -> None:  # a federation that lasts long enough to watch
        if stop.is_set():
            raise _Stop
        time.sleep(0.5)

    def federate() -> None:
        with contextlib.suppress(_Stop):
            run_experiment(cfg, run_dir, on_round=slow_round)

    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(DashboardState(run_dir, seed=0)),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )
    )
    serving = threading.Thread(target=server.run, daemon=True)
    serving.start()
    _wait_for(lambda: server.started, "the dashboard server")
    federation = threading.Thread(target=federate, daemon=True)
    federation.start()
    browser = HeadlessChromium(binary, f"http://127.0.0.1:{port}/", tmp_path / "profile")
    try:
        first = _wait_for(
            lambda: browser.evaluate(
                "document.querySelectorAll('#site-health tr.site-row').length >= 1"
                " && Number(document.getElementById('round').textContent)"
            ),
            "a round and per-site health on the page",
        )
        assert first >= 1
        sites = browser.evaluate(
            "Array.from(document.querySelectorAll('#site-health tr.site-row'))"
            ".map((r) => r.dataset.site)"
        )
        assert sorted(sites) == ["cleveland", "hungarian", "switzerland", "va"]
        later = _wait_for(
            lambda: (
                (n := browser.evaluate("Number(document.getElementById('round').textContent)"))
                > first
                and n
            ),
            "the round counter to move on",
        )
        assert later > first
        health_round = browser.evaluate(
            "Number(document.querySelector('#site-health tr.site-row td:nth-child(2)').textContent)"
        )
        assert health_round > first  # per-site health updated too
        assert browser.evaluate("document.querySelectorAll('.js-plotly-plot').length") == 8
        browser.screenshot(ARTIFACT)
        assert ARTIFACT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        browser.close()
        stop.set()
        server.should_exit = True
        federation.join(timeout=30)
        serving.join(timeout=10)
