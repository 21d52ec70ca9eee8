"""Every refusal of an algorithm by the rest of a run, derived from its capabilities.

Config validation (:mod:`medsilo.config`) calls :func:`algorithm_problem` with the
capabilities of the algorithm a config names; a runtime handed an algorithm object calls it
with that object's own capabilities, so an algorithm written outside the package is
accepted or refused by the same rules and messages. The run is described by
:class:`RunFeatures`, plain values, so this module needs nothing from the config module
that imports it.
"""

from __future__ import annotations

from dataclasses import dataclass

from medsilo.algorithms.capabilities import Capabilities, with_client_dp
from medsilo.algorithms.registry import algorithms_where

#: Robust rules that replace the algorithm's mean by a coordinate-wise statistic.
COORDINATE_WISE_RULES = ("median", "trimmed_mean", "bulyan")


@dataclass(frozen=True)
class RunFeatures:
    """What a run asks of its algorithm (built by :meth:`medsilo.config.RunConfig.features`)."""

    algorithm: str
    optimizer: str = "sgd"
    momentum: float = 0.0
    #: How messages name the model (``'cnn'``, ``factory 'pkg.mod:build'``).
    model: str = "'logistic'"
    #: ``None``: not known until the model is built (a user's factory); config validation
    #: then lets the run through and the built model is checked
    #: (:func:`medsilo.runtime.factory.refuse_incompatible`).
    model_has_batch_norm: bool | None = False
    asynchrony: str = "sync"
    secure_aggregation: bool = False
    robust_rule: str = "none"
    dp_sgd: bool = False
    #: Client-level DP is on (algorithm ``dp_fedavg`` or ``privacy.client_dp``).
    client_dp: bool = False
    #: The DP layer is to be put around the algorithm (``privacy.client_dp``); ``False`` when
    #: the algorithm's capabilities already include it (``dp_fedavg``).
    wraps_client_dp: bool = False


def algorithm_problem(caps: Capabilities, run: RunFeatures) -> str | None:
    """Why the algorithm declaring ``caps`` cannot run as ``run`` asks, or ``None``.

    With ``run.client_dp``, ``caps`` are the inner algorithm's: the DP layer is refused by
    the reason the algorithm declares, and the rest is checked for the wrapped algorithm.
    """
    if run.wraps_client_dp:
        if caps.client_dp_unsound is not None:
            return (
                f"privacy.client_dp cannot wrap algorithm {run.algorithm!r}: "
                + caps.client_dp_unsound
            )
        caps = with_client_dp(caps)
    return (
        training_refusal(caps, run)
        or robust_refusal(caps, run)
        or asynchrony_refusal(caps, run)
        or secure_refusal(caps, run)
        or dp_sgd_refusal(caps, run)
    )


def training_refusal(caps: Capabilities, run: RunFeatures) -> str | None:
    algo = run.algorithm
    if caps.requires_sgd and run.optimizer != "sgd":
        return f"algorithm {algo!r} assumes plain local SGD; set training.optimizer: sgd"
    if caps.requires_no_momentum and run.momentum != 0:
        return f"algorithm {algo!r} takes proximal SGD steps; set training.momentum: 0"
    if caps.requires_batch_norm and run.model_has_batch_norm is False:
        return (
            f"algorithm {algo!r} needs a model with BatchNorm, which model {run.model} has "
            "not: e.g. model.name: cnn_bn, resnet18, densenet121 or efficientnet_b0"
        )
    return None


def robust_refusal(caps: Capabilities, run: RunFeatures) -> str | None:
    rule = run.robust_rule
    if rule in COORDINATE_WISE_RULES and not caps.coordinate_wise_robust:
        return (
            f"robust.rule {rule!r} replaces the weighted mean of the deltas, but algorithm "
            f"{run.algorithm!r} aggregates its own way; use krum, multi_krum or norm_bound, "
            "which filter or rescale updates before the algorithm's own aggregation"
        )
    return None


def asynchrony_refusal(caps: Capabilities, run: RunFeatures) -> str | None:
    if run.asynchrony != "sync" and caps.asynchrony_unsound is not None:
        return (
            f"asynchrony.mode {run.asynchrony!r} cannot run algorithm {run.algorithm!r}: "
            + caps.asynchrony_unsound
        )
    return None


def secure_refusal(caps: Capabilities, run: RunFeatures) -> str | None:
    if run.secure_aggregation and not caps.secure_aggregation:
        return (
            f"secure_aggregation reveals only the weighted sum of the deltas, but algorithm "
            f"{run.algorithm!r} needs more; use one of "
            + ", ".join(algorithms_where("secure_aggregation"))
        )
    return None


def dp_sgd_refusal(caps: Capabilities, run: RunFeatures) -> str | None:
    if not run.dp_sgd:
        return None
    if run.client_dp:
        source = "privacy.client_dp" if run.wraps_client_dp else f"algorithm {run.algorithm!r}"
        return (
            f"privacy.dp_sgd (sample-level) and {source} (client-level) are accounted "
            "separately; choose one of them"
        )
    if not caps.dp_sgd:
        return (
            f"privacy.dp_sgd replaces the local SGD of {' or '.join(algorithms_where('dp_sgd'))}"
            f"; algorithm {run.algorithm!r} is not supported with it"
        )
    if run.model_has_batch_norm:
        return (
            f"privacy.dp_sgd needs per-example gradients, but model {run.model} has "
            "BatchNorm, which mixes the examples of a batch (Opacus refuses it); set "
            "model.batch_norm: group_norm to replace it by GroupNorm, or use a model without "
            "BatchNorm (e.g. 'cnn')"
        )
    return None
