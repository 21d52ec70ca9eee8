"""The deployment as containers: the images build with no registry, and a coordinator
container and three site containers run heart-disease FedAvg to the in-process engine's
model, one site reaching the coordinator only through a forward proxy named by HTTPS_PROXY.

The test starts a Docker daemon of its own (tests/deploy/dockerd.py), builds the images with
``medsilo.deploy.containers`` (cached under ``~/.cache/medsilo-docker``; a cold cache costs a
few minutes more), provisions the kits on the host as ``medsilo provision`` does, mounts them
into the containers and runs them with host networking, the coordinator bound to 127.0.0.1.
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
from medsilo.deploy.containers import Docker, build_images
from medsilo.deploy.loopback import SITES, Loopback, heart_data, heart_experiment
from medsilo.runtime.simulation import run_federation
from tests.deploy.dockerd import Dockerd, require_docker_tools
from tests.deploy.forward_proxy import Tinyproxy

pytestmark = pytest.mark.slow

PROXIED = "va"  # the site whose container gets HTTPS_PROXY
ROUNDS = 3


def _docker(docker: Docker, *args: str) -> str:
    return docker.run(f"docker {args[0]}", *args)


def _start(docker: Docker, name: str, *args: str) -> str:
    return _docker(docker, "run", "--detach", "--name", name, "--network", "host", *args).strip()


def _logs(docker: Docker, names: list[str], tail: str = "60") -> str:
    out = []
    for name in names:
        result = subprocess.run(
            docker.command("logs", "--tail", tail, name), capture_output=True, text=True
        )
        out.append(f"===== {name}\n{result.stdout}{result.stderr}")
    return "\n".join(out)


def test_containers_run_a_federation_to_the_engines_model(tmp_path: Path) -> None:
    require_docker_tools()
    lb = Loopback(tmp_path, heart_experiment(ROUNDS))
    runs = tmp_path / "runs"
    runs.mkdir()
    names = ["medsilo-test-coordinator", *(f"medsilo-test-site-{s}" for s in SITES)]
    with Dockerd() as docker, Tinyproxy(tmp_path / "proxy", connect_ports=(lb.port,)) as proxy:
        built = time.monotonic()
        images = build_images(docker)
        print(f"images built in {time.monotonic() - built:.0f} s: {images.seconds}")
        started = time.monotonic()
        _start(
            docker,
            names[0],
            *("-v", f"{lb.coordinator_kit}:/srv/medsilo/kit"),
            *("-v", f"{lb.exp_path}:/srv/medsilo/experiment.yaml:ro"),
            *("-v", f"{runs}:/srv/medsilo/runs"),
            images.coordinator,
            *("--config", "/srv/medsilo/experiment.yaml", "--out", "/srv/medsilo/runs/run"),
            *("--round-timeout", "120", "--connect-timeout", "300"),
        )
        for site, name in zip(SITES, names[1:], strict=True):
            proxy_env = ["-e", f"HTTPS_PROXY={proxy.url}"] if site == PROXIED else []
            _start(
                docker,
                name,
                *("-v", f"{lb.site_kit(site)}:/srv/medsilo/kit"),
                *("-v", f"{heart_data()}:/srv/medsilo/data:ro"),
                *proxy_env,
                images.site,
            )
        waited = subprocess.run(
            docker.command("wait", names[0]), capture_output=True, text=True, timeout=600
        )
        print(f"federation of {ROUNDS} rounds in containers: {time.monotonic() - started:.0f} s")
        logs = _logs(docker, names)
        assert waited.stdout.strip() == "0", logs
        running = _docker(docker, "inspect", "--format", "{{.State.Running}}", *names[1:]).split()
        assert running == ["true"] * len(SITES), logs  # no site container died
        proxied_log = _logs(docker, [names[1 + SITES.index(PROXIED)]], tail="all")
        tunnels = set(re.findall(r": CONNECT (\S+) HTTP/1\.[01]$", proxy.log(), re.MULTILINE))

    run = runs / "run"
    records = lb.rounds(str(run.relative_to(tmp_path)))
    assert [r["round"] for r in records] == list(range(1, ROUNDS + 1))
    assert all(r["sites"] == SITES and not r.get("dropped") for r in records), records
    enrolment = json.loads((run / "enrolment.json").read_text())
    assert sorted(enrolment) == sorted(SITES)
    assert all(e["accepted"] and e["backend"] == "software" for e in enrolment.values())
    # The proxied site's traffic went through the proxy, to the coordinator's port only.
    assert tunnels == {f"127.0.0.1:{lb.port}"}
    assert "through the proxy" in " ".join(proxied_log.split()), proxied_log
    with np.load(run / "final_weights.npz") as npz:
        deployed = [npz[f"arr_{i}"] for i in range(len(npz.files))]
    engine = run_federation(parse_config(lb.experiment)).weights
    assert len(deployed) == len(engine)
    for a, b in zip(deployed, engine, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
