"""Server-side optimisers (Reddi et al. 2021, "Adaptive Federated Optimization").

The aggregated site delta is treated as a pseudo-gradient. Plain SGD with lr 1 is FedAvg;
momentum gives FedAvgM (Hsu et al. 2019); Adam and Yogi adapt per-coordinate step sizes,
which helps when sites disagree in scale (FLamby finds them best on Fed-Heart-Disease).
Only trainable entries are optimised: normalisation running statistics are averaged plainly.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from medsilo.models.weights import Layout
from medsilo.types import Weights


class ServerOptimizer(ABC):
    def step(self, weights: Weights, delta: Weights, layout: Layout) -> Weights:
        out: Weights = []
        for i, (w, d, trainable) in enumerate(zip(weights, delta, layout.trainable, strict=True)):
            out.append((w + self._direction(i, d)).astype(w.dtype) if trainable else w + d)
        return out

    @abstractmethod
    def _direction(self, index: int, delta: np.ndarray) -> np.ndarray: ...

    def state(self) -> dict[str, Weights]:
        """Optimiser moments, for checkpointing."""
        return {}

    def load_state(self, state: dict[str, Weights]) -> None:
        return None


class ServerSGD(ServerOptimizer):
    def __init__(self, lr: float = 1.0) -> None:
        self.lr = lr

    def _direction(self, index: int, delta: np.ndarray) -> np.ndarray:
        return np.asarray(self.lr * delta)


class _Moments(ServerOptimizer):
    """Keeps first/second moments per weight entry, allocated lazily."""

    def __init__(self) -> None:
        self.m: dict[int, np.ndarray] = {}
        self.v: dict[int, np.ndarray] = {}

    def state(self) -> dict[str, Weights]:
        keys = sorted(self.m)
        return {
            "index": [np.asarray(keys, dtype=np.int64)],
            "m": [self.m[k] for k in keys],
            "v": [self.v[k] for k in keys if k in self.v],
        }

    def load_state(self, state: dict[str, Weights]) -> None:
        if not state:
            return
        keys = [int(k) for k in state["index"][0]]
        self.m = dict(zip(keys, state["m"], strict=True))
        self.v = dict(zip(keys, state["v"], strict=False)) if state["v"] else {}


class FedAvgM(_Moments):
    def __init__(self, lr: float = 1.0, momentum: float = 0.9) -> None:
        super().__init__()
        self.lr = lr
        self.momentum = momentum

    def _direction(self, index: int, delta: np.ndarray) -> np.ndarray:
        m = self.m.get(index, np.zeros_like(delta))
        m = self.momentum * m + delta
        self.m[index] = m
        return np.asarray(self.lr * m)


class FedAdam(_Moments):
    def __init__(
        self, lr: float = 0.01, beta1: float = 0.9, beta2: float = 0.99, tau: float = 1e-3
    ) -> None:
        super().__init__()
        self.lr, self.beta1, self.beta2, self.tau = lr, beta1, beta2, tau

    def _second_moment(self, v: np.ndarray, delta: np.ndarray) -> np.ndarray:
        return np.asarray(self.beta2 * v + (1 - self.beta2) * delta**2)

    def _direction(self, index: int, delta: np.ndarray) -> np.ndarray:
        m = self.beta1 * self.m.get(index, np.zeros_like(delta)) + (1 - self.beta1) * delta
        v = self._second_moment(self.v.get(index, np.zeros_like(delta)), delta)
        self.m[index], self.v[index] = m, v
        return np.asarray(self.lr * m / (np.sqrt(v) + self.tau))


class FedYogi(FedAdam):
    """Adam with Yogi's additive second-moment update, which grows v more cautiously."""

    def _second_moment(self, v: np.ndarray, delta: np.ndarray) -> np.ndarray:
        d2 = delta**2
        return np.asarray(v - (1 - self.beta2) * d2 * np.sign(v - d2))
