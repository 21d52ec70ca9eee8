"""Flower's simulation runtime on an existing Ray cluster (docs/scale.md, "On a Ray cluster").

The slow test starts a real two-node cluster on this machine (``ray start`` twice, about
20 s on a small machine) and stops it, and every process it started, whatever happens.
"""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest

from medsilo.bench.ray_cluster import NodeRecordingFedAvg, nodes_used
from medsilo.bench.ray_local_cluster import free_port, local_ray_cluster, survivors
from medsilo.data.registry import build_federation
from medsilo.runtime.flower import RayClusterError, SiteResources, run_flower_simulation
from medsilo.runtime.flower.ray_cluster import (
    check_reachable,
    cluster_address,
    host_and_port,
)
from medsilo.runtime.simulation import run_federation

from ...conftest import small_config
from ...markers import FEDERATION_PROCESSES
from .test_flower_simulation import assert_records_match


def _ray_is_down() -> bool:
    import ray

    return not ray.is_initialized()


@pytest.mark.slow
@FEDERATION_PROCESSES
def test_a_federation_on_a_two_node_cluster_uses_both_nodes_and_matches_the_engine(
    tmp_path: Path,
) -> None:
    cfg = small_config(training={"rounds": 2, "local_steps": 10, "batch_size": 4, "lr": 0.01})
    fed = build_federation(cfg.data, cfg.seed)
    assert len(fed.sites) == 4
    with local_ray_cluster(head_cpus=1, worker_cpus=[1]) as cluster:
        sessions = [p.pid for p in cluster.nodes]
        assert survivors(sessions)  # the nodes' processes, found the way stop() finds them

        result = run_flower_simulation(
            cfg, fed, ray_address=cluster.address, algorithm=NodeRecordingFedAvg(tmp_path)
        )
        assert _ray_is_down()  # the driver left; the cluster is still up for the next run

        # One CPU per node and one per site actor: Flower's pool has one actor per node.
        with pytest.raises(RayClusterError, match=r"asks for 2 CPU .* nodes have .*1 CPU"):
            run_flower_simulation(
                cfg, fed, ray_address=cluster.address, site_resources=SiteResources(cpus=2)
            )
        assert _ray_is_down()
    assert survivors(sessions) == []

    used = nodes_used(tmp_path)
    assert len(used) == 2, used  # both nodes trained sites
    assert set().union(*used.values()) == set(fed.site_names)
    assert len(list(tmp_path.iterdir())) == 2 * len(fed.sites)  # every site, every round
    engine = run_federation(cfg, fed)
    for a, b in zip(result.weights, engine.weights, strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    assert_records_match(result.rounds, engine.rounds)


def test_an_unreachable_cluster_fails_fast_with_how_to_start_one() -> None:
    port = free_port()  # bound and released: nothing listens there now
    cfg = small_config(training={"rounds": 1, "local_steps": 2, "batch_size": 4, "lr": 0.01})
    with pytest.raises(RayClusterError, match=rf"no Ray cluster answers at 127.0.0.1:{port}"):
        run_flower_simulation(cfg, ray_address=f"127.0.0.1:{port}")
    assert _ray_is_down()
    with pytest.raises(RayClusterError, match=rf"ray start --head --ray-client-server-port={port}"):
        check_reachable(f"ray://127.0.0.1:{port}", timeout_s=2)


def test_addresses_are_parsed_or_refused_with_the_forms_ray_takes() -> None:
    assert host_and_port("10.0.0.5:6379") == ("10.0.0.5", 6379)
    assert host_and_port("ray://head.hospital.org:10001") == ("head.hospital.org", 10001)
    assert host_and_port("[::1]:6379") == ("::1", 6379)
    for bad in ("head", "head:", ":6379", "ray://head:port"):
        with pytest.raises(RayClusterError, match="is not auto, HOST:PORT"):
            host_and_port(bad)


def test_reachable_address_passes_the_check() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        check_reachable(f"127.0.0.1:{server.getsockname()[1]}", timeout_s=2)
    check_reachable("auto")  # Ray resolves it


def test_the_address_comes_from_the_argument_then_ray_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert cluster_address() is None
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.5:6379")
    assert cluster_address() == "10.0.0.5:6379"
    assert cluster_address("auto") == "auto"
    monkeypatch.setenv("RAY_ADDRESS", " ")
    assert cluster_address() is None


def test_site_resources_count_the_actors_a_node_holds() -> None:
    assert SiteResources().slots({"CPU": 4.0}) == 4
    assert SiteResources(cpus=2).slots({"CPU": 3.0}) == 1
    assert SiteResources(cpus=1, gpus=0.5).slots({"CPU": 8.0, "GPU": 1.0}) == 2
    assert SiteResources(cpus=1, gpus=1).slots({"CPU": 8.0}) == 0
    assert SiteResources().as_client_resources() == {"num_cpus": 1.0, "num_gpus": 0.0}
    with pytest.raises(ValueError, match="needs some CPU"):
        SiteResources(cpus=0)
    with pytest.raises(ValueError, match="cannot be negative"):
        SiteResources(gpus=-1)
