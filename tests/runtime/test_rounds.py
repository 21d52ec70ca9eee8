"""The round steps in the engine: rejection, skipping, attacks, robust rules, compression."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import pytest

from medsilo.algorithms.base import Algorithm, SiteTask
from medsilo.algorithms.ccpgd import CCPGD
from medsilo.algorithms.ditto import Ditto
from medsilo.algorithms.dp_fedavg import DPFedAvg
from medsilo.algorithms.fedavg import FedAvg
from medsilo.algorithms.fedbn import FedBN
from medsilo.algorithms.fednova import FedNova
from medsilo.algorithms.fedprox import FedProx
from medsilo.algorithms.scaffold import Scaffold
from medsilo.config import ConfigError
from medsilo.data.base import FederatedData
from medsilo.runtime.prepared import PreparedFederation
from medsilo.runtime.simulation import run_federation
from medsilo.types import Update, Weights

from ..conftest import small_config, synthetic_federation

TRAIN = {"rounds": 3, "local_steps": 10, "batch_size": 8, "lr": 0.1}


def corrupt(update: Update, kind: str) -> None:
    d = update.delta
    if kind == "nan":
        d[0].flat[0] = np.nan
    elif kind == "inf":
        d[-1].flat[0] = np.inf
    elif kind == "shape":
        d[0] = d[0].reshape(-1, 1).copy()
    elif kind == "dtype":
        d[0] = d[0].astype(np.float64)
    elif kind == "count":
        d.pop()
    elif kind == "norm":
        update.delta = [x * np.float32(1e6) for x in d]
    else:
        raise ValueError(kind)


class Malformed(FedAvg):
    """FedAvg where site ``bad`` sends a corrupted update (in ``rounds``, default all)."""

    name: ClassVar[str] = "fedavg"

    def __init__(self, kind: str, bad: str = "h2", rounds: set[int] | None = None) -> None:
        self.kind = kind
        self.bad = bad
        self.rounds = rounds

    def local_update(self, task: SiteTask, global_weights: Weights, payload: Any) -> Update:
        update = super().local_update(task, global_weights, payload)
        if task.site == self.bad and (self.rounds is None or task.round in self.rounds):
            corrupt(update, self.kind)
        return update


def without(fed: FederatedData, site: str) -> FederatedData:
    rest = [s for s in fed.sites if s.name != site]
    return FederatedData(fed.name, rest, fed.test, fed.num_classes, fed.task)


REASONS = {
    "nan": "contains NaN",
    "inf": "contains Inf",
    "shape": "has shape (5, 1), expected (1, 5)",
    "dtype": "has dtype float64, expected float32",
    "count": "delta has 1 tensors, expected 2",
    "norm": "more than 100x the round's median norm",
}


@pytest.mark.parametrize("kind", list(REASONS))
def test_a_malformed_update_is_rejected_and_leaves_no_trace(kind: str) -> None:
    fed = synthetic_federation(num_sites=3)
    cfg = small_config(training=TRAIN)
    res = run_federation(cfg, fed, algorithm=Malformed(kind))
    for rec in res.rounds:
        assert rec["skipped"] is False
        assert rec["extra"]["rejected"] == 1
        assert [r["site"] for r in rec["rejected"]] == ["h2"]
        assert REASONS[kind] in rec["rejected"][0]["reason"]
    # The global model is exactly what the two honest sites alone produce.
    alone = run_federation(cfg, without(fed, "h2"))
    for a, b in zip(res.weights, alone.weights, strict=True):
        np.testing.assert_array_equal(a, b)


def test_rejections_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    cfg = small_config(training=TRAIN | {"rounds": 1})
    with caplog.at_level("WARNING", logger="medsilo.runtime.rounds"):
        run_federation(cfg, synthetic_federation(), algorithm=Malformed("nan"))
    assert "round 1: rejected the update of site 'h2'" in caplog.text
    assert "contains NaN" in caplog.text


def test_the_round_is_skipped_when_too_few_updates_remain() -> None:
    fed = synthetic_federation(num_sites=3)
    cfg = small_config(
        training=TRAIN | {"min_sites": 3}, server_optimizer={"name": "avgm", "lr": 1.0}
    )
    res = run_federation(cfg, fed, algorithm=Malformed("nan"))
    prep = PreparedFederation.build(cfg, fed)
    for a, b in zip(res.weights, prep.initial_weights, strict=True):
        np.testing.assert_array_equal(a, b)
    for rec in res.rounds:
        assert rec["skipped"] is True
        assert rec["skip_reason"] == "2 of 3 updates accepted, the round needs 3"
        assert rec["train_loss"] is not None and "test" in rec
    assert len({r["test"]["loss"] for r in res.rounds}) == 1


def test_a_skipped_round_does_not_stop_the_run() -> None:
    fed = synthetic_federation(num_sites=3)
    cfg = small_config(training=TRAIN | {"min_sites": 3})
    res = run_federation(cfg, fed, algorithm=Malformed("inf", rounds={2}))
    assert [r["skipped"] for r in res.rounds] == [False, True, False]
    assert [r["extra"]["rejected"] for r in res.rounds] == [0, 1, 0]


def test_records_of_a_clean_run_carry_empty_rejections() -> None:
    res = run_federation(small_config(), synthetic_federation())
    rec = res.rounds[0]
    assert rec["rejected"] == [] and rec["skipped"] is False and rec["extra"]["rejected"] == 0
    assert sum(rec["bytes_up_site"].values()) == rec["bytes_up"]
    assert "robust_selected" not in rec


# --- attacks and robust aggregation --------------------------------------------------------

SIX = {"rounds": 8, "local_steps": 10, "batch_size": 8, "lr": 0.2}
FLIP = {"kind": "sign_flip", "sites": ["h1", "h4"], "scale": 10.0}


def final_accuracy(**overrides: Any) -> float:
    fed = synthetic_federation(num_sites=6, seed=3)
    res = run_federation(small_config(training=SIX, **overrides), fed)
    return float(res.rounds[-1]["test"]["accuracy"])


def test_sign_flippers_break_fedavg_and_robust_rules_recover() -> None:
    clean = final_accuracy()
    attacked = final_accuracy(attack=FLIP)
    trimmed = final_accuracy(attack=FLIP, robust={"rule": "trimmed_mean", "trim": 0.34})
    krum = final_accuracy(attack=FLIP, robust={"rule": "multi_krum", "f": 1, "m": 4})
    median = final_accuracy(attack=FLIP, robust={"rule": "median"})
    assert clean > 0.8
    assert attacked < clean - 0.25
    for robust_acc in (trimmed, krum, median):
        assert robust_acc >= clean - 0.05


def test_multi_krum_records_the_honest_sites_it_kept() -> None:
    fed = synthetic_federation(num_sites=6, seed=3)
    cfg = small_config(training=SIX, attack=FLIP, robust={"rule": "multi_krum", "f": 1, "m": 4})
    res = run_federation(cfg, fed)
    for rec in res.rounds:
        assert rec["robust_selected"] == ["h0", "h2", "h3", "h5"]


def test_krum_and_norm_bound_compose_with_scaffold() -> None:
    fed = synthetic_federation(num_sites=5)
    for robust in ({"rule": "krum", "f": 1}, {"rule": "norm_bound", "max_norm": 0.5}):
        cfg = small_config(algorithm={"name": "scaffold"}, training=TRAIN, robust=robust)
        res = run_federation(cfg, fed)
        assert res.rounds[-1]["test"]["loss"] < res.rounds[0]["test"]["loss"]


def test_norm_bound_caps_the_global_step() -> None:
    fed = synthetic_federation()
    cfg = small_config(
        training=TRAIN | {"rounds": 1}, robust={"rule": "norm_bound", "max_norm": 1e-3}
    )
    res = run_federation(cfg, fed)
    init = PreparedFederation.build(cfg, fed).initial_weights
    step = math.sqrt(
        sum(float(np.sum((a - b) ** 2)) for a, b in zip(res.weights, init, strict=True))
    )
    assert step <= 1e-3 * (1 + 1e-5)


def test_gaussian_and_scaled_attackers_change_what_is_sent() -> None:
    fed = synthetic_federation()
    clean = run_federation(small_config(), fed)
    for attack in (
        {"kind": "gaussian", "sites": ["h0"], "std": 5.0},
        {"kind": "scale", "sites": ["h0"]},
    ):
        res = run_federation(small_config(attack=attack), fed)
        assert not np.allclose(res.weights[0], clean.weights[0])
        again = run_federation(small_config(attack=attack), fed)
        np.testing.assert_array_equal(res.weights[0], again.weights[0])  # reproducible


def test_label_flipping_hurts_when_most_sites_flip() -> None:
    fed = synthetic_federation(num_sites=3)
    cfg = small_config(training=SIX)
    flipped = small_config(training=SIX, attack={"kind": "label_flip", "sites": ["h0", "h1"]})
    clean = run_federation(cfg, fed).rounds[-1]["test"]["accuracy"]
    assert run_federation(flipped, fed).rounds[-1]["test"]["accuracy"] < clean - 0.3


def test_backdoor_success_is_reported_and_grows_with_the_attack() -> None:
    fed = synthetic_federation(num_sites=3)
    attack = {"kind": "backdoor", "sites": ["h0"], "target": 1, "trigger_size": 2}
    quiet = small_config(training=SIX, attack=attack | {"sites": ["h0"], "fraction": 0.01})
    loud = small_config(training=SIX, attack=attack | {"fraction": 1.0, "boost": 3.0})
    low = run_federation(quiet, fed).rounds[-1]
    high = run_federation(loud, fed).rounds[-1]
    assert set(low["backdoor"]) == {"success", "n"} and 0 <= low["backdoor"]["success"] <= 1
    assert high["backdoor"]["success"] > low["backdoor"]["success"] + 0.2
    assert "backdoor" not in run_federation(small_config(), fed).rounds[-1]


# --- compression in the engine ---------------------------------------------------------------


def test_bytes_counted_are_the_encoded_payloads() -> None:
    fed = synthetic_federation()
    dense = run_federation(small_config(), fed).rounds[0]["bytes_up_site"]["h0"]
    half = run_federation(small_config(compression={"codec": "fp16"}), fed)
    sizes = [5, 1]  # logistic on 5 features, binary: weight (1, 5), bias (1,)
    assert dense == sum(5 + 4 * n for n in sizes)
    assert half.rounds[0]["bytes_up_site"]["h0"] == sum(4 + 2 * n for n in sizes)
    assert half.rounds[0]["bytes_up"] == 3 * sum(4 + 2 * n for n in sizes)


@pytest.mark.parametrize(
    "compression",
    [
        {"codec": "fp16"},
        {"codec": "int8"},
        {"codec": "topk", "k": 0.34},
        {"codec": "qsgd", "levels": 8},
        {"codec": "powersgd", "rank": 1},
    ],
    ids=lambda c: c["codec"],
)
def test_compressed_runs_still_learn(compression: dict[str, Any]) -> None:
    fed = synthetic_federation()
    cfg = small_config(training=SIX, compression=compression)
    res = run_federation(cfg, fed)
    assert res.rounds[-1]["test"]["accuracy"] > 0.7
    feedback = compression["codec"] not in ("fp16", "qsgd")  # QSGD: off by default
    if compression["codec"] != "fp16":
        assert all(("ef_residual" in s) == feedback for s in res.site_states.values())


def test_error_feedback_can_be_turned_off() -> None:
    cfg = small_config(compression={"codec": "topk", "k": 0.2, "error_feedback": False})
    res = run_federation(cfg, synthetic_federation())
    assert all("ef_residual" not in s for s in res.site_states.values())


# --- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"algorithm": {"name": "scaffold"}, "robust": {"rule": "median"}},
            "robust.rule 'median' replaces the weighted mean",
        ),
        (
            {"algorithm": {"name": "dp_fedavg"}, "robust": {"rule": "trimmed_mean"}},
            "aggregates its own way",
        ),
        ({"algorithm": {"name": "pooled"}, "attack": FLIP}, "baseline 'pooled' exchanges no"),
        ({"robust": {"rule": "krum", "m": 2}}, "m applies to multi_krum only"),
        ({"robust": {"rule": "trimmed_mean", "trim": 0.5}}, "trim"),
        ({"attack": {"kind": "sign_flip", "sites": ["h0", "h0"]}}, "lists a site twice"),
        ({"attack": {"kind": "nope", "sites": ["h0"]}}, "attack"),
        ({"compression": {"codec": "topk", "k": 0}}, "compression.topk.k"),
        ({"compression": {"codec": "fp16", "k": 0.1}}, "Extra inputs are not permitted"),
    ],
)
def test_bad_combinations_fail_at_load_time(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        small_config(**overrides)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"robust": {"rule": "krum", "f": 1}}, r"needs at least 5 updates a round, but only 3"),
        ({"attack": {"kind": "scale", "sites": ["h9"]}}, r"unknown site\(s\) \['h9'\]"),
        ({"attack": {"kind": "backdoor", "sites": ["h0"], "target": 2}}, "not a class"),
    ],
)
def test_bad_settings_for_the_federation_fail_before_training(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        run_federation(small_config(**overrides), synthetic_federation())


def test_declared_aggregation_matches_the_algorithms() -> None:
    """An algorithm that overrides ``aggregate`` must not declare the plain weighted mean
    (coordinate-wise robust rules would replace what it does)."""
    classes = [FedAvg, FedProx, Scaffold, FedNova, FedBN, Ditto, CCPGD, DPFedAvg]
    for cls in classes:
        custom = cls.aggregate is not Algorithm.aggregate
        assert custom == (cls.capabilities.aggregation != "weighted_mean"), cls.name
