"""Membership inference on a run's final global model: who was in the training data?

Sets (:func:`membership_split`), all seeded:

* members: training rows of the target site (``site``) or of every site, i.e. rows the
  federation trained on;
* held-out rows: the pooled test set, never trained on. A random half are the non-member
  targets; the other half is the attacker's own data pool for shadow models
  (:mod:`medsilo.audit.lira`), so no target ever appears in a shadow's training set;
* both target sets are cut to the same size ``n = min(#members, #non-member targets,
  max_per_side)`` (balanced, so AUC is not skewed by prevalence).

Loss-threshold attack (Yeom, Giacomelli, Fredrikson and Jha 2018): models fit their training
rows better, so ``score(x, y) = -loss(f(x), y)`` (per-example cross-entropy, or BCE for one
logit) and a row is called a member when the score exceeds a threshold; sweeping it gives the
ROC curve (:mod:`medsilo.audit.roc`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from medsilo.audit.roc import RocSummary, summarise_roc
from medsilo.models.weights import set_weights
from medsilo.runtime.prepared import PreparedFederation
from medsilo.training.tensors import TensorData, in_memory
from medsilo.types import Weights


@dataclass(frozen=True)
class MembershipSplit:
    members: TensorData
    non_members: TensorData
    pool: TensorData


@dataclass(frozen=True)
class AttackScores:
    """Per-example attack scores (higher = more likely a member) and their ROC summary."""

    members: np.ndarray
    non_members: np.ndarray
    roc: RocSummary


def _take(data: TensorData, idx: np.ndarray) -> TensorData:
    t = torch.as_tensor(idx, dtype=torch.long)
    return TensorData(data.x[t], data.y[t], data.task)


def _concat(parts: list[TensorData]) -> TensorData:
    return TensorData(
        torch.cat([p.x for p in parts]), torch.cat([p.y for p in parts]), parts[0].task
    )


def membership_split(
    prep: PreparedFederation, site: str | None, max_per_side: int, seed: int
) -> MembershipSplit:
    if site is not None and site not in prep.train:
        raise ValueError(f"no site named {site!r}; sites are {list(prep.train)}")
    purpose = "membership inference"
    train = {name: in_memory(data, purpose) for name, data in prep.train.items()}
    members = train[site] if site is not None else _concat(list(train.values()))
    held = in_memory(prep.pooled_test, purpose)
    if len(held) < 2:
        raise ValueError("membership inference needs at least 2 held-out (test) rows")
    rng = np.random.default_rng([seed, 0x313A])
    order = rng.permutation(len(held))
    half = len(held) // 2
    non_member_rows, pool_rows = order[:half], order[half:]
    n = min(len(members), len(non_member_rows), max_per_side)
    member_rows = rng.choice(len(members), size=n, replace=False)
    return MembershipSplit(
        members=_take(members, np.sort(member_rows)),
        non_members=_take(held, np.sort(non_member_rows[:n])),
        pool=_take(held, np.sort(pool_rows)),
    )


@torch.no_grad()
def logits_of(
    model: nn.Module, weights: Weights, data: TensorData, chunk: int = 1024
) -> torch.Tensor:
    """Logits of ``model`` with ``weights`` on ``data``, in evaluation mode."""
    set_weights(model, weights)
    model.eval()
    return torch.cat([model(data.x[i : i + chunk]) for i in range(0, len(data), chunk)])


def per_example_loss(logits: torch.Tensor, data: TensorData) -> np.ndarray:
    if data.binary:
        loss = F.binary_cross_entropy_with_logits(logits.squeeze(1), data.y, reduction="none")
    else:
        loss = F.cross_entropy(logits, data.y, reduction="none")
    return loss.double().numpy()


def loss_threshold_attack(
    model: nn.Module, weights: Weights, split: MembershipSplit
) -> AttackScores:
    members = -per_example_loss(logits_of(model, weights, split.members), split.members)
    non_members = -per_example_loss(logits_of(model, weights, split.non_members), split.non_members)
    return AttackScores(members, non_members, summarise_roc(members, non_members))
