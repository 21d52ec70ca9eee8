"""Run a federation through Flower's simulation runtime (Ray backend), one call.

The result has the in-process engine's shape, and for the same config the same final
weights (up to float tolerance), which is how the deployed code path is checked against
the fast one. By default Flower starts a private Ray instance on this machine; with a Ray
address (``ray_address=`` or ``$RAY_ADDRESS``) the sites' actors run on an existing Ray
cluster instead (:mod:`.ray_cluster`, docs/scale.md).
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from medsilo.algorithms.base import Algorithm
from medsilo.config import BASELINES, RunConfig
from medsilo.data.base import FederatedData
from medsilo.runtime.flower.client_app import make_client_app
from medsilo.runtime.flower.ray_cluster import (
    SiteResources,
    cluster_address,
    cluster_backend_config,
    connect,
)
from medsilo.runtime.flower.server_app import FlowerRun, FlowerRunError, make_server_app
from medsilo.runtime.prepared import PreparedFederation
from medsilo.runtime.round_record import RoundCallback
from medsilo.runtime.simulation import FederationResult


@dataclass
class FlowerResult(FederationResult):
    """A :class:`FederationResult` plus where Flower's time went.

    ``wall_s`` is the whole call (what a user waits for); ``startup_s`` runs from the call
    until every site had answered its first message (Ray, worker processes, app loading);
    ``rounds_s`` is the federated loop after that; ``shutdown_s`` is what follows the last
    round (stopping the simulation runtime and Ray).
    """

    startup_s: float = 0.0
    rounds_s: float = 0.0
    shutdown_s: float = 0.0


def default_backend_config(num_sites: int, site: SiteResources | None = None) -> dict[str, Any]:
    """A private local Ray instance: one CPU per ClientApp worker (or ``site``'s request),
    as many workers as cores (at most one per site); GPUs only when a site asks for one."""
    site = site or SiteResources()
    cpus = max(1, min(os.cpu_count() or 1, num_sites))
    gpus: dict[str, int] = {} if site.gpus > 0 else {"num_gpus": 0}  # > 0: Ray detects them
    return {
        "client_resources": site.as_client_resources(),
        "init_args": {
            "num_cpus": max(cpus, math.ceil(site.cpus)),
            **gpus,
            "include_dashboard": False,
            "logging_level": logging.ERROR,
            "log_to_driver": False,
        },
    }


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


@contextmanager
def _flower_environment() -> Iterator[None]:
    """Offline, self-contained Flower: no dependency installs, a throwaway FLWR_HOME."""
    with tempfile.TemporaryDirectory(prefix="medsilo-flwr-") as home:
        wanted = {
            "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
            "FLWR_HOME": home,
            "FLWR_TELEMETRY_ENABLED": "0",
            "RAY_DEDUP_LOGS": "0",
            "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "0",
        }
        added = [k for k in wanted if k not in os.environ]
        for key in added:
            os.environ[key] = wanted[key]
        flwr_logger = logging.getLogger("flwr")
        level = flwr_logger.level
        flwr_logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            flwr_logger.setLevel(level)
            for key in added:
                os.environ.pop(key, None)


def _shutdown_ray() -> None:
    try:
        import ray
    except ImportError:  # pragma: no cover - flwr[simulation] always brings ray
        return
    if ray.is_initialized():
        ray.shutdown()


def run_flower_simulation(
    cfg: RunConfig,
    fed: FederatedData | None = None,
    *,
    prepared: PreparedFederation | None = None,
    on_round: RoundCallback | None = None,
    algorithm: Algorithm | None = None,
    backend_config: Mapping[str, Any] | None = None,
    reply_timeout_s: float | None = 3600.0,
    ray_address: str | None = None,
    site_resources: SiteResources | None = None,
) -> FlowerResult:
    """Run ``cfg`` with one Flower SuperNode per site and return the engine-shaped result.

    ``fed`` (or ``prepared.fed``) is shipped to the ClientApps; without either, each
    worker builds the federation from ``cfg.data`` itself. ``ray_address`` (``auto``,
    ``HOST:PORT`` or ``ray://HOST:PORT``; default ``$RAY_ADDRESS``) runs the sites' actors
    on that Ray cluster, each reserving ``site_resources`` (default 1 CPU, no GPU); without
    one, Flower starts a private Ray instance here. ``backend_config`` is merged over
    :func:`default_backend_config` (or, on a cluster, the per-site resources). Raises
    :class:`RayClusterError` when the cluster is unreachable or too small, and
    :class:`FlowerRunError` naming the site if any site fails or does not answer; the driver
    leaves Ray (a cluster keeps running) in every case.
    """
    if cfg.algorithm.name in BASELINES:
        raise ValueError(
            f"{cfg.algorithm.name!r} is a baseline, not a federated algorithm, so there is "
            "nothing to run over Flower; use medsilo.runtime.simulation.run_federation"
        )
    start = time.perf_counter()
    prep = prepared or PreparedFederation.build(cfg, fed)
    num_sites = len(prep.fed.sites)
    out = FlowerRun()
    server_app = make_server_app(
        cfg,
        prep,
        out,
        algorithm=algorithm,
        on_round=on_round,
        reply_timeout_s=reply_timeout_s,
    )
    client_app = make_client_app(
        cfg, fed if fed is not None else prepared.fed if prepared else None, algorithm=algorithm
    )
    site = site_resources or SiteResources()
    address = cluster_address(ray_address)
    base = (
        default_backend_config(num_sites, site) if address is None else cluster_backend_config(site)
    )
    config = _merge(base, backend_config or {})

    with _flower_environment():
        from flwr.simulation import run_simulation

        try:
            if address is not None:  # joined here; Flower then skips its own ray.init
                connect(address, site)
            run_simulation(
                server_app=server_app,
                client_app=client_app,
                num_supernodes=num_sites,
                backend_name="ray",
                backend_config=config,
            )
        finally:
            _shutdown_ray()
    end = time.perf_counter()
    if not out.completed or out.weights is None:
        raise FlowerRunError(
            f"the Flower run ended after {len(out.rounds)} of {cfg.training.rounds} rounds "
            "without the ServerApp finishing (see the Flower log above)"
        )
    assert out.ready_at is not None and out.finished_at is not None
    return FlowerResult(
        weights=out.weights,
        rounds=out.rounds,
        site_states=out.site_states,
        site_weights=out.site_weights,
        wall_s=end - start,
        startup_s=out.ready_at - start,
        rounds_s=out.finished_at - out.ready_at,
        shutdown_s=end - out.finished_at,
    )
