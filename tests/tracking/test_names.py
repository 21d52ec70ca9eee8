"""Metric and parameter names a tracker sees."""

from __future__ import annotations

import numpy as np

from medsilo.tracking.names import MAX_PARAM_LENGTH, metric_name, metrics_of, params_of


def test_a_site_name_moves_to_the_front_of_the_metric_name() -> None:
    sites = frozenset({"cleveland", "va"})
    assert (
        metric_name(("per_site", "cleveland", "accuracy"), sites) == "cleveland/per_site/accuracy"
    )
    assert metric_name(("bytes_up_site", "va"), sites) == "va/bytes_up_site"
    assert metric_name(("test", "accuracy"), sites) == "test/accuracy"
    assert metric_name(("per_site", "st. mary's", "n"), frozenset({"st. mary's"})) == (
        "st. mary_s/per_site/n"
    )


def test_every_number_is_a_metric_and_nothing_else_is() -> None:
    record = {
        "round": 3,
        "train_loss": np.float64(0.5),
        "bytes_up": np.int64(120),
        "skipped": False,
        "global_model_sha256": "ab12",
        "dropped": ["va"],
        "mean_site_accuracy": None,
        "test": {"loss": 0.25, "accuracy": 0.75},
        "per_site": {"va": {"accuracy": 1.0}},
    }
    assert metrics_of(record, ["va"]) == {
        "train_loss": 0.5,
        "bytes_up": 120.0,
        "test/loss": 0.25,
        "test/accuracy": 0.75,
        "va/per_site/accuracy": 1.0,
    }
    assert metrics_of({"round": 3, "wall_s": 2.0}, [], ("summary",)) == {"summary/wall_s": 2.0}


def test_config_flattens_to_text_parameters() -> None:
    params = params_of(
        {
            "name": "t",
            "training": {"rounds": 2, "lr": 0.1, "local_epochs": None},
            "sites": {"overrides": {}},
            "attack": {"sites": ["va", "h1"]},
            "evaluation": {"loho": False},
            "data": {"path": "x" * (MAX_PARAM_LENGTH + 10)},
        }
    )
    assert params["name"] == "t"
    assert params["training.rounds"] == "2" and params["training.lr"] == "0.1"
    assert params["training.local_epochs"] == "null"
    assert params["sites.overrides"] == "{}"
    assert params["attack.sites"] == '["va", "h1"]'
    assert params["evaluation.loho"] == "false"
    assert len(params["data.path"]) == MAX_PARAM_LENGTH and params["data.path"].endswith("…")
