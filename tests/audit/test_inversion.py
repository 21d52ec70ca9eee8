"""Gradient inversion on 8x8 images: recovers an undefended image, fails against noise, and
the observed update comes from the site's own code path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medsilo.audit.image_metrics import psnr
from medsilo.audit.inversion import GradientInverter, InversionSettings, total_variation
from medsilo.audit.inversion_audit import (
    RUN_SETTINGS,
    InversionAuditSettings,
    data_bounds,
    run_inversion_audit,
)
from medsilo.audit.observed import observe_update
from medsilo.config import RunConfig
from medsilo.runtime.prepared import PreparedFederation
from medsilo.training.tensors import TensorData
from medsilo.types import flatten, global_norm
from tests.audit.conftest import audit_config, image_federation

FAST = InversionSettings(iterations=100, lr=0.1, tv_weight=1e-2)


def _prep(**overrides: object) -> tuple[PreparedFederation, RunConfig]:
    cfg = audit_config(**overrides)
    return PreparedFederation.build(cfg, image_federation()), cfg


def _one_image(prep: PreparedFederation) -> TensorData:
    t = prep.train["s0"]
    return TensorData(t.x[:1], t.y[:1], t.task)


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_undefended_image_is_recovered_far_above_the_guessing_baseline() -> None:
    prep, cfg = _prep()
    audit = run_inversion_audit(
        cfg, prep, "s0", prep.initial_weights, InversionAuditSettings(images=1, attack=FAST)
    )
    score = audit.scores[0]
    assert score.psnr > score.baseline_psnr + 10
    assert score.ssim is not None and score.ssim > 0.8
    assert score.cosine > 0.95


def test_heavy_noise_on_the_clipped_update_defeats_the_attack() -> None:
    prep, cfg = _prep()
    batch = _one_image(prep)
    lo, hi = data_bounds(prep)
    inverter = GradientInverter(
        prep.model, prep.layout, prep.initial_weights, False, 0.1, bounds=(lo, hi)
    )
    clean = observe_update(cfg, prep, "s0", batch, prep.initial_weights)
    rng = np.random.default_rng(0)

    def attack(observed: list[np.ndarray]) -> float:
        rec = inverter.reconstruct(
            inverter.observed_vector(observed, prep.layout),
            batch.y,
            (1, 8, 8),
            1,
            FAST,
            torch.Generator().manual_seed(0),
        )
        return psnr(rec.images[0], batch.x[0].numpy(), hi - lo)

    # clip to norm 1, then Gaussian noise of std 1 per coordinate (sigma = 1 x clip)
    scale = 1.0 / global_norm(clean)
    noisy = [c * scale + rng.normal(0.0, 1.0, size=c.shape).astype(np.float32) for c in clean]
    assert attack(clean) > attack(noisy) + 8


def test_observed_update_is_the_sites_own_sgd_step() -> None:
    prep, cfg = _prep()
    batch = _one_image(prep)
    observed = observe_update(cfg, prep, "s0", batch, prep.initial_weights)
    inverter = GradientInverter(prep.model, prep.layout, prep.initial_weights, False, 0.1)
    simulated = inverter.simulate(batch.x, batch.y, steps=1).detach().numpy()
    np.testing.assert_allclose(
        inverter.observed_vector(observed, prep.layout).numpy(), simulated, atol=1e-6
    )


def test_dp_clipping_keeps_the_direction_and_topk_sparsifies() -> None:
    prep, cfg = _prep()
    batch = _one_image(prep)
    plain = flatten(observe_update(cfg, prep, "s0", batch, prep.initial_weights))
    dp_cfg = audit_config(algorithm={"name": "dp_fedavg", "clip": 0.01, "noise_multiplier": 5})
    clipped = flatten(observe_update(dp_cfg, prep, "s0", batch, prep.initial_weights))
    # central noise is added after aggregation: the coordinator sees the clipped update only
    assert np.linalg.norm(clipped) == pytest.approx(0.01, rel=1e-4)
    assert _cos(plain, clipped) == pytest.approx(1.0, abs=1e-5)
    topk_cfg = audit_config(compression={"codec": "topk", "k": 0.05, "error_feedback": False})
    sparse = flatten(observe_update(topk_cfg, prep, "s0", batch, prep.initial_weights))
    assert np.count_nonzero(sparse) <= int(0.05 * sparse.size) + len(prep.layout.names)


def test_idlg_infers_the_label_of_one_image() -> None:
    prep, cfg = _prep()
    t = prep.train["s0"]
    inverter = GradientInverter(prep.model, prep.layout, prep.initial_weights, False, 0.1)
    for i in range(4):
        batch = TensorData(t.x[i : i + 1], t.y[i : i + 1], "multiclass")
        observed = observe_update(cfg, prep, "s0", batch, prep.initial_weights)
        assert inverter.infer_label(observed, prep.layout) == int(t.y[i])


def test_several_local_steps_are_simulated_exactly() -> None:
    prep, cfg = _prep()
    t = prep.train["s0"]
    batch = TensorData(t.x[:2], t.y[:2], "multiclass")
    observed = observe_update(cfg, prep, "s0", batch, prep.initial_weights, local_steps=3)
    inverter = GradientInverter(prep.model, prep.layout, prep.initial_weights, False, 0.1)
    simulated = inverter.simulate(batch.x, batch.y, steps=3).detach().numpy()
    np.testing.assert_allclose(
        inverter.observed_vector(observed, prep.layout).numpy(), simulated, atol=1e-5
    )


def test_settings_are_validated_and_tv_is_zero_on_flat_images() -> None:
    with pytest.raises(ValueError, match="batch_size 1"):
        InversionAuditSettings(batch_size=2, labels="idlg")
    assert float(total_variation(torch.ones(1, 1, 4, 4))) == 0.0


def test_site_side_dp_sgd_noise_defeats_inversion_but_its_clipping_alone_does_not() -> None:
    psnrs = {}
    for sigma in (0.0, 1.0):
        prep, cfg = _prep(privacy={"dp_sgd": {"noise_multiplier": sigma, "max_grad_norm": 1.0}})
        settings = InversionAuditSettings(images=1, attack=FAST)
        audit = run_inversion_audit(cfg, prep, "s0", prep.initial_weights, settings)
        psnrs[sigma] = audit.scores[0].psnr
        baseline = audit.scores[0].baseline_psnr
    assert psnrs[0.0] > baseline + 10  # per-example clipping keeps the direction
    assert psnrs[1.0] < baseline + 3  # the site's own noise leaves nothing to invert


def test_local_dp_noise_reaches_the_observed_update_and_defeats_inversion() -> None:
    algo = {"name": "dp_fedavg", "clip": 1.0, "noise_multiplier": 1.0, "noise": "local"}
    prep, cfg = _prep(algorithm=algo)
    settings = InversionAuditSettings(images=1, attack=FAST)
    score = run_inversion_audit(cfg, prep, "s0", prep.initial_weights, settings).scores[0]
    assert score.cosine < 0.2
    assert score.psnr < score.baseline_psnr + 3


def test_restarts_keep_the_best_candidate() -> None:
    prep, cfg = _prep()
    batch = _one_image(prep)
    inverter = GradientInverter(prep.model, prep.layout, prep.initial_weights, False, 0.1)
    observed = inverter.observed_vector(
        observe_update(cfg, prep, "s0", batch, prep.initial_weights), prep.layout
    )
    few = InversionSettings(iterations=20)
    runs = {}
    for restarts in (1, 3):
        settings = InversionSettings(iterations=few.iterations, restarts=restarts)
        gen = torch.Generator().manual_seed(5)  # the first restart draws the same start
        runs[restarts] = inverter.reconstruct(observed, batch.y, (1, 8, 8), 1, settings, gen)
    assert runs[3].objective <= runs[1].objective
    assert runs[1].images.shape == (1, 1, 8, 8)


def test_the_attacked_round_defaults_to_the_runs_batch_and_steps() -> None:
    prep, cfg = _prep(training={"rounds": 1, "local_steps": 3, "batch_size": 2, "lr": 0.1})
    quick = InversionSettings(iterations=5)
    audit = run_inversion_audit(
        cfg, prep, "s0", prep.initial_weights, InversionAuditSettings(attack=quick)
    )
    summary = audit.summary()
    assert (summary["images"], summary["batch_size"], summary["local_steps"]) == (4, 2, 3)
    assert summary["setting_source"] == RUN_SETTINGS
    assert summary["baseline"] == "mean test image"
    mine = InversionAuditSettings(batch_size=1).victim_round(cfg, 12)
    assert (mine.batch_size, mine.local_steps) == (1, 3)
    assert mine.source == "set by --batch-size, the rest from the run"
    by_epochs = audit_config(training={"rounds": 1, "local_epochs": 1, "batch_size": 2})
    assert InversionAuditSettings().victim_round(by_epochs, 12).local_steps == 6
    with pytest.raises(ValueError, match="run trained with batch size 2"):
        InversionAuditSettings(labels="idlg").victim_round(cfg, 12)
