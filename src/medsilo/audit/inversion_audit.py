"""Run the gradient-inversion attack against one site of a configured federation and score it.

Victims are ``images`` rows drawn (seeded) from the site's training set, attacked in batches
of ``batch_size``. For each batch the site's transmitted update is produced by the site's own
code path (:func:`medsilo.audit.observed.observe_update`, all configured defences applied),
then inverted (:mod:`medsilo.audit.inversion`), the reconstructions matched to the truth and
scored with PSNR/SSIM (:mod:`medsilo.audit.image_metrics`).

The data range ``[lo, hi]`` (the attacker's box constraint and PSNR's peak) is the min/max of
the pooled test inputs: the value domain is public knowledge (pixels in [0, 1] before the
loader's normalisation). Reference point: ``baseline_psnr`` is the PSNR of the mean test
input (image or tabular row), the best constant guess of an attacker who saw no update at all;
a reconstruction is a leak only where it beats that clearly. SSIM is reported for image
inputs only.

The attacked round uses the run's own batch size and local steps unless the caller sets them
(:meth:`InversionAuditSettings.victim_round`): a batch-1, one-step round is the easiest case
and says little about a run that trained with larger batches and many steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from medsilo.audit.image_metrics import match_to_truth, psnr, ssim
from medsilo.audit.inversion import GradientInverter, InversionSettings
from medsilo.audit.observed import observe_update
from medsilo.config import BASELINES, RunConfig
from medsilo.runtime.prepared import PreparedFederation
from medsilo.training.tensors import TensorData, in_memory
from medsilo.types import Weights

LabelSource = Literal["known", "idlg"]


RUN_SETTINGS = "the run's own batch size and local steps"


@dataclass(frozen=True)
class InversionAuditSettings:
    """What to attack; ``None`` takes the run's value (see :meth:`victim_round`)."""

    images: int | None = None
    batch_size: int | None = None
    local_steps: int | None = None
    labels: LabelSource = "known"
    attack: InversionSettings = field(default_factory=InversionSettings)

    def __post_init__(self) -> None:
        for name in ("images", "batch_size", "local_steps"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError("images, batch_size and local_steps must be >= 1")
        if self.labels == "idlg" and self.batch_size not in (None, 1):
            raise ValueError("iDLG label inference works for batch_size 1 only; use labels=known")

    def victim_round(self, cfg: RunConfig, site_rows: int) -> VictimRound:
        """The attacked round: by default the batch size and local steps the site used in the
        run (a batch-1, one-step round is far easier to invert than the run's, and would
        report a leak the run never had). ``images`` defaults to one full batch, at least 4.
        """
        batch = self.batch_size or cfg.training.batch_size
        steps = self.local_steps or cfg.training.local().steps_for(site_rows)
        if self.labels == "idlg" and batch != 1:
            raise ValueError(
                f"iDLG label inference works for batch size 1 only, and the run trained with "
                f"batch size {batch}: pass --batch-size 1 or --labels known"
            )
        images = min(self.images or max(4, batch), site_rows)
        overridden = [
            flag
            for flag, value in (
                ("--batch-size", self.batch_size),
                ("--local-steps", self.local_steps),
            )
            if value is not None
        ]
        source = RUN_SETTINGS if not overridden else "set by " + " and ".join(overridden)
        if len(overridden) == 1:
            source += ", the rest from the run"
        return VictimRound(images, min(batch, images), steps, source)


@dataclass(frozen=True)
class VictimRound:
    """The round the coordinator inverts: how many rows, in batches of which size, how many
    local steps, and whether those are the run's own settings or overrides."""

    images: int
    batch_size: int
    local_steps: int
    source: str


@dataclass(frozen=True)
class ImageScore:
    row: int
    label: int
    label_used: int
    psnr: float
    ssim: float | None
    baseline_psnr: float
    cosine: float


@dataclass
class InversionAudit:
    site: str
    settings: InversionAuditSettings
    victim: VictimRound
    data_range: float
    image_inputs: bool
    scores: list[ImageScore] = field(default_factory=list)
    truths: list[np.ndarray] = field(default_factory=list)
    reconstructions: list[np.ndarray] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        p = [s.psnr for s in self.scores]
        q = [s.ssim for s in self.scores if s.ssim is not None]
        return {
            "site": self.site,
            "images": len(self.scores),
            "batch_size": self.victim.batch_size,
            "local_steps": self.victim.local_steps,
            "setting_source": self.victim.source,
            "labels": self.settings.labels,
            "iterations": self.settings.attack.iterations,
            "restarts": self.settings.attack.restarts,
            "tv_weight": self.settings.attack.tv_weight,
            "psnr_mean": _finite_mean(p),
            "psnr_median": float(np.median(p)) if p else None,
            "ssim_mean": float(np.mean(q)) if q else None,
            "baseline_psnr_mean": _finite_mean([s.baseline_psnr for s in self.scores]),
            "baseline": "mean test image" if self.image_inputs else "mean test row",
            "cosine_mean": float(np.mean([s.cosine for s in self.scores])),
            "label_accuracy": float(np.mean([s.label == s.label_used for s in self.scores])),
            "per_image": [asdict(s) for s in self.scores],
        }


def _finite_mean(values: list[float]) -> float | None:
    """Mean with +inf (exact recovery) capped at 100 dB so one perfect image stays readable."""
    if not values:
        return None
    return float(np.mean(np.minimum(values, 100.0)))


def data_bounds(prep: PreparedFederation) -> tuple[float, float]:
    x = in_memory(prep.pooled_test, "the gradient-inversion audit").x
    return float(x.min()), float(x.max())


def run_inverter(
    cfg: RunConfig,
    prep: PreparedFederation,
    global_weights: Weights,
    kind: type[GradientInverter] = GradientInverter,
) -> GradientInverter:
    """An inverter (of class ``kind``) that simulates ``cfg``'s local SGD from
    ``global_weights``, boxed to the data range (:func:`data_bounds`)."""
    return kind(
        prep.model,
        prep.layout,
        global_weights,
        prep.binary,
        local_lr=cfg.training.lr,
        weight_decay=cfg.training.weight_decay,
        bounds=data_bounds(prep),
    )


def run_inversion_audit(
    cfg: RunConfig,
    prep: PreparedFederation,
    site: str,
    global_weights: Weights,
    settings: InversionAuditSettings,
    on_batch: Callable[[int], None] | None = None,
) -> InversionAudit:
    """Attack ``settings.images`` training rows of ``site``; ``on_batch`` sees images done."""
    if site not in prep.train:
        raise ValueError(f"no site named {site!r}; sites are {list(prep.train)}")
    train = in_memory(prep.train[site], "the gradient-inversion audit")
    victim = settings.victim_round(cfg, len(train))
    lo, hi = data_bounds(prep)
    rng = np.random.default_rng([cfg.seed, 0xA0D17])
    count = victim.images
    rows = rng.choice(len(train), size=count, replace=False)
    inverter = run_inverter(cfg, prep, global_weights)
    prior = in_memory(prep.pooled_test, "the gradient-inversion audit").x.mean(dim=0).numpy()
    input_shape = tuple(int(s) for s in train.x.shape[1:])
    audit = InversionAudit(site, settings, victim, hi - lo, image_inputs=len(input_shape) == 3)
    generator = torch.Generator().manual_seed(cfg.seed)
    for start in range(0, count, victim.batch_size):
        idx = torch.as_tensor(np.sort(rows[start : start + victim.batch_size]))
        batch = TensorData(train.x[idx], train.y[idx], train.task)
        observed = observe_update(
            cfg, prep, site, batch, global_weights, local_steps=victim.local_steps
        )
        if settings.labels == "idlg":
            labels = torch.tensor(
                [inverter.infer_label(observed, prep.layout)], dtype=batch.y.dtype
            )
        else:
            labels = batch.y.clone()
        result = inverter.reconstruct(
            inverter.observed_vector(observed, prep.layout),
            labels,
            input_shape,
            victim.local_steps,
            settings.attack,
            generator,
        )
        truth = batch.x.numpy()
        order = match_to_truth(result.images, truth)
        for i, row in enumerate(idx.tolist()):
            recon = result.images[order[i]]
            audit.scores.append(
                ImageScore(
                    row=int(row),
                    label=int(batch.y[i]),
                    label_used=int(labels[order[i]]),
                    psnr=psnr(recon, truth[i], hi - lo),
                    ssim=ssim(recon, truth[i], hi - lo) if audit.image_inputs else None,
                    baseline_psnr=psnr(prior, truth[i], hi - lo),
                    cosine=result.cosine,
                )
            )
            audit.truths.append(truth[i])
            audit.reconstructions.append(recon)
        if on_batch is not None:
            on_batch(len(audit.scores))
    return audit


def benchmark_inversion_psnr(
    cfg: RunConfig,
    prep: PreparedFederation,
    iterations: int,
    images: int = 2,
    local_steps: int = 5,
) -> float | None:
    """Mean reconstruction PSNR (dB, capped at 100) of ``images`` single-image rounds of
    ``local_steps`` steps against the first site at the initial weights: the CC-PGD
    benchmark's empirical-leakage number. Several steps, because CC-PGD's privacy penalty
    has zero gradient at ``u = 0`` and so only acts from a round's second step on.
    ``None`` for a config that sends no updates (pooled, local)."""
    if cfg.algorithm.name in BASELINES:
        return None
    settings = InversionAuditSettings(
        images=images,
        batch_size=1,
        local_steps=local_steps,
        attack=InversionSettings(iterations=iterations),
    )
    site = prep.fed.site_names[0]
    audit = run_inversion_audit(cfg, prep, site, prep.initial_weights, settings)
    return _finite_mean([s.psnr for s in audit.scores])
