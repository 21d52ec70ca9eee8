"""The deployment as containers, driven by ``deploy/docker/compose.yaml``: the images build
with no registry, and the compose file's coordinator and three site services run
heart-disease FedAvg to the in-process engine's model, one site reaching the coordinator only
through a forward proxy named by its ``HTTPS_PROXY``.

The test starts a Docker daemon of its own (tests/deploy/dockerd.py), builds the images with
``medsilo.deploy.containers`` (cached under ``~/.cache/medsilo-docker``; a cold cache costs
several minutes more), provisions the kits on the host as ``medsilo provision`` does, and
brings the compose project up with Debian's ``docker-compose`` (v1) on that daemon: the
compose file mounts the kits, the experiment, the runs folder and the data, with host
networking, the coordinator bound to 127.0.0.1. One containerised federation, as a user of
the compose file would run it.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from medsilo.config import parse_config
from medsilo.deploy.containers import Docker, build_images, checkout_root
from medsilo.deploy.loopback import SITES, Loopback, heart_data, heart_experiment
from medsilo.runtime.simulation import run_federation
from tests.deploy.compose import Compose
from tests.deploy.dockerd import Dockerd, require_docker_tools
from tests.deploy.forward_proxy import Tinyproxy

from ..markers import FEDERATION_PROCESSES

pytestmark = [pytest.mark.slow, FEDERATION_PROCESSES]

PROXIED = "va"  # the site whose service gets a proxy (VA_HTTPS_PROXY)
ROUNDS = 3
TAG = "compose-test"  # built here and named to the compose file, so nothing else can match
RUN = "run"


def _log(docker: Docker, container: str) -> str:
    """The container's whole output (stdout and stderr: Python logs to the latter), one line."""
    result = subprocess.run(docker.command("logs", container), capture_output=True, text=True)
    return " ".join((result.stdout + result.stderr).split())


def test_compose_runs_a_federation_to_the_engines_model(tmp_path: Path) -> None:
    require_docker_tools()
    lb = Loopback(tmp_path, heart_experiment(ROUNDS))
    runs = tmp_path / "runs"
    runs.mkdir()
    with Dockerd() as docker, Tinyproxy(tmp_path / "proxy", connect_ports=(lb.port,)) as proxy:
        built = time.monotonic()
        images = build_images(docker, tag=TAG)
        print(f"images built in {time.monotonic() - built:.0f} s: {images.seconds}")
        variables = {
            "KITS": str(lb.coordinator_kit.parent),
            "EXPERIMENT": str(lb.exp_path),
            "RUNS": str(runs),
            "RUN": RUN,
            "DATA": str(heart_data()),
            "TAG": TAG,
            f"{PROXIED.upper()}_HTTPS_PROXY": proxy.url,
        }
        compose_file = checkout_root() / "deploy" / "docker" / "compose.yaml"
        with Compose(docker, compose_file, "medsilo-test", variables) as compose:
            started = time.monotonic()
            compose.run("up", "--detach")
            coordinator = compose.container("coordinator")
            sites = {site: compose.container(f"site-{site}") for site in SITES}
            waited = subprocess.run(
                docker.command("wait", coordinator), capture_output=True, text=True, timeout=900
            )
            took = time.monotonic() - started
            print(f"federation of {ROUNDS} rounds in compose's containers: {took:.0f} s")
            logs = compose.logs()
            assert waited.stdout.strip() == "0", logs
            state = docker.run(
                "docker inspect",
                *("inspect", "--format", "{{.State.Running}} {{.RestartCount}}"),
                *sites.values(),
            )
            assert state.splitlines() == ["true 0"] * len(SITES), logs  # none crashed
            site_logs = {site: _log(docker, container) for site, container in sites.items()}
            tunnels = set(re.findall(r": CONNECT (\S+) HTTP/1\.[01]$", proxy.log(), re.MULTILINE))
            stopping = time.monotonic()
        print(f"docker-compose down: {time.monotonic() - stopping:.0f} s")
        stopping = time.monotonic()
    print(f"daemon stopped and its data root deleted: {time.monotonic() - stopping:.0f} s")

    records = lb.rounds(f"runs/{RUN}")
    assert [r["round"] for r in records] == list(range(1, ROUNDS + 1))
    assert all(r["sites"] == SITES and not r.get("dropped") for r in records), records
    run = runs / RUN
    enrolment = json.loads((run / "enrolment.json").read_text())
    assert sorted(enrolment) == sorted(SITES)
    assert all(e["accepted"] and e["backend"] == "software" for e in enrolment.values())
    # The proxied site's traffic went through the proxy, to the coordinator's port only; the
    # other sites, whose variables were not set, dialled directly.
    assert tunnels == {f"127.0.0.1:{lb.port}"}
    assert "through the proxy" in site_logs[PROXIED], site_logs[PROXIED]
    assert not any("through the proxy" in site_logs[s] for s in SITES if s != PROXIED)
    with np.load(run / "final_weights.npz") as npz:
        deployed = [npz[f"arr_{i}"] for i in range(len(npz.files))]
    engine = run_federation(parse_config(lb.experiment)).weights
    assert len(deployed) == len(engine)
    for a, b in zip(deployed, engine, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
