"""The evaluation section's metric choices are validated when the config is read."""

from __future__ import annotations

import pytest

from medsilo.config import ConfigError
from medsilo.metrics.operating_point import TargetSensitivityRule
from medsilo.metrics.registry import builtin_metrics
from medsilo.metrics.suite import MetricSuite
from tests.conftest import small_config


def test_defaults_report_every_builtin_metric_led_by_auroc_for_binary() -> None:
    evaluation = small_config().evaluation
    assert evaluation.metrics == list(builtin_metrics().names)
    assert evaluation.lead_for("binary") == "auroc"
    assert evaluation.lead_for("multiclass") == "accuracy"
    assert evaluation.operating_point.rule == "youden"
    suite = MetricSuite.build(
        evaluation.metrics, evaluation.lead_for("binary"), evaluation.operating_point
    )
    assert suite.lead == "auroc"


def test_chosen_lead_and_rule() -> None:
    evaluation = small_config(
        evaluation={
            "metrics": ["sensitivity", "f1"],
            "lead_metric": "f1",
            "operating_point": {"rule": "target_sensitivity", "value": 0.9},
            "subgroup": "age_band",
        }
    ).evaluation
    assert evaluation.lead_for("binary") == "f1"
    assert evaluation.operating_point == TargetSensitivityRule(rule="target_sensitivity", value=0.9)
    unlisted_default = small_config(evaluation={"metrics": ["brier", "f1"]}).evaluation
    assert unlisted_default.lead_for("binary") == "brier"


@pytest.mark.parametrize(
    ("evaluation", "message"),
    [
        ({"metrics": ["auroc", "aucroc"]}, r"unknown metric\(s\) \['aucroc'\]; known metrics: acc"),
        ({"metrics": ["f1"], "lead_metric": "auroc"}, "lead_metric 'auroc' is not in"),
        ({"operating_point": {"rule": "target_sensitivity", "value": 1.5}}, "less than or equal"),
        ({"operating_point": {"rule": "best"}}, "operating_point"),
        ({"subgroup": "ethnicity"}, "subgroup columns: sex, age_band"),
        ({"metrics": []}, "at least 1"),
    ],
)
def test_bad_evaluation_settings_are_named(evaluation: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        small_config(evaluation=evaluation)


def test_subgroup_needs_a_dataset_with_that_column() -> None:
    with pytest.raises(ConfigError, match="subgroup columns: none"):
        small_config(
            data={"dataset": "mnist", "partition": "iid", "num_sites": 2},
            evaluation={"subgroup": "sex"},
        )


def test_a_user_dataset_declares_its_subgroup_columns_itself() -> None:
    user = {"dataset": "tests.fixtures_user:factory", "partition": "iid", "num_sites": 2}
    assert small_config(data=user, evaluation={"subgroup": "ward"}).evaluation.subgroup == "ward"
