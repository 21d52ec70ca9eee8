"""The one local-training loop every algorithm shares.

Algorithms customise it through :class:`TrainHooks` (fl4health style: an extra loss term,
a gradient transform, a post-step projection) instead of copying the loop, so a fix here
reaches FedAvg, FedProx, SCAFFOLD, Ditto and CC-PGD at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

import torch
from torch import nn

from medsilo.data.base import Task
from medsilo.training.device import Precision, autocast, grad_scaler, model_device
from medsilo.training.samples import BatchSampler, Samples
from medsilo.training.task import task_loss

OptimizerName = Literal["sgd", "adam"]

#: A user's own training step (``training.step``): the mean loss of ``model`` on one batch
#: ``(x, y)``, returned before ``backward``. medsilo does the rest of the step (the
#: algorithm's extra loss, backward, the gradient hooks, the optimiser, the projection), so
#: FedProx, SCAFFOLD, CC-PGD and DP-SGD apply to a loss the user wrote.
LossStep = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


class PrivateTraining(Protocol):
    """A private replacement of the local-training loop (DP-SGD:
    :class:`medsilo.privacy.dp_sgd.DPSGDPlan`). Declared here and implemented by the privacy
    package, so this loop does not import it (the privacy package imports the loop)."""

    def train(
        self,
        model: nn.Module,
        data: Samples,
        cfg: LocalTraining,
        generator: torch.Generator,
        hooks: TrainHooks,
        steps: int | None = None,
    ) -> LocalStats: ...


@dataclass(frozen=True)
class LocalTraining:
    """How much and how a site trains per round. Exactly one of steps / epochs is set."""

    batch_size: int
    lr: float
    local_steps: int | None = None
    local_epochs: float | None = None
    optimizer: OptimizerName = "sgd"
    momentum: float = 0.0
    weight_decay: float = 0.0
    #: Sample-level DP-SGD (:class:`medsilo.privacy.dp_sgd.DPSGDPlan`), or ``None``.
    dp_sgd: PrivateTraining | None = None
    #: Mixed precision on CUDA (:mod:`medsilo.training.device`); the CPU always runs fp32.
    precision: Precision = "fp32"
    #: The user's batch loss (:data:`LossStep`), or ``None`` for the task's own loss.
    step: LossStep | None = None

    def batch_loss(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, task: Task
    ) -> torch.Tensor:
        """The loss of one batch: the user's step when there is one, else the task's loss."""
        if self.step is None:
            return task_loss(model(x), y, task)
        loss = self.step(model, x, y)
        if not isinstance(loss, torch.Tensor) or loss.dim() != 0 or not loss.requires_grad:
            raise ValueError(
                "training.step must return the batch's mean loss as a scalar tensor that "
                f"requires grad; it returned {type(loss).__name__}"
                + (f" of shape {tuple(loss.shape)}" if isinstance(loss, torch.Tensor) else "")
            )
        return loss

    def steps_for(self, num_examples: int) -> int:
        if self.local_steps is not None:
            return self.local_steps
        assert self.local_epochs is not None
        return max(1, math.ceil(self.local_epochs * num_examples / self.batch_size))


class TrainHooks:
    """No-op hooks; algorithms override the ones they need."""

    def extra_loss(self, model: nn.Module) -> torch.Tensor | None:
        return None

    def transform_gradients(self, model: nn.Module) -> None:
        return None

    def after_step(self, model: nn.Module) -> None:
        return None


@dataclass(frozen=True)
class LocalStats:
    steps: int
    examples: int
    mean_loss: float


def make_optimizer(model: nn.Module, cfg: LocalTraining) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def train_local(
    model: nn.Module,
    data: Samples,
    cfg: LocalTraining,
    generator: torch.Generator,
    hooks: TrainHooks | None = None,
    steps: int | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    sampler: BatchSampler | None = None,
) -> LocalStats:
    """Run ``steps`` (default: from ``cfg``) optimiser steps on ``data`` in place on ``model``.

    A federated site gets a fresh optimiser and batch order every round; centralised
    baselines pass their own ``optimizer`` and ``sampler`` to continue across chunks.
    """
    hooks = hooks or TrainHooks()
    if cfg.dp_sgd is not None:
        if optimizer is not None or sampler is not None:
            raise ValueError("DP-SGD draws its own Poisson batches and noisy optimiser")
        return cfg.dp_sgd.train(model, data, cfg, generator, hooks, steps)
    n_steps = steps if steps is not None else cfg.steps_for(len(data))
    optimizer = optimizer or make_optimizer(model, cfg)
    sampler = sampler or BatchSampler(len(data), cfg.batch_size, generator)
    device = model_device(model)
    scaler = grad_scaler(device, cfg.precision)
    model.train()
    total_loss = torch.zeros((), device=device)
    examples = 0
    for x, y in data.training_batches(sampler, n_steps):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, cfg.precision):
            loss = cfg.batch_loss(model, x, y, data.task)
        total_loss += loss.detach().float()
        extra = hooks.extra_loss(model)
        if extra is not None:
            loss = loss + extra
        if scaler is None:
            loss.backward()  # type: ignore[no-untyped-call]
            hooks.transform_gradients(model)
            optimizer.step()
        else:  # fp16: unscale first, so hooks see (and clip) the true gradients
            scaler.scale(loss).backward()  # type: ignore[no-untyped-call]
            scaler.unscale_(optimizer)
            hooks.transform_gradients(model)
            scaler.step(optimizer)
            scaler.update()
        hooks.after_step(model)
        examples += int(y.shape[0])
    return LocalStats(n_steps, examples, float(total_loss) / max(n_steps, 1))
