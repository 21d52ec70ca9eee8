"""Gradient inversion ("Inverting Gradients", Geiping, Bauermeister, Droege and Moeller 2020).

Threat model: an honest-but-curious coordinator knows the global weights ``w0`` it sent, the
site's local hyper-parameters (learning rate, weight decay, number of local steps) and the
labels of the victim batch (or infers a single image's label, below). It observes the site's
update ``Δ`` (what :func:`medsilo.audit.observed.observe_update` returns) and looks for inputs
``x'`` whose *simulated* update ``Δ(x')`` points the same way:

    min_x'  1 - <Δ(x'), Δ> / (||Δ(x')|| ||Δ||)  +  α · TV(x'),   x' kept inside the data range

* ``Δ(x')`` unrolls the site's ``k`` full-batch SGD steps differentiably
  (``w_{t+1} = w_t - η (∇L(w_t; x', y) + λ_wd w_t)``, ``Δ = w_k - w0``), so ``k = 1`` is
  FedSGD and ``k > 1`` the multi-step FedAvg case of the paper. Only trainable entries count.
* The cosine loss is blind to the update's scale, so norm clipping (DP-FedAvg's site half)
  does not hinder it; additive noise, sparsification and projections do.
* ``TV(x') = mean|x'_{i+1,j} - x'_{i,j}| + mean|x'_{i,j+1} - x'_{i,j}|`` (anisotropic total
  variation) is the image prior; it is switched off for non-image (tabular) inputs.
* The optimiser is Adam on the *sign* of the gradient (the paper's choice, robust to the
  tiny and badly scaled gradients of the cosine objective), learning rate ``lr`` divided by
  10 at 3/8, 5/8 and 7/8 of the iterations, ``x'`` clamped to ``[lo, hi]`` after every step,
  initialised from a standard normal. With ``restarts > 1`` the candidate with the lowest
  final objective wins.

Label inference (iDLG, Zhao, Mopuri and Bilen 2020) for a single image: the last layer's bias
gradient of the cross-entropy is ``softmax(z) - onehot(y)``, negative only at the true class,
so the true class is where the transmitted update ``-η·grad`` of that bias is largest; for one
logit with BCE the update is positive iff ``y = 1``. Needs a final bias (every zoo model has
one) and a positive multiple of the gradient (clipping and CC-PGD's shrinkage keep the sign;
noise may not).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from medsilo.models.weights import Layout
from medsilo.training.task import task_loss
from medsilo.types import Weights


@dataclass(frozen=True)
class InversionSettings:
    iterations: int = 400
    lr: float = 0.1
    tv_weight: float = 1e-2
    restarts: int = 1
    signed: bool = True


@dataclass(frozen=True)
class Reconstruction:
    images: np.ndarray
    objective: float
    cosine: float


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Anisotropic TV of a batch of (C, H, W) images (mean absolute neighbour differences)."""
    dh = (x[..., 1:, :] - x[..., :-1, :]).abs().mean()
    dw = (x[..., :, 1:] - x[..., :, :-1]).abs().mean()
    return dh + dw


def _cosine_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    similarity: torch.Tensor = torch.dot(a, b) / (a.norm() * b.norm() + 1e-12)
    return 1.0 - similarity


class GradientInverter:
    """Simulates a site's local SGD steps differentiably and inverts an observed update."""

    def __init__(
        self,
        model: nn.Module,
        layout: Layout,
        global_weights: Weights,
        binary: bool,
        local_lr: float,
        weight_decay: float = 0.0,
        bounds: tuple[float, float] = (-np.inf, np.inf),
    ) -> None:
        self.model = model
        self.binary = binary
        self.local_lr = local_lr
        self.weight_decay = weight_decay
        self.bounds = bounds
        by_name = dict(zip(layout.names, global_weights, strict=True))
        self.param_names = [n for n, p in model.named_parameters() if p.requires_grad]
        self.start = {n: torch.tensor(by_name[n], dtype=torch.float32) for n in self.param_names}
        # Buffers and frozen parameters (a LoRA backbone) are constants of the simulation.
        frozen = [(n, p) for n, p in model.named_parameters() if not p.requires_grad]
        self.buffers = {
            n: torch.tensor(by_name[n]) if n in by_name else b.detach().clone()
            for n, b in [*model.named_buffers(), *frozen]
        }

    def observed_vector(self, observed: Weights, layout: Layout) -> torch.Tensor:
        """The trainable entries of an observed update, flattened in parameter order."""
        by_name = dict(zip(layout.names, observed, strict=True))
        return torch.cat(
            [torch.as_tensor(by_name[n], dtype=torch.float32).reshape(-1) for n in self.param_names]
        )

    def simulate(self, x: torch.Tensor, y: torch.Tensor, steps: int) -> torch.Tensor:
        """Flattened ``w_k - w0`` after ``steps`` full-batch SGD steps on ``(x, y)``."""
        params = {n: t.clone().requires_grad_(True) for n, t in self.start.items()}
        for _ in range(steps):
            buffers = {n: b.clone() for n, b in self.buffers.items()}
            logits = functional_call(self.model, {**params, **buffers}, (x,))
            loss = task_loss(logits, y, "binary" if self.binary else "multiclass")
            grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
            params = {
                n: p - self.local_lr * (g + self.weight_decay * p)
                for (n, p), g in zip(params.items(), grads, strict=True)
            }
        return torch.cat([(params[n] - self.start[n]).reshape(-1) for n in self.param_names])

    def infer_label(self, observed: Weights, layout: Layout) -> int:
        """iDLG: the label of a single image from the sign pattern of the last bias update."""
        bias_name = next((n for n in reversed(self.param_names) if self.start[n].ndim == 1), None)
        if bias_name is None:
            raise ValueError("iDLG label inference needs a final bias; pass the labels")
        bias = np.asarray(observed[layout.names.index(bias_name)], dtype=np.float64)
        if self.binary:
            return int(bias[0] > 0)
        return int(np.argmax(bias))

    def reconstruct(
        self,
        observed: torch.Tensor,
        labels: torch.Tensor,
        input_shape: tuple[int, ...],
        steps: int,
        settings: InversionSettings,
        generator: torch.Generator,
    ) -> Reconstruction:
        best: Reconstruction | None = None
        for _ in range(settings.restarts):
            candidate = self._one_restart(observed, labels, input_shape, steps, settings, generator)
            if best is None or candidate.objective < best.objective:
                best = candidate
        assert best is not None
        return best

    def _one_restart(
        self,
        observed: torch.Tensor,
        labels: torch.Tensor,
        input_shape: tuple[int, ...],
        steps: int,
        settings: InversionSettings,
        generator: torch.Generator,
    ) -> Reconstruction:
        lo, hi = self.bounds
        shape = (len(labels), *input_shape)
        x = torch.randn(shape, generator=generator).clamp_(lo, hi).requires_grad_(True)
        opt = torch.optim.Adam([x], lr=settings.lr)
        n = settings.iterations
        milestones = sorted({max(1, int(n * f)) for f in (3 / 8, 5 / 8, 7 / 8)})
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=milestones, gamma=0.1)
        use_tv = settings.tv_weight > 0 and len(input_shape) == 3
        for _ in range(n):
            opt.zero_grad(set_to_none=True)
            objective = self._objective(x, labels, observed, steps, settings.tv_weight, use_tv)
            objective.backward()  # type: ignore[no-untyped-call]
            if settings.signed and x.grad is not None:
                x.grad.sign_()
            opt.step()
            sched.step()
            with torch.no_grad():
                x.clamp_(lo, hi)
        distance = float(_cosine_distance(self.simulate(x, labels, steps), observed).detach())
        tv = float(total_variation(x.detach())) if use_tv else 0.0
        final = distance + settings.tv_weight * tv
        return Reconstruction(x.detach().numpy().copy(), final, 1.0 - distance)

    def _objective(
        self,
        x: torch.Tensor,
        labels: torch.Tensor,
        observed: torch.Tensor,
        steps: int,
        tv_weight: float,
        use_tv: bool,
    ) -> torch.Tensor:
        loss = _cosine_distance(self.simulate(x, labels, steps), observed)
        if use_tv:
            loss = loss + tv_weight * total_variation(x)
        return loss
