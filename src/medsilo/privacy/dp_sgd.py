"""Sample-level DP-SGD (Abadi et al. 2016) of a site's local training, through Opacus.

Each optimiser step:

1. draws a Poisson batch: every one of the site's ``n`` examples joins independently with
   probability ``q = batch_size / n`` (from the site's seeded generator, so runs are
   reproducible; the batch may be empty);
2. computes per-example gradients with Opacus' ``GradSampleModule``;
3. lets Opacus' ``DPOptimizer`` clip each to l2 norm ``max_grad_norm`` (``C``), sum them,
   add ``N(0, (sigma C)^2)`` and divide by the expected batch size ``q n``;
4. adds the gradient of a data-independent extra loss term (FedProx's proximal term),
   which costs no privacy, and takes the wrapped optimiser's step.

One step is the sampled Gaussian mechanism, so ``k`` steps are accounted (by
:mod:`medsilo.privacy.accountant`) as ``SelfComposed(PoissonSampled(q, Gaussian(sigma)), k)``
for that site's examples. Sites hold disjoint data, so an example's guarantee is its own
site's; the federation's is the maximum over sites. The unit of privacy is one example
(one patient record), not one site: a site's update is released without client-level noise.

``noise_multiplier: auto`` calibrates ``sigma`` per site so that after every planned round
(``rounds * steps_per_round`` steps, as if sampled every round) the site's epsilon is the
budget; the site and the coordinator's ledger compute the same value from the config and
the site's ``n``.

BatchNorm mixes examples within a batch and has no per-example gradient; models with it
are refused (config validation for named models such as ``cnn_bn`` or ``resnet18``, the built
model for a user's factory, Opacus' ``ModuleValidator`` for anything else) unless
``model.batch_norm: group_norm`` converts them (:mod:`medsilo.models.batch_norm`).

The loop runs on the model's device; on a GPU Opacus draws its noise from a generator on
that device seeded from the site's (:func:`noise_generator`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import nn

from medsilo.privacy.accountant import calibrate_noise_multiplier
from medsilo.privacy.config import PrivacyConfig
from medsilo.training.device import model_device
from medsilo.training.local import LocalStats, LocalTraining, TrainHooks, make_optimizer
from medsilo.training.samples import Samples


@dataclass(frozen=True)
class DPSGDPlan:
    """DP-SGD settings of a run, resolved from its ``privacy`` section."""

    max_grad_norm: float
    #: ``None``: calibrate per site to ``target_epsilon`` over ``rounds``.
    noise_multiplier: float | None
    delta: float
    rounds: int
    target_epsilon: float | None = None

    @staticmethod
    def sampling_rate(n: int, batch_size: int) -> float:
        return min(1.0, batch_size / n)

    def sigma(self, n: int, batch_size: int, steps_per_round: int) -> float:
        """The noise multiplier a site with ``n`` examples uses."""
        if self.noise_multiplier is not None:
            return self.noise_multiplier
        assert self.target_epsilon is not None, "auto noise needs a target epsilon"
        return calibrate_noise_multiplier(
            self.target_epsilon,
            self.sampling_rate(n, batch_size),
            self.rounds * steps_per_round,
            self.delta,
        )

    def train(
        self,
        model: nn.Module,
        data: Samples,
        cfg: LocalTraining,
        generator: torch.Generator,
        hooks: TrainHooks,
        steps: int | None = None,
    ) -> LocalStats:
        """Local training under this plan (:func:`train_local_dp`); what
        :func:`medsilo.training.local.train_local` runs for a DP-SGD site."""
        return train_local_dp(model, data, cfg, self, generator, hooks, steps)


def dp_sgd_plan(privacy: PrivacyConfig, rounds: int) -> DPSGDPlan | None:
    """The plan of a run's ``privacy`` section over ``rounds`` planned rounds, or ``None``."""
    dp = privacy.dp_sgd
    if dp is None:
        return None
    return DPSGDPlan(
        max_grad_norm=dp.max_grad_norm,
        noise_multiplier=None if dp.noise_multiplier == "auto" else dp.noise_multiplier,
        delta=privacy.delta,
        rounds=rounds,
        target_epsilon=privacy.target_epsilon,
    )


def check_model(model: nn.Module) -> None:
    """Refuse a model Opacus cannot compute per-example gradients for, saying why."""
    from opacus.validators import ModuleValidator  # Opacus loads only for DP-SGD runs

    errors = ModuleValidator.validate(model, strict=False)
    if errors:
        raise ValueError(
            "DP-SGD needs per-example gradients, which this model does not allow: "
            + "; ".join(str(e) for e in errors)
        )


def noise_generator(generator: torch.Generator, device: torch.device) -> torch.Generator:
    """The stream Opacus draws noise from: the site's own generator on the CPU; on a GPU
    (where a CPU generator cannot draw) a generator there, seeded from the site's."""
    if device.type == "cpu":
        return generator
    seed = int(torch.randint(2**62, (1,), generator=generator))
    return torch.Generator(device=device).manual_seed(seed)


def train_local_dp(
    model: nn.Module,
    data: Samples,
    cfg: LocalTraining,
    plan: DPSGDPlan,
    generator: torch.Generator,
    hooks: TrainHooks,
    steps: int | None = None,
) -> LocalStats:
    """``steps`` (default: from ``cfg``) DP-SGD steps on ``data``, in place on ``model``."""
    from opacus.grad_sample import GradSampleModule
    from opacus.optimizers import DPOptimizer

    model.train()
    check_model(model)
    n = len(data)
    if n == 0:
        raise ValueError("cannot train on a site with no examples")
    per_round = cfg.steps_for(n)
    if steps is not None and steps != per_round:
        raise ValueError(
            f"DP-SGD is accounted at {per_round} steps a round; an algorithm asked for {steps}"
        )
    q = plan.sampling_rate(n, cfg.batch_size)
    device = model_device(model)
    params = [p for p in model.parameters() if p.requires_grad]
    wrapped = GradSampleModule(model, batch_first=True, loss_reduction="mean")
    try:
        optimizer = DPOptimizer(
            make_optimizer(model, cfg),
            noise_multiplier=plan.sigma(n, cfg.batch_size, per_round),
            max_grad_norm=plan.max_grad_norm,
            expected_batch_size=max(1, round(q * n)),
            generator=noise_generator(generator, device),
        )
        total_loss = torch.zeros((), device=device)
        examples = nonempty = 0
        for _ in range(per_round):
            idx = torch.nonzero(torch.rand(n, generator=generator) < q).flatten()
            optimizer.zero_grad(set_to_none=True)
            if len(idx) > 0:
                x, y = data.fetch(idx)
                x, y = x.to(device), y.to(device)
                loss = cfg.batch_loss(wrapped, x, y, data.task)
                with warnings.catch_warnings():
                    # Opacus' hooks on the first layer: inputs need no gradient (harmless).
                    warnings.filterwarnings("ignore", "Full backward hook is firing")
                    loss.backward()  # type: ignore[no-untyped-call]
                total_loss += loss.detach()
                nonempty += 1
            else:  # an empty Poisson batch still releases noise
                for p in params:
                    p.grad_sample = torch.zeros((0, *p.shape), dtype=p.dtype, device=p.device)  # type: ignore[attr-defined]
            extra = hooks.extra_loss(model)
            if optimizer.pre_step():  # clip, sum, noise, scale (Opacus)
                if extra is not None:
                    for p, g in zip(params, torch.autograd.grad(extra, params), strict=True):
                        assert p.grad is not None
                        p.grad += g
                hooks.transform_gradients(model)
                optimizer.original_optimizer.step()
            hooks.after_step(model)
            examples += len(idx)
        optimizer.zero_grad(set_to_none=True)
    finally:
        wrapped._close()
    return LocalStats(per_round, examples, float(total_loss) / max(nonempty, 1))
