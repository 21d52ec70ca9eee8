import numpy as np
import pytest

from medsilo.runtime.simulation import run_federation
from tests.conftest import small_config, synthetic_federation


def test_round_records_carry_each_sites_raw_health() -> None:
    fed = synthetic_federation(num_sites=3)
    res = run_federation(small_config(training={"rounds": 2, "local_steps": 5, "lr": 0.1}), fed)
    for rec in res.rounds:
        health = rec["site_health"]
        assert set(health) == set(rec["sites"])
        for site in fed.sites:
            row = health[site.name]
            assert row["num_examples"] == len(site.train)
            assert np.isfinite(row["train_loss"]) and row["train_loss"] > 0
            assert row["update_norm"] > 0
    weights = [h["num_examples"] for h in res.rounds[0]["site_health"].values()]
    losses = [h["train_loss"] for h in res.rounds[0]["site_health"].values()]
    assert res.rounds[0]["train_loss"] == pytest.approx(np.average(losses, weights=weights))
