"""Offline likelihood-ratio membership inference (LiRA; Carlini, Chien, Nasr, Song, Terzis and
Tramer 2022, "Membership inference attacks from first principles").

The attacker trains ``N`` shadow models of the target's architecture with the run's local
training hyper-parameters (optimiser, learning rate, batch size, weight decay) for a small
budget (``epochs`` over its data), each on a random half of its own data pool (held-out
rows disjoint from every target, :func:`medsilo.audit.membership.membership_split`). None
of the shadows saw any target, so all ``N`` are "OUT" models for every target ``(x, y)``.

Per target, the logit-scaled confidence of the true label

    phi(x, y) = log(p_y / (1 - p_y))  =  z_y - logsumexp_{j != y} z_j   (one logit: +-z)

is close to Gaussian across models. Fit ``N(mu_out(x), sigma_out^2)`` on the shadows and
score the target model's ``phi_obs`` by the one-sided test (the offline variant: members
have *higher* confidence than OUT models predict)

    score(x) = -log P[Z > phi_obs],   Z ~ N(mu_out(x), sigma_out^2)

``sigma_out`` is one global value (the pooled standard deviation of ``phi`` around each
example's OUT mean): with few shadows (< 64), the paper recommends a fixed variance over
noisy per-example estimates. ``per_example_variance=True`` uses per-example standard
deviations instead (floored at 1e-3 of the global one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import norm  # type: ignore[import-untyped]

from medsilo.audit.membership import AttackScores, MembershipSplit, logits_of
from medsilo.audit.roc import summarise_roc
from medsilo.config import RunConfig
from medsilo.models.builder import build_model
from medsilo.models.weights import get_weights
from medsilo.runtime.prepared import PreparedFederation
from medsilo.training.local import LocalTraining, train_local
from medsilo.training.tensors import TensorData
from medsilo.types import Weights


@dataclass(frozen=True)
class LiraSettings:
    shadows: int = 8
    epochs: float = 3.0
    per_example_variance: bool = False

    def __post_init__(self) -> None:
        if self.shadows < 2:
            raise ValueError("LiRA needs at least 2 shadow models to estimate a variance")
        if self.epochs <= 0:
            raise ValueError("shadow training epochs must be > 0")


def true_label_confidence(logits: torch.Tensor, data: TensorData) -> np.ndarray:
    """``phi = log(p_y / (1 - p_y))``, computed from logits without rounding to 0 or 1."""
    z = logits.double()
    if data.binary:
        sign = 2.0 * data.y.double() - 1.0
        return (sign * z.squeeze(1)).numpy()
    y = data.y.long()
    true = z.gather(1, y[:, None]).squeeze(1)
    others = z.scatter(1, y[:, None], -torch.inf)
    return (true - torch.logsumexp(others, dim=1)).numpy()


def train_shadow(
    cfg: RunConfig, prep: PreparedFederation, data: TensorData, epochs: float, seed: int
) -> Weights:
    """A fresh model of the run's architecture trained centrally on ``data``."""
    t = cfg.training
    fed = prep.fed
    model = build_model(cfg.model, fed.input_shape, fed.num_classes, task=fed.task, seed=seed)
    local = LocalTraining(
        batch_size=t.batch_size,
        lr=t.lr,
        local_epochs=epochs,
        optimizer=t.optimizer,
        momentum=t.momentum,
        weight_decay=t.weight_decay,
    )
    train_local(model, data, local, torch.Generator().manual_seed(seed))
    return get_weights(model)


def lira_attack(
    cfg: RunConfig,
    prep: PreparedFederation,
    target_weights: Weights,
    split: MembershipSplit,
    settings: LiraSettings,
    on_shadow: Callable[[int], None] | None = None,
) -> AttackScores:
    if len(split.pool) < 2:
        raise ValueError("LiRA needs an attacker pool of at least 2 rows")
    model = prep.model
    targets = [split.members, split.non_members]
    observed = [true_label_confidence(logits_of(model, target_weights, t), t) for t in targets]
    shadow_phi: list[list[np.ndarray]] = [[], []]
    rng = np.random.default_rng([cfg.seed, 0x11FA])
    for k in range(settings.shadows):
        half = np.sort(rng.choice(len(split.pool), size=len(split.pool) // 2, replace=False))
        idx = torch.as_tensor(half, dtype=torch.long)
        data = TensorData(split.pool.x[idx], split.pool.y[idx], split.pool.task)
        weights = train_shadow(cfg, prep, data, settings.epochs, seed=cfg.seed * 1000 + 17 + k)
        for i, t in enumerate(targets):
            shadow_phi[i].append(true_label_confidence(logits_of(model, weights, t), t))
        if on_shadow is not None:
            on_shadow(k + 1)
    out = [np.stack(s) for s in shadow_phi]  # each (shadows, n)
    mus = [o.mean(axis=0) for o in out]
    residuals = np.concatenate([(o - m).ravel() for o, m in zip(out, mus, strict=True)])
    sigma_global = float(np.sqrt(np.mean(residuals**2) * len(out[0]) / (len(out[0]) - 1)))
    sigma_global = max(sigma_global, 1e-6)
    scores = []
    for o, mu, phi in zip(out, mus, observed, strict=True):
        sigma: np.ndarray | float = sigma_global
        if settings.per_example_variance:
            sigma = np.maximum(o.std(axis=0, ddof=1), 1e-3 * sigma_global)
        scores.append(-norm.logsf(phi, loc=mu, scale=sigma))
    members, non_members = scores
    return AttackScores(members, non_members, summarise_roc(members, non_members))
