"""``medsilo bench deployment --workload resnet18-pneumonia``: its config and its CLI checks
(the benchmark itself runs real processes for minutes and is run by hand)."""

from __future__ import annotations

from typer.testing import CliRunner

from medsilo.bench.deployment_resnet import SITES, resnet_experiment
from medsilo.cli import app
from medsilo.config import parse_config
from medsilo.data.own_site import load_own_site
from medsilo.data.registry import build_federation


def test_the_workload_is_a_resnet18_whose_sites_a_deployed_site_can_load() -> None:
    cfg = parse_config(resnet_experiment(rounds=2, local_steps=3, max_train=60, max_test=20))
    assert cfg.model.name == "resnet18" and cfg.data.dataset == "pneumoniamnist"
    fed = build_federation(cfg.data, cfg.seed)
    assert fed.site_names == SITES  # the loopback's roster
    own = load_own_site(cfg.data, SITES[1], None, cfg.seed).sites[0]
    assert (own.train.x == fed.site(SITES[1]).train.x).all()  # the site's part, as the engine's


def test_an_unknown_workload_is_refused() -> None:
    res = CliRunner().invoke(app, ["bench", "deployment", "--workload", "mnist"])
    assert res.exit_code == 2
    assert "unknown workload 'mnist'" in res.output
