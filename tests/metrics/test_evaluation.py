"""The site-side evaluation helper: model -> probabilities -> states (never predictions)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from medsilo.data.registry import build_federation
from medsilo.data.spec import DataConfig
from medsilo.metrics.evaluation import (
    evaluate_replicates,
    evaluate_states,
    predict_probabilities,
)
from medsilo.metrics.subgroups import merge_subgroups, subgroup_report
from medsilo.metrics.suite import MetricSuite
from medsilo.models.builder import build_model
from medsilo.models.weights import get_weights
from medsilo.training.evaluate import evaluate
from medsilo.training.local import LocalTraining, train_local
from medsilo.training.tensors import TensorData
from tests.conftest import synthetic_federation
from tests.metrics.helpers import ALL


@pytest.mark.parametrize("classes", [2, 3])
def test_accuracy_state_agrees_with_the_round_evaluation(classes: int) -> None:
    fed = synthetic_federation(classes=classes)
    task = "binary" if classes == 2 else "multiclass"
    model = build_model("logistic", fed.input_shape, classes, seed=1)
    train_local(
        model,
        TensorData.of(fed.pooled_train(), task),
        LocalTraining(batch_size=16, lr=0.1, local_steps=30),
        torch.Generator().manual_seed(0),
    )
    suite = MetricSuite.build(ALL)
    for site in fed.sites:
        data = TensorData.of(site.test, task)
        result = evaluate_states(model, get_weights(model), data, suite)
        assert result.n == len(data)
        assert suite.values(result.states)["accuracy"] == pytest.approx(
            evaluate(model, data).accuracy
        )


def test_probabilities_are_sigmoid_or_softmax_of_the_logits() -> None:
    fed = synthetic_federation(classes=3)
    model = build_model("mlp", fed.input_shape, 3, seed=2)
    data = TensorData.of(fed.test, "multiclass")
    p = predict_probabilities(model, data, batch_size=7)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    np.testing.assert_allclose(p, torch.softmax(model(data.x), 1).detach().numpy(), rtol=1e-5)
    binary = TensorData.of(synthetic_federation().test, "binary")
    one_logit = build_model("logistic", fed.input_shape, 2, seed=2)
    expected = torch.sigmoid(one_logit(binary.x).squeeze(1)).detach().numpy()
    np.testing.assert_allclose(predict_probabilities(one_logit, binary), expected, rtol=1e-5)


def test_heart_disease_sex_subgroups_pooled_over_hospitals() -> None:
    fed = build_federation(DataConfig(dataset="heart_disease", standardize="federated"), seed=0)
    model = build_model("logistic", fed.input_shape, 2, seed=0)
    train_local(
        model,
        TensorData.of(fed.pooled_train(), "binary"),
        LocalTraining(batch_size=32, lr=0.01, local_steps=300, momentum=0.9),
        torch.Generator().manual_seed(0),
    )
    suite = MetricSuite.build(["auroc", "sensitivity"])
    weights = get_weights(model)
    reports = [
        evaluate_states(
            model, weights, TensorData.of(s.test, "binary"), suite, s.test.groups["sex"]
        )
        for s in fed.sites
    ]
    assert sorted(reports[2].subgroups) == ["male"]  # Switzerland's test set has no women
    json.dumps([r.to_wire() for r in reports])  # what a site sends is plain JSON
    report = subgroup_report(suite, merge_subgroups(suite, (r.subgroups for r in reports)))
    p = predict_probabilities(model, TensorData.of(fed.test, "binary"))
    sex = fed.test.groups["sex"]
    for group in ("female", "male"):
        exact = roc_auc_score(fed.test.y[sex == group], p[sex == group])
        assert report.values[group]["auroc"] == pytest.approx(exact, abs=0.005)
    assert report.largest_gap["auroc"] == pytest.approx(
        abs(report.values["female"]["auroc"] - report.values["male"]["auroc"])
    )


def test_replicates_from_a_model() -> None:
    fed = synthetic_federation()
    model = build_model("logistic", fed.input_shape, 2, seed=0)
    data = TensorData.of(fed.sites[0].test, "binary")
    suite = MetricSuite.build(["brier"])
    replicates = evaluate_replicates(model, get_weights(model), data, suite, 4, 0, "h0")
    assert len(replicates) == 4
    assert all(float(r["brier"]["count"]) == len(data) for r in replicates)


def test_a_site_without_test_rows_sends_states_that_still_merge() -> None:
    fed = synthetic_federation(classes=3)
    model = build_model("logistic", fed.input_shape, 3, seed=0)
    suite = MetricSuite.build(ALL)
    full = TensorData.of(fed.sites[0].test, "multiclass")
    empty = TensorData(full.x[:0], full.y[:0], "multiclass")
    weights = get_weights(model)
    states = [evaluate_states(model, weights, d, suite).states for d in (full, empty)]
    assert suite.values(suite.merge(states)) == suite.values(states[0])
