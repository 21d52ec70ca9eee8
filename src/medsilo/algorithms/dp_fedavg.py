"""DP-FedAvg (McMahan et al. 2018, "Learning differentially private recurrent language models").

Client-level DP: the unit of privacy is a site's whole dataset. Each site clips its update
to l2 norm ``C``; the coordinator averages the ``m`` clipped updates with equal weight and
the average carries Gaussian noise of standard deviation ``z * C / m`` per coordinate (the
fixed-size-cohort estimator: the sum has sensitivity ``C`` and noise ``z * C``). The
``(epsilon, delta)`` this buys is computed by :mod:`medsilo.privacy.accountant` and
reported per round by :mod:`medsilo.privacy.ledger`.

Where the noise is added (``noise``):

* ``central``: the coordinator adds ``N(0, (z C / m)^2)`` to the average. Trust
  assumption: the coordinator sees each site's clipped, *un-noised* update, so it must
  be trusted (or run inside a TEE); only the released model is private.
* ``local`` (distributed DP): each site adds ``N(0, (z C)^2 / m)`` to its clipped update
  before sending, so the sum of ``m`` updates carries the same ``N(0, (z C)^2)`` as
  central noise. Trust assumption: the coordinator may only see the *sum* (secure
  aggregation); a single update seen in the clear carries just ``1/sqrt(m)`` of the noise
  (multiplier ``z / sqrt(m)``). If validation rejects updates, fewer noise shares reach
  the sum: the released model then has less noise than accounted, so keep validation
  from rejecting honest updates (its default only rejects malformed ones).

Clipping (``adaptive``): fixed ``C``, or Andrew et al. (2021) quantile tracking
(:mod:`medsilo.privacy.adaptive_clip`): ``C`` lives in the server state, travels to the
sites in the broadcast payload, and each site reports ``b = 1[norm <= C]`` (noised like
its update under ``local`` noise) in its update metrics.

Noise comes from generators seeded by ``(seed, round)`` (coordinator) or the site's
round generator (sites), so a run is reproducible in both runtimes. A site does not send
its update norm (that would leak it outside the mechanism).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import torch

from medsilo.algorithms.base import Algorithm, ServerState, SiteTask, make_update, train_from
from medsilo.models.weights import Layout
from medsilo.privacy.adaptive_clip import (
    default_count_stddev,
    next_clip,
    update_noise_multiplier,
)
from medsilo.privacy.config import AdaptiveClipConfig
from medsilo.types import Update, Weights, global_norm

CLIP = "clip"
ROUND = "round"
#: Update-metrics key of a site's (possibly noised) indicator ``1[norm <= C]``.
UNCLIPPED = "unclipped"

NoisePlacement = Literal["central", "local"]


def clip_update(delta: Weights, clip: float) -> tuple[Weights, float]:
    """Scale ``delta`` to l2 norm at most ``clip``; returns the clipped update and its old norm."""
    norm = global_norm(delta)
    factor = min(1.0, clip / norm) if norm > 0 else 1.0
    return [(d * factor).astype(d.dtype) for d in delta], norm


class DPFedAvg(Algorithm):
    name: ClassVar[str] = "dp_fedavg"

    def __init__(
        self,
        clip: float = 1.0,
        noise_multiplier: float = 1.0,
        seed: int = 0,
        noise: NoisePlacement = "central",
        adaptive: AdaptiveClipConfig | None = None,
        cohort: int = 1,
    ) -> None:
        """``clip`` is the fixed clip norm, or the initial one with ``adaptive``; ``cohort``
        is the planned number of sites per round (local noise shares, default ``sigma_b``)."""
        if clip <= 0 or noise_multiplier < 0 or cohort < 1:
            raise ValueError(
                f"DP-FedAvg needs clip > 0, noise_multiplier >= 0 and cohort >= 1, got {clip}, "
                f"{noise_multiplier}, {cohort}"
            )
        self.clip = clip
        self.noise_multiplier = noise_multiplier
        self.seed = seed
        self.noise = noise
        self.adaptive = adaptive
        self.cohort = cohort
        self.count_stddev = 0.0
        self.update_multiplier = noise_multiplier
        if adaptive is not None and noise_multiplier > 0:
            self.count_stddev = adaptive.count_stddev or default_count_stddev(cohort)
            self.update_multiplier = update_noise_multiplier(noise_multiplier, self.count_stddev)

    # --- state --------------------------------------------------------------------------

    def init_server_state(self, weights: Weights, layout: Layout) -> ServerState:
        state: ServerState = {ROUND: [np.zeros(1, dtype=np.int64)]}
        if self.adaptive is not None:
            state[CLIP] = [np.array([self.clip], dtype=np.float64)]
        return state

    def broadcast(self, server_state: ServerState) -> dict[str, Weights]:
        return {CLIP: server_state[CLIP]} if self.adaptive is not None else {}

    def clip_of(self, server_state: ServerState) -> float:
        """The clip norm the sites use in the round that starts from ``server_state``."""
        if self.adaptive is None or CLIP not in server_state:
            return self.clip
        return float(server_state[CLIP][0][0])

    # --- site ---------------------------------------------------------------------------

    def local_update(
        self, task: SiteTask, global_weights: Weights, payload: dict[str, Weights]
    ) -> Update:
        clip = float(payload[CLIP][0][0]) if self.adaptive is not None else self.clip
        local, stats = train_from(task, global_weights)
        update = make_update(task, global_weights, local, stats)
        update.delta, norm = clip_update(update.delta, clip)
        unclipped = float(norm <= clip)
        if self.noise == "local" and self.noise_multiplier > 0:
            seed = int(torch.randint(0, 2**62, (1,), generator=task.generator))
            update.delta, unclipped = self.local_noise(
                update.delta, unclipped, clip, np.random.default_rng(seed)
            )
        if self.adaptive is not None:
            update.metrics[UNCLIPPED] = unclipped
        return update

    def local_noise(
        self, delta: Weights, unclipped: float, clip: float, rng: np.random.Generator
    ) -> tuple[Weights, float]:
        """A site's share of the noise: ``N(0, (z_delta C)^2 / m)`` per coordinate of its
        clipped update and ``N(0, sigma_b^2 / m)`` on its indicator, so that ``m`` shares
        sum to the central noise."""
        share = np.sqrt(self.cohort)
        std = self.update_multiplier * clip / share
        noisy = [(d + rng.normal(0.0, std, size=d.shape)).astype(d.dtype) for d in delta]
        return noisy, unclipped + float(rng.normal(0.0, self.count_stddev / share))

    # --- coordinator --------------------------------------------------------------------

    def aggregate(
        self,
        global_weights: Weights,
        updates: list[Update],
        server_state: ServerState,
        layout: Layout,
        num_sites: int,
    ) -> tuple[Weights, ServerState]:
        m = len(updates)
        rnd = int(server_state.get(ROUND, [np.zeros(1, np.int64)])[0][0]) + 1
        clip = self.clip_of(server_state)
        central = self.noise == "central"
        rng = np.random.default_rng([self.seed, rnd, 0xD9])
        std = self.update_multiplier * clip / m if central else 0.0
        out: Weights = []
        for i, ref in enumerate(updates[0].delta):
            total = sum(u.delta[i].astype(np.float64) for u in updates) / m
            noisy = total + rng.normal(0.0, std, size=ref.shape) if std > 0 else total
            out.append(np.asarray(noisy, dtype=ref.dtype))
        state: ServerState = {**server_state, ROUND: [np.array([rnd], dtype=np.int64)]}
        if self.adaptive is not None:
            count = sum(float(u.metrics[UNCLIPPED]) for u in updates)
            if central and self.count_stddev > 0:
                count += float(
                    np.random.default_rng([self.seed, rnd, 0xB1]).normal(0.0, self.count_stddev)
                )
            a = self.adaptive
            new = next_clip(clip, count / m, a.target_quantile, a.lr)
            state[CLIP] = [np.array([new], dtype=np.float64)]
        return out, state
