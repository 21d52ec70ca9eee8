"""Turn validated config sections into algorithm, server-optimiser and codec objects."""

from __future__ import annotations

from dataclasses import replace

from torch import nn

from medsilo.aggregation.server_optimizers import (
    FedAdam,
    FedAvgM,
    FedYogi,
    ServerOptimizer,
    ServerSGD,
)
from medsilo.algorithms.base import Algorithm
from medsilo.algorithms.ccpgd import CCPGD
from medsilo.algorithms.compatibility import algorithm_problem
from medsilo.algorithms.ditto import Ditto
from medsilo.algorithms.dp_fedavg import DPFedAvg
from medsilo.algorithms.fedprox import FedProx
from medsilo.algorithms.registry import ALGORITHM_CLASSES
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
from medsilo.imports import ImportPathError, load_object
from medsilo.models.batch_norm import has_batch_norm
from medsilo.privacy.accounting import client_dp_noise, noise_group
from medsilo.privacy.client_dp import ClientDP
from medsilo.privacy.dp_sgd import dp_sgd_plan
from medsilo.training.local import LocalTraining, LossStep


def build_run_algorithm(cfg: RunConfig, num_sites: int) -> Algorithm:
    """The algorithm ``cfg`` names, for a federation of ``num_sites`` sites, inside
    client-level DP when the run has it (its noise calibration and local noise shares
    depend on the cohort)."""
    client = cfg.client_dp()
    if client is None:
        return build_algorithm(cfg.algorithm, cfg.seed)
    noise_multiplier = client_dp_noise(cfg, num_sites)
    cohort = noise_group(cfg, num_sites)
    if isinstance(cfg.algorithm, DPFedAvgConfig):
        return DPFedAvg(
            client.clip, noise_multiplier, cfg.seed, client.noise, client.adaptive_clip, cohort
        )
    return ClientDP(
        build_algorithm(cfg.algorithm),
        client.clip,
        noise_multiplier,
        cfg.seed,
        client.noise,
        client.adaptive_clip,
        cohort,
    )


def refuse_incompatible(
    cfg: RunConfig, algorithm: Algorithm, model: nn.Module | None = None
) -> None:
    """Refuse ``algorithm`` (the one ``cfg`` names, or one given to a runtime in its place,
    e.g. written in a study's or a test's own module) when its capabilities do not allow
    what ``cfg`` asks, with the message config validation gives for a named algorithm.

    Config validation knows a named model's BatchNorm only statically; given the built
    ``model``, its layers answer instead (a user's factory, ``model.kwargs`` that change a
    network's ``norm``): the engine, the Flower ServerApp and preflight pass it."""
    features = replace(cfg.features(), algorithm=algorithm.name, wraps_client_dp=False)
    if model is not None:
        features = replace(features, model_has_batch_norm=has_batch_norm(model))
    problem = algorithm_problem(algorithm.capabilities, features)
    if problem is not None:
        raise ValueError(problem)


def site_training(cfg: RunConfig) -> LocalTraining:
    """How every site trains: ``training`` plus DP-SGD when ``privacy.dp_sgd`` is set."""
    step = None if cfg.training.step is None else load_training_step(cfg.training.step)
    return replace(
        cfg.training.local(), dp_sgd=dp_sgd_plan(cfg.privacy, cfg.training.rounds), step=step
    )


def load_training_step(path: str) -> LossStep:
    """The user's training step ``path`` names (:data:`medsilo.training.local.LossStep`)."""
    step = load_object(path, "training.step")
    if not callable(step):
        raise ImportPathError(
            f"training.step {path!r} is {type(step).__name__}, not a function (model, x, y) -> loss"
        )
    return step


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
    if cfg.name not in ALGORITHM_CLASSES:
        raise ValueError(f"{cfg.name!r} is a baseline, not a federated algorithm")
    return ALGORITHM_CLASSES[cfg.name]()  # the algorithms without settings


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
