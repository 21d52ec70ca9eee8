"""Point Flower's simulation runtime at a Ray cluster that is already running.

Flower's Ray backend calls ``ray.init(**init_args)`` only when Ray is not initialised in the
driver yet, and medsilo's local defaults (``num_cpus``, ``num_gpus``) are refused by Ray when
it joins an existing cluster; an unreachable ``HOST:PORT`` makes ``ray.init`` retry for
minutes, and a cluster with no node big enough for one site's actor leaves Flower's actor
pool empty inside a background thread. So for a cluster medsilo connects first, itself:
it checks that something answers at the address, joins with the driver's ``sys.path`` as
the workers' ``PYTHONPATH`` (what Flower's own ``ray.init`` does locally), and checks that
at least one node can host a site actor; each of these failures is a :class:`RayClusterError`
that says what to do. Flower then finds Ray initialised and builds its actor pool over every
node of the cluster (docs/scale.md, "On a Ray cluster").
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: Ray's own variable: ``ray.init()`` reads it too, so medsilo honours it the same way.
RAY_ADDRESS_ENV = "RAY_ADDRESS"
CLIENT_SCHEME = "ray://"


class RayClusterError(RuntimeError):
    """The Ray cluster named by the user cannot run this federation."""


@dataclass(frozen=True)
class SiteResources:
    """What each simulated site's Ray actor reserves on the node it runs on.

    Flower keeps one actor per free slot (per node: CPUs // ``cpus``, and with ``gpus`` > 0
    also GPUs // ``gpus``), and each actor serves the sites' messages one at a time, so a
    cluster runs as many sites at once as it has slots. Fractions share a device
    (``gpus=0.25``: four sites' actors per GPU).
    """

    cpus: float = 1.0
    gpus: float = 0.0

    def __post_init__(self) -> None:
        if not self.cpus > 0:
            raise ValueError(f"each site's actor needs some CPU (cpus > 0), not {self.cpus}")
        if self.gpus < 0:
            raise ValueError(f"gpus per site cannot be negative, got {self.gpus}")

    def as_client_resources(self) -> dict[str, float]:
        """Flower's ``backend_config["client_resources"]``."""
        return {"num_cpus": self.cpus, "num_gpus": self.gpus}

    def slots(self, node_resources: Mapping[str, float]) -> int:
        """How many site actors fit on a node with ``node_resources`` (Ray's ``Resources``)."""
        fit = int(node_resources.get("CPU", 0) // self.cpus)
        if self.gpus > 0:
            fit = min(fit, int(node_resources.get("GPU", 0) // self.gpus))
        return fit


def cluster_address(explicit: str | None = None) -> str | None:
    """The cluster to join: ``explicit``, else ``$RAY_ADDRESS``; ``None`` (or empty): none,
    Flower starts a private local Ray instance as before."""
    address = explicit if explicit is not None else os.environ.get(RAY_ADDRESS_ENV)
    address = (address or "").strip()
    return address or None


def host_and_port(address: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``ray://HOST:PORT`` split; a clear error for anything else."""
    rest = address.removeprefix(CLIENT_SCHEME)
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise RayClusterError(
            f"Ray address {address!r} is not auto, HOST:PORT (the head's GCS port, "
            "`ray start --head --port=PORT`) or ray://HOST:PORT (the head's Ray Client port, "
            "10001 by default)"
        )
    return host.strip("[]"), int(port)


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast, with a hint, when nothing listens at ``address`` (``auto`` is Ray's to
    resolve: the cluster last started on this machine, or any running one)."""
    if address == "auto":
        return
    host, port = host_and_port(address)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as err:
        start = (
            f"`ray start --head --ray-client-server-port={port}`"
            if address.startswith(CLIENT_SCHEME)
            else f"`ray start --head --port={port}`"
        )
        raise RayClusterError(
            f"no Ray cluster answers at {address} ({err}): start its head there with "
            f"{start}, or check the address, the firewall between this machine and the head, "
            f"and ${RAY_ADDRESS_ENV}"
        ) from None


def describe_nodes(nodes: Iterable[Mapping[str, Any]]) -> str:
    """One ``IP: N CPU, M GPU`` entry per live node, for error messages."""
    parts = [
        f"{n.get('NodeManagerAddress', '?')}: {n['Resources'].get('CPU', 0):g} CPU, "
        f"{n['Resources'].get('GPU', 0):g} GPU"
        for n in nodes
        if n.get("Alive", True) and n.get("Resources")
    ]
    return "; ".join(parts) or "no live node"


def connect(address: str, site: SiteResources) -> int:
    """Join the cluster at ``address`` and return how many site actors it can run at once.

    Leaves Ray initialised on success (the caller's ``ray.shutdown()`` disconnects; it does
    not stop the cluster) and shut down on failure.
    """
    check_reachable(address)
    import ray

    pythonpath = os.pathsep.join(p for p in sys.path if p)
    try:
        ray.init(
            address=address,
            runtime_env={"env_vars": {"PYTHONPATH": pythonpath}},
            logging_level=logging.ERROR,
            log_to_driver=False,
        )
    except (ConnectionError, RuntimeError, ValueError) as err:
        ray.shutdown()
        raise RayClusterError(
            f"could not join the Ray cluster at {address}: {err} (every node needs the same "
            "Python and Ray versions as this machine, docs/scale.md)"
        ) from None
    every = ray.nodes()  # type: ignore[no-untyped-call]
    nodes = [n for n in every if n.get("Alive", True) and n.get("Resources")]
    slots = sum(site.slots(n["Resources"]) for n in nodes)
    if slots == 0:
        ray.shutdown()
        raise RayClusterError(
            f"no node of the Ray cluster at {address} can host a site: each site's actor "
            f"asks for {site.cpus:g} CPU and {site.gpus:g} GPU, and the nodes have "
            f"{describe_nodes(nodes)}; add workers (`ray start --address=...`) or lower "
            "the per-site resources"
        )
    return slots


def cluster_backend_config(site: SiteResources) -> dict[str, Any]:
    """Flower's backend config on a cluster joined by :func:`connect`: only the per-site
    resources (``init_args`` would be ignored, Ray being initialised already)."""
    return {"client_resources": site.as_client_resources()}
