"""The parts of a round's record that every runtime computes the same way.

Each function returns :data:`~medsilo.runtime.round_record.RoundFields`; the round loop
closes the round into a typed :class:`~medsilo.runtime.round_record.RoundRecord`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from torch import nn

from medsilo.attacks.data import backdoor_success
from medsilo.confidential.leakage import leakage_risk, sparsity
from medsilo.config import AttackConfig, BackdoorAttack
from medsilo.ledger.digest import weights_sha256
from medsilo.models.weights import set_weights
from medsilo.network import NetworkProfile, round_seconds
from medsilo.runtime.round_record import RoundFields
from medsilo.runtime.rounds import RoundOutcome
from medsilo.training.evaluate import EvalResult, evaluate
from medsilo.training.samples import Samples
from medsilo.types import Update, Weights, global_norm
from medsilo.wire import encoded_size


def evaluate_weights(model: nn.Module, weights: Weights, data: Samples) -> EvalResult:
    set_weights(model, weights)
    return evaluate(model, data)


def evaluation_fields(
    model: nn.Module,
    pooled_weights: Weights,
    site_weights: Mapping[str, Weights],
    pooled_test: Samples,
    site_tests: Mapping[str, Samples],
) -> dict[str, Any]:
    """Pooled-test metrics of the global model and per-site metrics of each site's model."""
    per_site = {
        name: evaluate_weights(model, site_weights[name], site_tests[name]).as_dict()
        for name in site_tests
    }
    accs = [float(v["accuracy"]) for v in per_site.values() if v["n"]]
    return {
        "test": evaluate_weights(model, pooled_weights, pooled_test).as_dict(),
        "per_site": per_site,
        "mean_site_accuracy": float(np.mean(accs)) if accs else None,
    }


def attack_fields(
    model: nn.Module, weights: Weights, pooled_test: Samples, attack: AttackConfig | None
) -> dict[str, Any]:
    """Evaluation metrics of an attack: ``backdoor`` (success rate on triggered test rows)."""
    if isinstance(attack, BackdoorAttack):
        return {"backdoor": backdoor_success(model, weights, pooled_test, attack)}
    return {}


def model_hash_field(weights: Weights) -> RoundFields:
    """``global_model_sha256``: SHA-256 of the wire bytes of the global weights after the
    round (:func:`medsilo.ledger.digest.weights_sha256`); the audit ledger records it."""
    return {"global_model_sha256": weights_sha256(weights)}


def update_bytes(update: Update) -> int:
    """Bytes a site sends: its encoded delta as sent (:mod:`medsilo.compression`) or else the
    wire encoding (:mod:`medsilo.wire`) of its delta, plus the wire encoding of its extras."""
    delta = (
        len(update.encoded_delta)
        if update.encoded_delta is not None
        else encoded_size(update.delta)
    )
    return delta + sum(encoded_size(x) for x in update.extras.values())


def broadcast_bytes(weights: Weights, payload: Mapping[str, Weights]) -> int:
    """Bytes the coordinator sends each site: the global weights and the payload, encoded."""
    return encoded_size(weights) + sum(encoded_size(x) for x in payload.values())


def transmitted_update_metrics(updates: list[Update]) -> dict[str, float]:
    """Round means of leakage risk and sparsity of the updates that were aggregated (same
    for every algorithm, so the comparison is apples to apples; none when none were), and
    of CC-PGD's ``projected_share`` where the updates report it."""
    if not updates:
        return {}
    out = {
        "leakage": float(np.mean([leakage_risk(u.delta) for u in updates])),
        "sparsity": float(np.mean([sparsity(u.delta) for u in updates])),
    }
    shares = [u.metrics["projected_share"] for u in updates if "projected_share" in u.metrics]
    if shares:  # CC-PGD: the share of local steps whose l2-ball projection was active
        out["projected_share"] = float(np.mean(shares))
    return out


def _mean_train_loss(updates: list[Update]) -> float | None:
    pairs = [
        (float(u.metrics.get("train_loss", np.nan)), u.num_examples)
        for u in updates
        if np.isfinite(u.metrics.get("train_loss", np.nan)) and u.num_examples > 0
    ]
    if not pairs:
        return None
    return float(np.average([p[0] for p in pairs], weights=[p[1] for p in pairs]))


def _l2_norm(delta: Weights) -> float | None:
    if not delta:
        return None
    norm = global_norm(delta)
    return norm if np.isfinite(norm) else None  # a malformed (NaN/inf) update has none


def site_health(updates: list[Update], decoded: list[Update]) -> dict[str, dict[str, Any]]:
    """Each reporting site's raw health: local ``train_loss``, L2 ``update_norm`` of its delta
    and ``num_examples``. The norm is taken from the coordinator's decoded delta where it has
    one (compressed updates travel with an empty ``delta``), else from the delta as sent,
    else ``None``. Raw values stay on the coordinator: the dashboard releases them with
    differential-privacy noise (docs/dashboard.md)."""
    seen = {u.site: u for u in decoded}
    out: dict[str, dict[str, Any]] = {}
    for u in updates:
        loss = u.metrics.get("train_loss")
        norm = _l2_norm(seen[u.site].delta) if u.site in seen else None
        out[u.site] = {
            "train_loss": float(loss) if loss is not None and np.isfinite(loss) else None,
            "update_norm": norm if norm is not None else _l2_norm(u.delta),
            "num_examples": int(u.num_examples),
        }
    return out


def round_record(
    rnd: int,
    sites: list[str],
    updates: list[Update],
    weights: Weights,
    payload: Mapping[str, Weights],
    networks: Mapping[str, NetworkProfile] | None = None,
    outcome: RoundOutcome | None = None,
) -> RoundFields:
    """The training part of a round's record; every runtime builds it with this function.

    ``updates`` are what the sites sent and ``outcome`` what the coordinator made of them
    (:class:`~medsilo.runtime.rounds.CoordinatorSteps`): bytes count every update sent,
    the training loss and update metrics only the accepted ones. ``weights`` and ``payload``
    are what was broadcast at the start of the round; ``networks`` maps each site to its
    link (default profile where missing) for ``sim_time_s``.
    """
    down = broadcast_bytes(weights, payload)
    ups = {u.site: update_bytes(u) for u in updates}
    links = networks or {}
    accepted = outcome.accepted if outcome is not None else updates
    record: RoundFields = {
        "round": rnd,
        "sites": sites,
        "train_loss": _mean_train_loss(accepted),
        "bytes_up": sum(ups.values()),
        "bytes_up_site": ups,
        "bytes_down": len(sites) * down,
        "sim_time_s": round_seconds(
            {n: (down, ups.get(n, 0)) for n in sites},
            {n: links.get(n, NetworkProfile()) for n in sites},
        ),
        "extra": transmitted_update_metrics(accepted),
        "site_health": site_health(updates, accepted),
    }
    if outcome is not None:
        record["extra"]["rejected"] = len(outcome.rejected)
        record["rejected"] = [r.as_dict() for r in outcome.rejected]
        record["skipped"] = outcome.skipped
        if outcome.skip_reason is not None:
            record["skip_reason"] = outcome.skip_reason
        if outcome.selected is not None:
            record["robust_selected"] = outcome.selected
    return record
