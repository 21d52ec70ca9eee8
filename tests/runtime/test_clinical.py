"""Clinical metrics in a run: merged at the coordinator from the sites' states."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from medsilo.data.registry import build_federation
from medsilo.experiment import run_experiment
from medsilo.metrics.evaluation import predict_probabilities
from medsilo.models.weights import set_weights
from medsilo.report import build_report
from medsilo.runtime.prepared import PreparedFederation
from medsilo.runtime.simulation import run_federation
from tests.conftest import small_config

TRAIN = {"rounds": 4, "local_steps": 20, "batch_size": 8, "lr": 0.05}


def heart_config(**extra: object) -> object:
    return small_config(
        data={"dataset": "heart_disease", "partition": "natural", "standardize": "federated"},
        training=TRAIN,
        evaluation={"subgroup": "sex", "bootstrap_replicates": 30, **extra},
    )


def test_pooled_auroc_from_site_states_matches_the_exact_one_on_pooled_predictions() -> None:
    cfg = heart_config()
    fed = build_federation(cfg.data, cfg.seed)  # type: ignore[attr-defined]
    result = run_federation(cfg, fed)  # type: ignore[arg-type]
    metrics = result.rounds[-1].metrics
    assert metrics is not None and metrics["lead"] == "auroc"
    prep = PreparedFederation.build(cfg, fed)  # type: ignore[arg-type]
    set_weights(prep.model, result.weights)
    exact = roc_auc_score(
        prep.pooled_test.y.numpy(), predict_probabilities(prep.model, prep.pooled_test)
    )
    assert abs(metrics["pooled"]["auroc"] - exact) < 0.005
    assert set(metrics["per_site"]) == set(fed.site_names) == set(metrics["without_site"])
    groups = metrics["subgroups"]
    assert groups["column"] == "sex" and set(groups["values"]) == {"female", "male"}
    aurocs = [v["auroc"] for v in groups["values"].values()]
    assert groups["largest_gap"]["auroc"] == max(aurocs) - min(aurocs)
    assert 0 < metrics["operating_point"][0] < 1


def test_intervals_and_curves_come_with_the_last_evaluation_only() -> None:
    result = run_federation(heart_config())  # type: ignore[arg-type]
    *earlier, last = result.rounds
    assert all(r.metric_intervals is None for r in earlier)
    assert all("curves" not in (r.metrics or {}) for r in earlier)
    assert last.metric_intervals is not None and last.metrics is not None
    low, high = last.metric_intervals["pooled"]["auroc"]
    assert low <= last.metrics["pooled"]["auroc"] <= high
    assert "without cleveland" in last.metric_intervals
    roc = last.metrics["curves"]["pooled"]["roc"]
    assert roc["fpr"][0] == roc["tpr"][0] == 0.0 and roc["fpr"][-1] == roc["tpr"][-1] == 1.0
    assert np.all(np.diff(roc["fpr"]) >= 0) and np.all(np.diff(roc["tpr"]) >= 0)


def test_the_summary_table_and_report_show_the_clinical_metrics(tmp_path: Path) -> None:
    torch.manual_seed(0)
    cfg = heart_config(loho=True)
    run = run_experiment(cfg, tmp_path / "run").run_dir  # type: ignore[arg-type]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["final"]["metrics"]["lead"] == "auroc"
    assert "pooled" in summary["metric_intervals"]
    unseen = summary["loho"]["cleveland"]  # trained without cleveland, tested on all of it
    low, high = unseen["clinical_intervals"]["auroc"]
    assert 0.5 < low <= unseen["clinical"]["auroc"] <= high
    report = build_report(run)
    assert any(p.name.startswith("clinical_") for p in (run / "report").glob("*.png"))
    assert "ROC and calibration" in Path(report).read_text()


def test_the_operating_point_reads_a_bounded_seeded_subset_of_training_rows() -> None:
    from medsilo.runtime.clinical import VALIDATION_ROWS, validation_rows
    from medsilo.training.tensors import TensorData

    rows = TensorData(torch.arange(3000.0)[:, None], torch.zeros(3000), "binary")
    subset = validation_rows(rows, seed=1, site_index=2)
    assert len(subset) == VALIDATION_ROWS
    assert torch.equal(subset.x, validation_rows(rows, seed=1, site_index=2).x)
    assert not torch.equal(subset.x, validation_rows(rows, seed=1, site_index=3).x)
    few = TensorData(rows.x[:10], rows.y[:10], "binary")
    assert validation_rows(few, seed=1, site_index=2) is few
