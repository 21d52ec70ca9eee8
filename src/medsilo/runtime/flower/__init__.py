"""Flower (``flwr``) adapters: the same algorithms, driven over Flower's Message API.

:func:`make_server_app` and :func:`make_client_app` wrap the coordinator and site halves of
an :class:`~medsilo.algorithms.base.Algorithm`; :func:`run_flower_simulation` runs them with
Flower's simulation runtime (a private Ray instance, or a Ray cluster: :mod:`.ray_cluster`)
and returns the same kind of result as the in-process engine.
"""

import os

# Flower reads this when it is first imported and otherwise reports usage over the network;
# hospital machines are usually air-gapped. Set FLWR_TELEMETRY_ENABLED=1 to opt back in.
os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")

from medsilo.runtime.flower.client_app import make_client_app
from medsilo.runtime.flower.ray_cluster import RayClusterError, SiteResources
from medsilo.runtime.flower.server_app import (
    FlowerRun,
    FlowerRunError,
    make_server_app,
)
from medsilo.runtime.flower.simulation import FlowerResult, run_flower_simulation

__all__ = [
    "FlowerResult",
    "FlowerRun",
    "FlowerRunError",
    "RayClusterError",
    "SiteResources",
    "make_client_app",
    "make_server_app",
    "run_flower_simulation",
]
