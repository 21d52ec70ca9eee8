"""Turn validated config sections into algorithm, server-optimiser and codec objects."""

from __future__ import annotations

from medsilo.aggregation.server_optimizers import (
    FedAdam,
    FedAvgM,
    FedYogi,
    ServerOptimizer,
    ServerSGD,
)
from medsilo.algorithms.base import Algorithm
from medsilo.algorithms.ccpgd import CCPGD
from medsilo.algorithms.ditto import Ditto
from medsilo.algorithms.dp_fedavg import DPFedAvg
from medsilo.algorithms.fedavg import FedAvg
from medsilo.algorithms.fedbn import FedBN
from medsilo.algorithms.fednova import FedNova
from medsilo.algorithms.fedprox import FedProx
from medsilo.algorithms.scaffold import Scaffold
from medsilo.compression.codecs import QSGD, Codec, Fp16, Int8, NoCompression, PowerSGD, TopK
from medsilo.config import (
    AlgorithmConfig,
    CCPGDConfig,
    CompressionConfig,
    DittoConfig,
    DPFedAvgConfig,
    FedAdamConfig,
    FedAvgMConfig,
    FedProxConfig,
    PowerSGDConfig,
    QSGDConfig,
    RunConfig,
    ServerOptimizerConfig,
    TopKConfig,
)


def build_run_algorithm(cfg: RunConfig, num_sites: int) -> Algorithm:
    """The algorithm ``cfg`` names, for a federation of ``num_sites`` sites (DP-FedAvg's
    noise calibration and local noise shares depend on the cohort)."""
    if isinstance(cfg.algorithm, DPFedAvgConfig):
        from medsilo.privacy.ledger import build_dp_fedavg  # it imports the runtime

        return build_dp_fedavg(cfg, num_sites)
    return build_algorithm(cfg.algorithm, cfg.seed)


def build_algorithm(cfg: AlgorithmConfig, seed: int = 0) -> Algorithm:
    """``seed`` feeds algorithms with coordinator-side randomness (DP-FedAvg's noise)."""
    if isinstance(cfg, CCPGDConfig):
        return CCPGD(lam=cfg.lam, mu=cfg.mu, rho=cfg.rho, kappa=cfg.kappa, eps=cfg.eps)
    if isinstance(cfg, DPFedAvgConfig):
        if cfg.noise_multiplier == "auto":
            raise ValueError("noise_multiplier 'auto' needs the whole run: build_run_algorithm")
        return DPFedAvg(
            clip=cfg.clip,
            noise_multiplier=cfg.noise_multiplier,
            seed=seed,
            noise=cfg.noise,
            adaptive=cfg.adaptive_clip,
        )
    if isinstance(cfg, FedProxConfig):
        return FedProx(mu=cfg.mu)
    if isinstance(cfg, DittoConfig):
        return Ditto(lam=cfg.lam)
    simple: dict[str, type[Algorithm]] = {
        "fedavg": FedAvg,
        "scaffold": Scaffold,
        "fednova": FedNova,
        "fedbn": FedBN,
    }
    if cfg.name not in simple:
        raise ValueError(f"{cfg.name!r} is a baseline, not a federated algorithm")
    return simple[cfg.name]()


def build_server_optimizer(cfg: ServerOptimizerConfig) -> ServerOptimizer:
    if isinstance(cfg, FedAvgMConfig):
        return FedAvgM(lr=cfg.lr, momentum=cfg.momentum)
    if isinstance(cfg, FedAdamConfig):
        cls = FedYogi if cfg.name == "yogi" else FedAdam
        return cls(lr=cfg.lr, beta1=cfg.beta1, beta2=cfg.beta2, tau=cfg.tau)
    return ServerSGD(lr=cfg.lr)


def build_codec(cfg: CompressionConfig) -> Codec:
    if isinstance(cfg, TopKConfig):
        return TopK(fraction=cfg.k)
    if isinstance(cfg, QSGDConfig):
        return QSGD(levels=cfg.levels, bucket=cfg.bucket)
    if isinstance(cfg, PowerSGDConfig):
        return PowerSGD(rank=cfg.rank)
    return {"fp16": Fp16, "int8": Int8}.get(cfg.codec, NoCompression)()
