"""A deployed federation whose sites reach the coordinator only through a forward proxy
(Debian's tinyproxy) that opens CONNECT tunnels to the coordinator's one port and nothing
else, and that listen on nothing but their loopback Runtime API.

One short run (two heart-disease sites, one round) folds every check in: a site behind a
proxy that allows only port 443 (Debian's default) cannot reach the coordinator, whose port
is another, and the run waits for it; started again through the proxy that opens the
coordinator's port, it joins and the run ends with the in-process engine's model.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from medsilo.config import parse_config
from medsilo.deploy.loopback import Loopback, free_port, heart_experiment, kill, wait_until
from medsilo.runtime.simulation import run_federation
from tests.deploy.forward_proxy import Tinyproxy

from ..markers import FEDERATION_PROCESSES

pytestmark = [pytest.mark.slow, FEDERATION_PROCESSES]

SITES = ["cleveland", "hungarian"]


def _listening(pid: int) -> set[tuple[str, int]]:
    """The listening TCP sockets of process ``pid`` and all its descendants."""
    try:
        root = psutil.Process(pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return set()
    found: set[tuple[str, int]] = set()
    for process in tree:
        try:
            sockets = process.net_connections(kind="inet")
        except psutil.NoSuchProcess:  # a ClientApp that just ended
            continue
        found |= {(s.laddr.ip, s.laddr.port) for s in sockets if s.status == psutil.CONN_LISTEN}
    return found


def _text(log: str) -> str:
    """A log with rich's line wrapping undone."""
    return " ".join(log.split())


def _tunnels(proxy_log: str) -> set[str]:
    """Every ``host:port`` a client asked the proxy to CONNECT to."""
    return set(re.findall(r": CONNECT (\S+) HTTP/1\.[01]$", proxy_log, flags=re.MULTILINE))


def test_sites_reach_the_coordinator_only_through_the_proxy_on_its_one_port(
    tmp_path: Path,
) -> None:
    experiment = heart_experiment(1)
    experiment["data"]["hospitals"] = SITES
    lb = Loopback(tmp_path, experiment, sites=list(SITES))
    runtime_port = free_port()
    open_proxy = Tinyproxy(tmp_path / "proxy-open", connect_ports=(lb.port,))
    https_only = Tinyproxy(tmp_path / "proxy-443", connect_ports=(443,))
    try:
        with open_proxy, https_only:
            coordinator = lb.start_coordinator()
            cleveland = lb.start_site(
                "cleveland", None, "--proxy", open_proxy.url, "--runtime-port", str(runtime_port)
            )
            blocked = lb.start_site("hungarian", None, "--proxy", https_only.url)
            told = f"the proxy {https_only.url} refused the tunnel"
            wait_until(lambda: told in _text(lb.log("site-hungarian")), 120, "the site's refusal")
            assert f"Refused CONNECT method on port {lb.port}" in https_only.log()
            assert lb.rounds() == []  # the run waits for hungarian
            kill(blocked)
            lb.start_site("hungarian", None, "--proxy", open_proxy.url)

            listening: set[tuple[str, int]] = set()
            deadline = time.monotonic() + 600
            while coordinator.poll() is None:  # the site's sockets, sampled during the run
                assert time.monotonic() < deadline, lb.all_logs()
                listening |= _listening(cleveland.pid)
                time.sleep(1.0)
            assert coordinator.returncode == 0, lb.all_logs()
            tunnels = open_proxy.log()
    finally:
        lb.stop_all()

    # Nothing at the site listens beyond its own Runtime API on the loopback interface.
    assert listening == {("127.0.0.1", runtime_port)}
    # Both sites' traffic went through the proxies, to the coordinator's one port and nowhere
    # else (no call home to Flower either).
    coordinator_port = {f"127.0.0.1:{lb.port}"}
    assert _tunnels(tunnels) == coordinator_port == _tunnels(https_only.log())
    assert f"through the proxy {open_proxy.url}" in _text(lb.log("site-cleveland"))
    records = lb.rounds()
    assert [r["round"] for r in records] == [1] and records[0]["sites"] == SITES
    with np.load(tmp_path / "run" / "final_weights.npz") as npz:
        deployed = [npz[f"arr_{i}"] for i in range(len(npz.files))]
    engine = run_federation(parse_config(lb.experiment)).weights
    for a, b in zip(deployed, engine, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
