"""DP-FedAvg (McMahan et al. 2018): FedAvg wrapped in client-level DP.

Kept as its own name so ``algorithm: {name: dp_fedavg, ...}`` configs and code that builds
``DPFedAvg(...)`` run exactly as before; the mechanism itself is the layer in
:mod:`medsilo.privacy.client_dp`, which wraps any algorithm whose capabilities allow it
(``privacy.client_dp`` in a run config).
"""

from __future__ import annotations

from typing import ClassVar

from medsilo.algorithms.capabilities import Capabilities, with_client_dp
from medsilo.algorithms.fedavg import FedAvg
from medsilo.privacy.client_dp import UNCLIPPED, ClientDP, NoisePlacement, clip_update
from medsilo.privacy.config import AdaptiveClipConfig

__all__ = ["UNCLIPPED", "DPFedAvg", "clip_update"]


class DPFedAvg(ClientDP):
    name: ClassVar[str] = "dp_fedavg"
    capabilities: Capabilities = with_client_dp(FedAvg.capabilities)

    def __init__(
        self,
        clip: float = 1.0,
        noise_multiplier: float = 1.0,
        seed: int = 0,
        noise: NoisePlacement = "central",
        adaptive: AdaptiveClipConfig | None = None,
        cohort: int = 1,
    ) -> None:
        super().__init__(FedAvg(), clip, noise_multiplier, seed, noise, adaptive, cohort)
