"""Client-level DP as a layer around any algorithm whose capabilities allow it.

McMahan et al. (2018), "Learning differentially private recurrent language models": the
unit of privacy is a site's whole dataset. Like Flower's DP wrappers around an inner
strategy, :class:`ClientDP` leaves the inner algorithm's local training and state alone
and adds the mechanism around them:

* site: the inner :meth:`~medsilo.algorithms.base.Algorithm.local_update`, then the update
  is clipped to l2 norm ``C`` (and, with ``noise: local``, noised by the site's share);
* coordinator: the ``m`` clipped updates are averaged with equal weight, the average
  carries Gaussian noise of standard deviation ``z * C / m`` per coordinate (the sum has
  sensitivity ``C``), and that noisy mean is handed to the inner algorithm's ``aggregate``
  as one update, so the inner algorithm's server state evolves as it would.

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

Only the model delta is clipped and noised. An inner algorithm that sends anything else
derived from the site's data (SCAFFOLD's control-variate change) or whose aggregation
needs more than the mean (FedNova's step counts) declares why in
:attr:`~medsilo.algorithms.capabilities.Capabilities.client_dp_unsound` and is refused by
config validation. The ``(epsilon, delta)`` bought is computed by
:mod:`medsilo.privacy.accountant` and reported per round by
:mod:`medsilo.privacy.accounting`. Noise comes from generators seeded by ``(seed, round)``
(coordinator) or the site's round generator (sites), so a run is reproducible in every
runtime. A site does not send its update norm (that would leak it outside the mechanism).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import torch

from medsilo.algorithms.base import Algorithm, ServerState, SiteState, SiteTask
from medsilo.algorithms.capabilities import with_client_dp
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
#: Server-state keys the layer owns; an inner algorithm must not use them.
OWN_STATE = (CLIP, ROUND)

NoisePlacement = Literal["central", "local"]


def clip_update(delta: Weights, clip: float) -> tuple[Weights, float]:
    """Scale ``delta`` to l2 norm at most ``clip``; returns the clipped update and its old norm."""
    norm = global_norm(delta)
    factor = min(1.0, clip / norm) if norm > 0 else 1.0
    return [(d * factor).astype(d.dtype) for d in delta], norm


class ClientDP(Algorithm):
    """``inner`` with client-level DP (see the module docstring)."""

    name: ClassVar[str] = "client_dp"

    def __init__(
        self,
        inner: Algorithm,
        clip: float = 1.0,
        noise_multiplier: float = 1.0,
        seed: int = 0,
        noise: NoisePlacement = "central",
        adaptive: AdaptiveClipConfig | None = None,
        cohort: int = 1,
    ) -> None:
        """``clip`` is the fixed clip norm, or the initial one with ``adaptive``; ``cohort``
        is the planned number of sites per round (local noise shares, default ``sigma_b``)."""
        if inner.capabilities.client_dp_unsound is not None:
            raise ValueError(
                f"client-level DP cannot wrap algorithm {inner.name!r}: "
                + inner.capabilities.client_dp_unsound
            )
        if clip <= 0 or noise_multiplier < 0 or cohort < 1:
            raise ValueError(
                f"client-level DP needs clip > 0, noise_multiplier >= 0 and cohort >= 1, got "
                f"{clip}, {noise_multiplier}, {cohort}"
            )
        self.inner = inner
        self.capabilities = with_client_dp(inner.capabilities)
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
        state = self.inner.init_server_state(weights, layout)
        clash = sorted(set(state) & set(OWN_STATE))
        if clash:
            raise ValueError(f"{self.inner.name!r}'s server state uses the DP layer's keys {clash}")
        state[ROUND] = [np.zeros(1, dtype=np.int64)]
        if self.adaptive is not None:
            state[CLIP] = [np.array([self.clip], dtype=np.float64)]
        return state

    def broadcast(self, server_state: ServerState) -> dict[str, Weights]:
        payload = self.inner.broadcast(self.inner_state(server_state))
        if self.adaptive is not None:
            payload[CLIP] = server_state[CLIP]
        return payload

    def inner_state(self, server_state: ServerState) -> ServerState:
        """The inner algorithm's part of the server state."""
        return {k: v for k, v in server_state.items() if k not in OWN_STATE}

    def clip_of(self, server_state: ServerState) -> float:
        """The clip norm the sites use in the round that starts from ``server_state``."""
        if self.adaptive is None or CLIP not in server_state:
            return self.clip
        return float(server_state[CLIP][0][0])

    def site_weights(self, global_weights: Weights, state: SiteState, layout: Layout) -> Weights:
        return self.inner.site_weights(global_weights, state, layout)

    # --- site ---------------------------------------------------------------------------

    def local_update(
        self, task: SiteTask, global_weights: Weights, payload: dict[str, Weights]
    ) -> Update:
        clip = float(payload[CLIP][0][0]) if self.adaptive is not None else self.clip
        update = self.inner.local_update(task, global_weights, payload)
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
        noisy_mean: Weights = []
        for i, ref in enumerate(updates[0].delta):
            total = sum(u.delta[i].astype(np.float64) for u in updates) / m
            noisy = total + rng.normal(0.0, std, size=ref.shape) if std > 0 else total
            noisy_mean.append(np.asarray(noisy, dtype=ref.dtype))
        # The inner algorithm aggregates the released mean as one update of weight 1: its
        # mean of one update is that update, and its server state moves on as it would.
        released = Update(site="client-dp-mean", delta=noisy_mean, num_examples=1, num_steps=0)
        out, inner = self.inner.aggregate(
            global_weights, [released], self.inner_state(server_state), layout, num_sites
        )
        state: ServerState = {**server_state, **inner, ROUND: [np.array([rnd], dtype=np.int64)]}
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
