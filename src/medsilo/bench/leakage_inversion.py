"""Gradient inversion of a site's real round: every local step, every batch, as trained.

The second pass (docs/ccpgd.md §10) attacks each method's *transmitted* update under the
run's real local training, not a single-image FedSGD step. The attacker is an
honest-but-curious coordinator that knows the architecture, the global weights it sent, the
number of local steps ``k``, the batch size ``B``, the learning rate and weight decay, and the
labels of the round's batches (the strong attacker of docs/privacy-audits.md). It does not
know which rows the site drew.

Attack (Geiping et al. 2020, multi-step variant): one dummy input per row the site drew, in
``k`` batches of the site's real sizes (``B``, or fewer for a batch that ends the site's
epoch when the site holds fewer than ``k * B`` rows); the site's ``k`` SGD steps are
simulated differentiably, step ``t`` on dummy batch ``t`` (:class:`RoundInverter`), and the
dummies are optimised so that the simulated update points the way the observed one does
(cosine distance + total variation, :mod:`medsilo.audit.inversion`). The simulation is plain
local SGD with weight decay: the attacker does not model CC-PGD's proximal steps, FedProx's
term, clipping or a codec, which is exactly what those defences bet on. Momentum and Adam
are refused (the simulation would be misspecified by construction, not by the defence).

Scoring: the site's *first batch* of the round is the target. Its first ``images`` rows are
matched to the closest dummies among all of them (Hungarian on MSE: which slot holds an
image does not matter to privacy), and an image counts as **reconstructed** when its SSIM is
at least 0.5 *and* its PSNR beats the mean-image guess, the PSNR of the site's training-set
mean image against it (:func:`reconstructed`). SSIM exists for images only, so for tabular
inputs the criterion is undefined and the share is NaN (the PSNR half alone is reported
beside it as ``beats_guess``).

The site's batches are replayed from the engine's seeded batch order
(:func:`round_batches`: the generator of :func:`medsilo.runtime.rounds.site_seed` feeding
:class:`medsilo.training.samples.BatchSampler`, as :func:`medsilo.training.local.train_local`
draws them); a test checks the replay against the rows the site really fetched.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.func import functional_call

from medsilo.audit.image_metrics import match_to_truth, psnr, ssim
from medsilo.audit.inversion import GradientInverter, InversionSettings
from medsilo.audit.inversion_audit import data_bounds, run_inverter
from medsilo.config import RunConfig
from medsilo.data.base import Task
from medsilo.runtime.prepared import PreparedFederation
from medsilo.runtime.rounds import site_seed
from medsilo.training.samples import BatchSampler
from medsilo.training.task import task_loss
from medsilo.training.tensors import in_memory
from medsilo.types import Weights

#: The success criterion's SSIM threshold (docs/ccpgd.md §10).
SSIM_THRESHOLD = 0.5


def reconstructed(psnr_db: float, ssim_value: float | None, guess_psnr_db: float) -> bool | None:
    """§10's criterion: SSIM >= 0.5 and PSNR above the mean-image guess; ``None`` without an
    SSIM (tabular inputs), where the criterion is not defined."""
    if ssim_value is None:
        return None
    return ssim_value >= SSIM_THRESHOLD and psnr_db > guess_psnr_db


class RoundInverter(GradientInverter):
    """A :class:`GradientInverter` whose simulated round takes step ``t`` on its own batch:
    ``x`` holds ``steps`` consecutive batches, of the sizes in :attr:`batch_sizes` when set
    (the site's real sizes: a batch that ends the site's epoch is shorter), else equal."""

    #: The size of each step's batch, in step order; ``None``: ``steps`` equal batches.
    batch_sizes: list[int] | None = None

    def split(self, total: int, steps: int) -> list[int]:
        """The batch sizes of a simulated round of ``steps`` steps on ``total`` inputs."""
        sizes = self.batch_sizes
        if sizes is None:
            if total % steps:
                raise ValueError(f"{total} dummy inputs do not split into {steps} equal batches")
            return [total // steps] * steps
        if len(sizes) != steps or sum(sizes) != total:
            raise ValueError(
                f"{total} dummy inputs do not split into {steps} batches of sizes {sizes}"
            )
        return sizes

    def simulate(self, x: torch.Tensor, y: torch.Tensor, steps: int) -> torch.Tensor:
        params = {n: t.clone().requires_grad_(True) for n, t in self.start.items()}
        task: Task = "binary" if self.binary else "multiclass"
        start = 0
        for size in self.split(len(x), steps):
            xb, yb = x[start : start + size], y[start : start + size]
            start += size
            buffers = {n: b.clone() for n, b in self.buffers.items()}
            loss = task_loss(functional_call(self.model, {**params, **buffers}, (xb,)), yb, task)
            grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
            params = {
                n: p - self.local_lr * (g + self.weight_decay * p)
                for (n, p), g in zip(params.items(), grads, strict=True)
            }
        return torch.cat([(params[n] - self.start[n]).reshape(-1) for n in self.param_names])


def round_batches(
    cfg: RunConfig, prep: PreparedFederation, site: str, rnd: int
) -> list[torch.Tensor]:
    """The rows ``site`` trained on in round ``rnd``, one tensor of indices per local step,
    drawn as the site's :class:`BatchSampler` drew them: when the round runs past the site's
    epoch (fewer rows than ``steps x batch``), the epoch's last batch is shorter and the next
    epoch is reshuffled, so the batches need not have equal sizes."""
    n = len(prep.train[site])
    index = prep.fed.site_names.index(site)
    steps = cfg.training.local().steps_for(n)
    generator = torch.Generator().manual_seed(site_seed(cfg.seed, rnd, index))
    sampler = BatchSampler(n, cfg.training.batch_size, generator)
    return [sampler.next() for _ in range(steps)]


def check_replayable(cfg: RunConfig) -> None:
    """Refuse runs whose rounds the attack cannot replay or simulate faithfully."""
    t = cfg.training
    if t.optimizer != "sgd" or t.momentum != 0:
        raise ValueError(
            "the round inversion simulates plain local SGD; this run uses "
            f"{t.optimizer} with momentum {t.momentum}"
        )
    if cfg.privacy.dp_sgd is not None:
        raise ValueError(
            "the round inversion replays the site's batch order, which DP-SGD's "
            "Poisson sampling does not follow"
        )
    if cfg.attack is not None:
        raise ValueError("the round inversion cannot replay a run with an attacking site")
    if cfg.governance.patient_consent is not None:
        raise ValueError("the round inversion cannot replay patient-level consent's row filter")
    if t.step is not None:
        raise ValueError("the round inversion simulates the task's loss, not training.step")


@dataclass(frozen=True)
class RoundAttack:
    """One attacked (site, round): per scored image, PSNR, SSIM, the guess's PSNR, success."""

    site: str
    round: int
    psnr: list[float]
    ssim: list[float | None]
    guess_psnr: list[float]
    cosine: float

    @property
    def successes(self) -> list[bool | None]:
        return [
            reconstructed(p, s, g)
            for p, s, g in zip(self.psnr, self.ssim, self.guess_psnr, strict=True)
        ]

    @property
    def beats_guess(self) -> list[bool]:
        return [p > g for p, g in zip(self.psnr, self.guess_psnr, strict=True)]


def attack_round(
    cfg: RunConfig,
    prep: PreparedFederation,
    site: str,
    rnd: int,
    global_weights: Weights,
    observed: Weights,
    images: int,
    attack: InversionSettings,
) -> RoundAttack:
    """Invert ``observed`` (``site``'s decoded update of round ``rnd``, computed from
    ``global_weights``) and score the first ``images`` rows of the round's first batch."""
    check_replayable(cfg)
    train = in_memory(prep.train[site], "the round inversion")
    batches = round_batches(cfg, prep, site, rnd)
    steps = len(batches)
    flat = torch.cat(batches)
    x_all = train.x[flat]
    labels = train.y[flat].clone()
    x_lo, x_hi = data_bounds(prep)
    inverter = run_inverter(cfg, prep, global_weights, RoundInverter)
    assert isinstance(inverter, RoundInverter)
    inverter.batch_sizes = [len(b) for b in batches]
    index = prep.fed.site_names.index(site)
    generator = torch.Generator().manual_seed(site_seed(cfg.seed, rnd, index) ^ 0x1A7E)
    input_shape = tuple(int(s) for s in train.x.shape[1:])
    result = inverter.reconstruct(
        inverter.observed_vector(observed, prep.layout),
        labels,
        input_shape,
        steps,
        attack,
        generator,
    )
    count = min(images, len(batches[0]))
    truth = x_all[:count].numpy()
    order = match_to_truth(result.images, truth)
    guess = train.x.mean(dim=0).numpy()
    span = x_hi - x_lo
    image_inputs = len(input_shape) == 3
    scores = [(result.images[order[i]], truth[i]) for i in range(count)]
    return RoundAttack(
        site=site,
        round=rnd,
        psnr=[psnr(r, t, span) for r, t in scores],
        ssim=[ssim(r, t, span) if image_inputs else None for r, t in scores],
        guess_psnr=[psnr(guess, t, span) for _, t in scores],
        cosine=result.cosine,
    )
