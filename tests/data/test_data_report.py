"""The DP data report: calibrated Laplace noise, reproducible with a seed, and the
coordinator's heterogeneity view built from reports only."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from medsilo.data.data_report import private_report, query_count
from medsilo.data.heterogeneity import heterogeneity, is_exported, js_divergence
from medsilo.data.schema import load_schema
from medsilo.data.site_mapping import load_mapping
from medsilo.data.site_validation import SiteCheck, check_site
from medsilo.data.synthetic_sites import write_cardio_sites
from tests.data.site_fixtures import EXAMPLES, SITES

SCHEMA = load_schema(EXAMPLES / "schema.yaml")


@pytest.fixture(scope="module")
def checks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SiteCheck]:
    csvs = write_cardio_sites(tmp_path_factory.mktemp("csv"), n_per_site=200, seed=0)
    out = {}
    for s in SITES:
        out[s] = check_site(SCHEMA, load_mapping(EXAMPLES / f"mapping_{s[-1]}.yaml"), csvs[s], s)
        assert out[s].ok
    return out


def test_query_count_and_budget_split(checks: dict[str, SiteCheck]) -> None:
    # label histogram + 3 per numeric/binary column (6) + 1 categorical histogram
    assert query_count(SCHEMA) == 1 + 3 * 6 + 1
    rep = private_report(SCHEMA, checks["hospital_a"], epsilon=2.0, seed=0)
    assert rep["privacy"]["epsilon_per_query"] == pytest.approx(2.0 / 20)
    assert rep["label_noise_scale"] == pytest.approx(1.0 / 0.1)
    age = rep["features"]["age"]["noise_scale"]
    # Sensitivities: half the allowed range [18, 100] and its square.
    assert age["sum"] == pytest.approx(41 / 0.1)
    assert age["sum_of_squares"] == pytest.approx(41**2 / 0.1)


def test_same_seed_reproduces_and_other_seeds_differ(checks: dict[str, SiteCheck]) -> None:
    a = private_report(SCHEMA, checks["hospital_b"], 1.0, seed=3)
    b = private_report(SCHEMA, checks["hospital_b"], 1.0, seed=3)
    c = private_report(SCHEMA, checks["hospital_b"], 1.0, seed=4)
    assert a == b and a != c
    assert a["privacy"]["seeded"] is True


def test_noise_scale_matches_calibration_empirically(checks: dict[str, SiteCheck]) -> None:
    check = checks["hospital_a"]
    assert check.labels is not None and check.values is not None
    eps, k, reps = 20.0, query_count(SCHEMA), 1500
    true_counts = np.bincount(check.labels, minlength=2)
    counts = np.array(
        [
            list(private_report(SCHEMA, check, eps, seed=i)["label_counts"].values())
            for i in range(reps)
        ]
    )
    # Laplace(b) has standard deviation sqrt(2) * b, b = sensitivity / (eps / k) = k / eps.
    expected_std = np.sqrt(2) * k / eps
    assert counts.std(axis=0) == pytest.approx([expected_std] * 2, rel=0.1)
    assert counts.mean(axis=0) == pytest.approx(true_counts, abs=4 * expected_std / np.sqrt(reps))
    # Feature means: the noisy sum over the (almost exact) observed count.
    ages = np.array(
        [private_report(SCHEMA, check, eps, seed=i)["features"]["age"]["mean"] for i in range(reps)]
    )
    age = check.values["age"]
    expected_mean_std = np.sqrt(2) * (41 * k / eps) / np.sum(~np.isnan(age))
    assert ages.std() == pytest.approx(expected_mean_std, rel=0.15)
    assert ages.mean() == pytest.approx(np.nanmean(age), abs=0.2)


def test_report_releases_no_rows(checks: dict[str, SiteCheck]) -> None:
    rep = private_report(SCHEMA, checks["hospital_a"], 1.0, seed=0)
    assert set(rep) == {
        "report_version",
        "site",
        "schema",
        "schema_version",
        "privacy",
        "count",
        "label_counts",
        "label_distribution",
        "label_noise_scale",
        "features",
    }
    for f in rep["features"].values():
        assert set(f) <= {
            "type",
            "unit",
            "range",
            "mean",
            "std",
            "missing_share",
            "noise_scale",
            "distribution",
        }


def test_js_divergence_bounds() -> None:
    assert js_divergence(np.array([0.3, 0.7]), np.array([0.3, 0.7])) == pytest.approx(0.0)
    assert js_divergence(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(1.0)


def test_heterogeneity_sees_the_age_shift(checks: dict[str, SiteCheck]) -> None:
    # Site B's patients are 6 years older, site C's 4 years younger (synthetic_sites).
    reports = [private_report(SCHEMA, checks[s], epsilon=50.0, seed=1) for s in SITES]
    view = heterogeneity(reports)
    smd = view["features"]["age"]["smd"]
    assert smd["hospital_b"] > 0.3 and smd["hospital_c"] < -0.2
    assert smd["hospital_b"] > smd["hospital_a"] > smd["hospital_c"]
    assert set(view["label"]["js_divergence"]) == set(SITES)
    assert all(0 <= v < 0.05 for v in view["label"]["js_divergence"].values())


def _without(check: SiteCheck, column: str) -> SiteCheck:
    """The site as if its mapping did not export ``column``: every value missing."""
    assert check.values is not None
    values = dict(check.values, **{column: np.full_like(check.values[column], np.nan)})
    return dataclasses.replace(check, values=values)


@pytest.mark.parametrize("epsilon", [4.0, 50.0])
def test_a_column_a_site_does_not_export_is_not_compared(
    checks: dict[str, SiteCheck], epsilon: float
) -> None:
    sites = {
        **checks,
        "hospital_c": _without(
            _without(_without(checks["hospital_c"], "age"), "sex"), "chest_pain"
        ),
    }
    exported = [private_report(SCHEMA, checks[s], epsilon, seed=2) for s in SITES]
    reports = [private_report(SCHEMA, sites[s], epsilon, seed=2) for s in SITES]
    view = heterogeneity(reports)
    for column in ("age", "sex", "chest_pain"):
        assert view["features"][column]["not_exported"] == ["hospital_c"]
    age = view["features"]["age"]
    assert age["smd"]["hospital_c"] is None and age["site_means"]["hospital_c"] is None
    assert all(age["smd"][s] is not None for s in ("hospital_a", "hospital_b"))
    assert view["features"]["chest_pain"]["js_divergence"]["hospital_c"] is None
    # the federation's age comes from the sites that have ages, not from c's noise
    two_sites = heterogeneity(exported[:2])["features"]["age"]["federation_mean"]
    assert age["federation_mean"] == pytest.approx(two_sites, abs=0.5)
    assert all(not view["features"][c]["not_exported"] for c in ("cholesterol", "weight"))


def test_an_empty_column_is_told_from_a_full_one_over_many_noise_draws(
    checks: dict[str, SiteCheck],
) -> None:
    empty_site = _without(_without(checks["hospital_c"], "age"), "chest_pain")
    draws, passed_as_exported, full_as_empty = 300, 0, 0
    for seed in range(draws):
        empty = private_report(SCHEMA, empty_site, 4.0, seed=seed)
        full = private_report(SCHEMA, checks["hospital_c"], 4.0, seed=seed)
        for column in ("age", "chest_pain"):
            passed_as_exported += is_exported(empty["features"][column], empty["count"])
            full_as_empty += not is_exported(full["features"][column], full["count"])
    assert full_as_empty == 0
    assert passed_as_exported <= 0.02 * 2 * draws  # measured 6 of 600 (1 %)


def test_heterogeneity_refuses_mixed_schemas(checks: dict[str, SiteCheck]) -> None:
    a = private_report(SCHEMA, checks["hospital_a"], 1.0, seed=0)
    b = dict(a, schema_version="2")
    with pytest.raises(ValueError, match="different schemas"):
        heterogeneity([a, b])


def test_failed_site_cannot_report(tmp_path: Path) -> None:
    bad = check_site(SCHEMA, load_mapping(EXAMPLES / "mapping_a.yaml"), tmp_path / "x.csv")
    with pytest.raises(ValueError, match="failed validation"):
        private_report(SCHEMA, bad)
