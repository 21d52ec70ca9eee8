"""Per-site membership inference on a run's final global model (docs/ccpgd.md §10).

Offline LiRA (:func:`medsilo.audit.lira.lira_attack`, docs/privacy-audits.md) with the
held-out side of :func:`medsilo.audit.membership.membership_split`: the pooled test set, half
non-member targets and half the attacker's pool for the shadow models. Per site, up to
``rows`` members are drawn (seeded) from the site's training rows; the non-members, up to
``rows`` held-out rows (fewer only if all sites together have fewer training rows), are the
same for every site.

The shadows do not depend on the site (they train on the attacker's pool only), so all sites'
members are scored in **one** LiRA call and its scores are split per site: the same attack as
one call per site, with one set of shadows instead of one per site. LiRA's single global
variance is then estimated over every site's targets (it is an attacker-level estimate, the
paper's advice with few shadows). Each site's ROC compares its members with the shared
non-members: advantage ``AUC - 0.5`` and the TPR at 0.1 % FPR
(:mod:`medsilo.audit.roc`; resolution-limited below 1000 non-members, flagged).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from medsilo.audit.lira import LiraSettings, lira_attack
from medsilo.audit.membership import MembershipSplit, membership_split
from medsilo.audit.roc import RocSummary, summarise_roc
from medsilo.config import RunConfig
from medsilo.runtime.prepared import PreparedFederation
from medsilo.training.tensors import TensorData, in_memory
from medsilo.types import Weights


@dataclass(frozen=True)
class SiteMembership:
    site: str
    roc: RocSummary

    @property
    def advantage(self) -> float:
        return self.roc.auc - 0.5


def site_membership(
    cfg: RunConfig,
    prep: PreparedFederation,
    final_weights: Weights,
    rows: int,
    lira: LiraSettings,
) -> dict[str, SiteMembership]:
    """LiRA against ``final_weights`` for every site's training rows."""
    if rows < 1:
        raise ValueError(f"membership rows must be >= 1, got {rows}")
    held = membership_split(prep, None, rows, cfg.seed)
    rng = np.random.default_rng([cfg.seed, 0x5173])
    parts: list[TensorData] = []
    for site in prep.fed.site_names:
        train = in_memory(prep.train[site], "membership inference")
        take = np.sort(rng.choice(len(train), size=min(rows, len(train)), replace=False))
        idx = torch.as_tensor(take, dtype=torch.long)
        parts.append(TensorData(train.x[idx], train.y[idx], train.task))
    members = TensorData(
        torch.cat([p.x for p in parts]), torch.cat([p.y for p in parts]), parts[0].task
    )
    split = MembershipSplit(members=members, non_members=held.non_members, pool=held.pool)
    scores = lira_attack(cfg, prep, final_weights, split, lira)
    out: dict[str, SiteMembership] = {}
    start = 0
    for site, part in zip(prep.fed.site_names, parts, strict=True):
        mine = scores.members[start : start + len(part)]
        start += len(part)
        out[site] = SiteMembership(site, summarise_roc(mine, scores.non_members))
    return out
