"""Leave-one-out and GTG-Shapley on small synthetic federations."""

from __future__ import annotations

import numpy as np
import pytest

from medsilo.contribution.gtg import GTGSettings, reconstruct
from medsilo.contribution.loo import config_without
from medsilo.contribution.noise import rotated, site_order_noise
from medsilo.contribution.observed import run_with_shapley, unsupported_reason
from medsilo.contribution.scores import contribution_scores
from medsilo.data.base import ArrayData, FederatedData, SiteData
from medsilo.runtime.prepared import PreparedFederation
from medsilo.runtime.simulation import run_federation
from medsilo.types import Update
from tests.conftest import small_config, synthetic_federation


def with_noise_site(fed: FederatedData, noisy: str, seed: int = 0) -> FederatedData:
    """``fed`` where site ``noisy`` trains on uniformly random labels (test sets unchanged)."""
    rng = np.random.default_rng(seed)
    sites = []
    for s in fed.sites:
        if s.name == noisy:
            labels = rng.integers(0, fed.num_classes, size=len(s.train)).astype(np.int64)
            s = SiteData(s.name, ArrayData(s.train.x, labels), s.test)
        sites.append(s)
    return FederatedData(fed.name, sites, fed.test, fed.num_classes, fed.task)


CFG = {"training": {"rounds": 4, "local_steps": 15, "batch_size": 16, "lr": 0.1}}


def test_label_noise_site_scores_lowest_with_both_methods() -> None:
    fed = with_noise_site(synthetic_federation(num_sites=4, n=200, seed=1), "h2")
    scores = contribution_scores(small_config(**CFG), "both", "neg_loss", fed=fed)
    loo = {s: v["score"] for s, v in scores["loo"].items()}
    gtg = scores["shapley"]["values"]
    assert min(loo, key=loo.__getitem__) == "h2"
    assert min(gtg, key=gtg.__getitem__) == "h2"
    assert gtg["h2"] < 0 and loo["h2"] < 0  # the noise site makes the model worse
    assert all(gtg[s] > 0 for s in ("h0", "h1", "h3"))


def test_round_values_are_efficient_and_sum_to_the_metric_gain() -> None:
    fed = synthetic_federation(num_sites=3)
    cfg = small_config(**CFG)
    _, gtg = run_with_shapley(cfg, PreparedFederation.build(cfg, fed), "neg_loss", GTGSettings())
    assert [r.round for r in gtg.rounds] == [1, 2, 3, 4]
    for r in gtg.rounds:
        assert sum(r.values.values()) == pytest.approx(r.utility_all - r.utility_empty)
        assert r.evaluations == 8  # all 2^3 coalitions
    # the model reconstructed from all updates is the next round's starting model
    totals = gtg.totals(fed.site_names)
    assert sum(totals.values()) == pytest.approx(
        sum(r.utility_all - r.utility_empty for r in gtg.rounds)
    )


def test_observer_leaves_the_run_unchanged() -> None:
    fed = synthetic_federation(num_sites=3)
    cfg = small_config(**CFG)
    plain = run_federation(cfg, prepared=PreparedFederation.build(cfg, fed))
    observed, _ = run_with_shapley(
        cfg, PreparedFederation.build(cfg, fed), "accuracy", GTGSettings()
    )
    for a, b in zip(plain.weights, observed.weights, strict=True):
        np.testing.assert_array_equal(a, b)


def test_monte_carlo_rounds_above_the_exact_limit() -> None:
    fed = synthetic_federation(num_sites=5, n=80)
    cfg = small_config(**CFG)
    settings = GTGSettings(exact_up_to=2, permutations=6, seed=3)
    _, gtg = run_with_shapley(cfg, PreparedFederation.build(cfg, fed), "neg_loss", settings)
    for r in gtg.rounds:  # each Monte Carlo permutation is efficient on its own
        assert sum(r.values.values()) == pytest.approx(r.utility_all - r.utility_empty)
        assert r.evaluations < 2**5


def test_reconstruct_is_the_fedavg_step_of_the_subset() -> None:
    w = [np.zeros(2, dtype=np.float32)]
    ups = [
        Update("a", [np.array([1.0, 0.0])], num_examples=1, num_steps=1),
        Update("b", [np.array([0.0, 4.0])], num_examples=3, num_steps=1),
    ]
    np.testing.assert_allclose(reconstruct(w, ups, 0.5)[0], [0.125, 1.5])
    assert reconstruct(w, [], 0.5) is w


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"algorithm": {"name": "scaffold"}}, "own rule"),
        ({"server_optimizer": {"name": "adam", "lr": 0.1}}, "plain SGD"),
        ({"algorithm": {"name": "pooled"}}, "baseline"),
    ],
)
def test_runs_the_reconstruction_does_not_describe_are_refused(
    overrides: dict[str, object], needle: str
) -> None:
    cfg = small_config(**CFG | overrides)
    reason = unsupported_reason(cfg)
    assert reason is not None and needle in reason
    with pytest.raises(ValueError, match="GTG-Shapley cannot score"):
        contribution_scores(cfg, "shapley", fed=synthetic_federation())


def test_config_without_a_site_drops_its_override_and_attack_role() -> None:
    cfg = small_config(
        **CFG,
        attack={"kind": "sign_flip", "sites": ["h1"]},
        sites={"overrides": {"h1": {"compute": {"examples_per_s": 50.0}}}},
    )
    reduced = config_without(cfg, "h1")
    assert reduced.attack is None and "h1" not in reduced.sites.overrides
    assert config_without(cfg, "h0").attack == cfg.attack


def test_config_without_a_site_drops_its_governance_entries() -> None:
    cfg = small_config(**CFG, governance={"withdrawn_sites": ["h1"]})
    assert config_without(cfg, "h1").governance.withdrawn_sites == []
    assert config_without(cfg, "h0").governance.withdrawn_sites == ["h1"]


def test_site_order_noise_floor_reruns_the_full_federation() -> None:
    fed = synthetic_federation(num_sites=3)
    cfg = small_config(**CFG)
    assert rotated(fed, 1).site_names == ["h1", "h2", "h0"]
    assert rotated(fed, 1).test is fed.test
    scores = contribution_scores(cfg, "loo", "neg_loss", fed=fed, noise_orders=3)
    noise = scores["site_order_noise"]
    assert len(noise["values"]) == 3
    assert noise["values"][0] == pytest.approx(scores["full"])  # rotation 0 is the run itself
    assert noise["range"] == pytest.approx(max(noise["values"]) - min(noise["values"]))
    assert noise["range"] > 0  # other orders give other minibatch streams
    with pytest.raises(ValueError, match="distinct rotations"):
        site_order_noise(cfg, fed, "accuracy", orders=4)


def test_leave_one_out_needs_a_shared_model() -> None:
    cfg = small_config(**CFG | {"algorithm": {"name": "local"}})
    with pytest.raises(ValueError, match="shared model"):
        contribution_scores(cfg, "loo", fed=synthetic_federation())
