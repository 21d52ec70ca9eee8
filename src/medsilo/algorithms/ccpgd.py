"""CC-PGD: confidential-computing-aware projected (proximal) gradient descent.

Site ``i`` starts a round from the global weights ``w0`` and runs local SGD on

    F_i(w) = L_i(w) + lam * (1 + kappa * e_i) * P(u) + mu * ||u||_1,   u = w - w0,
    subject to ||u||_2 <= rho,

* ``L_i``: the site's training loss;
* ``P(u) = ||a||_1 * R(u)``: the privacy term, the leakage risk ``R`` of
  :mod:`medsilo.confidential.leakage` (``1 - H(p)/log d`` over smoothed magnitudes
  ``a_j = sqrt(u_j^2 + eps^2)``) weighted by the update's l1 mass. Its gradient is
  ``sign(u_j) * log(d p_j) / log d``: large coordinates are shrunk, small ones grown, so the
  update's magnitudes are spread out; it is bounded (up to the ``eps`` floor) whereas the
  gradient of the scale-invariant ``R`` alone grows like ``1/||u||_1`` and explodes at the
  start of every round, where ``u = 0``;
* ``e_i`` in {0, 1}: the site's TEE-exploit indicator from its platform record
  (:func:`medsilo.confidential.vulnerabilities.exploit_indicator`); an exposed site gets the
  ``(1 + kappa)``-times stronger privacy penalty;
* ``mu * ||u||_1``: differentiable-almost-everywhere surrogate of the encoded size, handled
  by its proximal operator (soft-thresholding ``u`` by ``lr * mu`` after each SGD step), which
  produces exact zeros that :mod:`medsilo.wire` sends sparsely;
* the constraint is enforced by projecting ``u`` onto the l2 ball of radius ``rho`` after the
  soft-threshold. For this pair, ``project(soft(u))`` is exactly the proximal operator of
  ``mu*||u||_1 + indicator(||u|| <= rho)``, so a local step is one proximal-gradient step.

The derivation, the choices and how they differ from the (unpublished) paper formulas are in
``docs/ccpgd.md``. Needs plain SGD (no momentum) for the prox step to be the textbook one.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from medsilo.algorithms.base import Algorithm, SiteTask, make_update, train_from, trainable_pairs
from medsilo.algorithms.capabilities import Capabilities
from medsilo.confidential.leakage import leakage_risk, smooth_leakage_risk, sparsity
from medsilo.models.weights import set_weights
from medsilo.training.local import TrainHooks
from medsilo.types import Update, Weights, global_norm


def privacy_penalty(u: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``P(u) = ||a||_1 * R(u)`` with smoothed magnitudes ``a`` (see module docstring)."""
    a_sum = torch.sqrt(u * u + eps * eps).sum()
    return a_sum * smooth_leakage_risk(u, eps)


class CCPGDHooks(TrainHooks):
    """The CC-PGD terms as hooks on the shared training loop.

    ``radii`` (when ``record`` is set) holds ``||w - w0||_2`` after every step, for tests.
    """

    def __init__(
        self,
        pairs: list[tuple[nn.Parameter, torch.Tensor]],
        lam: float,
        mu: float,
        rho: float,
        lr: float,
        eps: float = 1e-8,
        record: bool = False,
    ) -> None:
        self.pairs = pairs
        self.lam = lam
        self.mu = mu
        self.rho = rho
        self.lr = lr
        self.eps = eps
        self.record = record
        self.radii: list[float] = []
        self.projected_steps = 0
        self.steps = 0

    def _update(self) -> torch.Tensor:
        return torch.cat([(p - a).reshape(-1) for p, a in self.pairs])

    def _sent_norm(self) -> float:
        """``||w - w0||_2`` of the update as it is sent: float32 differences, summed in float64.

        ``make_update`` subtracts in float32 exactly as ``p - a`` does here, so this is the
        norm a sensitivity argument about the transmitted update would rely on.
        """
        return float(torch.sqrt(sum((p - a).double().pow(2).sum() for p, a in self.pairs)))  # type: ignore[arg-type]

    def extra_loss(self, model: nn.Module) -> torch.Tensor | None:
        if self.lam == 0:
            return None
        return self.lam * privacy_penalty(self._update(), self.eps)

    @torch.no_grad()
    def after_step(self, model: nn.Module) -> None:
        self.steps += 1
        threshold = self.lr * self.mu
        if threshold > 0 or self._sent_norm() > self.rho:
            self._prox_and_project(threshold)
        # else: nothing to shrink or project, so the weights are left exactly as SGD wrote
        # them; with lam = mu = 0 and an inactive ball CC-PGD is FedAvg bit for bit.
        if self.record:
            self.radii.append(self._sent_norm())

    def _prox_and_project(self, threshold: float) -> None:
        """Soft-threshold ``u`` by ``threshold``, then scale it into the ball of radius ``rho``.

        The arithmetic is done in float64 on the exact differences; writing back to float32
        rounds, which can push the sent norm a few ulps above ``rho``. The scale is then
        shrunk until the norm of the update as sent is at most ``rho``, so the ball can serve
        as a sensitivity bound.
        """
        deltas = []
        for p, a in self.pairs:
            u = p.double() - a.double()  # exact: both are float32
            if threshold > 0:
                u = torch.sign(u) * torch.clamp(u.abs() - threshold, min=0.0)
            deltas.append(u)
        norm = float(torch.sqrt(sum(u.pow(2).sum() for u in deltas)))  # type: ignore[arg-type]
        scale = 1.0
        if norm > self.rho:
            scale = self.rho / norm
            self.projected_steps += 1
        for _ in range(64):
            for (p, a), u in zip(self.pairs, deltas, strict=True):
                p.copy_(a.double() + u * scale)
            sent = self._sent_norm()
            if sent <= self.rho:
                return
            scale *= (self.rho / sent) * (1.0 - 2.0**-23)
        raise RuntimeError(f"CC-PGD could not round the update into the ball of radius {self.rho}")


class CCPGD(Algorithm):
    name: ClassVar[str] = "ccpgd"
    capabilities: Capabilities = Capabilities(requires_sgd=True, requires_no_momentum=True)

    def __init__(
        self,
        lam: float = 0.05,
        mu: float = 0.005,
        rho: float = 5.0,
        kappa: float = 1.0,
        eps: float = 1e-8,
    ) -> None:
        for knob, value in (("lam", lam), ("mu", mu), ("kappa", kappa)):
            if value < 0:
                raise ValueError(f"CC-PGD {knob} must be >= 0, got {value}")
        if rho <= 0 or eps <= 0:
            raise ValueError(f"CC-PGD rho and eps must be > 0, got rho={rho}, eps={eps}")
        self.lam = lam
        self.mu = mu
        self.rho = rho
        self.kappa = kappa
        self.eps = eps

    def hooks_for(self, task: SiteTask, global_weights: Weights) -> CCPGDHooks:
        set_weights(task.model, global_weights)
        lam = self.lam * (1.0 + self.kappa * task.exploit_indicator)
        return CCPGDHooks(
            trainable_pairs(task.model, task.layout, global_weights),
            lam=lam,
            mu=self.mu,
            rho=self.rho,
            lr=task.training.lr,
            eps=self.eps,
        )

    def local_update(
        self, task: SiteTask, global_weights: Weights, payload: dict[str, Weights]
    ) -> Update:
        hooks = self.hooks_for(task, global_weights)
        local, stats = train_from(task, global_weights, hooks)
        update = make_update(task, global_weights, local, stats)
        update.metrics.update(
            leakage=leakage_risk(update.delta),
            sparsity=sparsity(update.delta),
            exploit_indicator=float(task.exploit_indicator),
            projected_share=hooks.projected_steps / max(hooks.steps, 1),
            update_norm=global_norm(update.delta),
        )
        return update
