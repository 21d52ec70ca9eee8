"""The ``privacy:`` section of a run config, and DP-FedAvg's adaptive-clipping settings.

Plain pydantic models with ``extra="forbid"`` (a misspelt key fails at load time, named);
they import nothing from the rest of medsilo so that :mod:`medsilo.config` can use them.

```yaml
privacy:
  delta: 1.0e-5          # the delta every epsilon is reported at
  target_epsilon: 3.0    # optional budget: training stops before a round would exceed it
  dp_sgd:                # optional: sample-level DP-SGD at every site (Opacus)
    noise_multiplier: auto   # or a number; auto calibrates to target_epsilon per site
    max_grad_norm: 1.0
```
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

NoiseMultiplier = Annotated[float, Field(ge=0)] | Literal["auto"]

#: Algorithms whose local training is plain (optionally proximal) SGD on the site's data,
#: so DP-SGD replaces it without changing what the algorithm means.
DP_SGD_ALGORITHMS = ("fedavg", "fedprox")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DPSGDConfig(_Strict):
    """Sample-level DP-SGD (Abadi et al. 2016) of each site's local training, via Opacus."""

    noise_multiplier: NoiseMultiplier = Field(
        1.0,
        description="Gaussian noise std / max_grad_norm per step; 'auto' calibrates each "
        "site's to privacy.target_epsilon over the planned rounds",
    )
    max_grad_norm: float = Field(1.0, gt=0, description="per-example gradient clip (l2)")


class PrivacyConfig(_Strict):
    delta: float = Field(1e-5, gt=0, lt=1, description="delta every epsilon is reported at")
    target_epsilon: float | None = Field(
        None, gt=0, description="budget: stop before a round would take epsilon above it"
    )
    dp_sgd: DPSGDConfig | None = None


class AdaptiveClipConfig(_Strict):
    """Andrew et al. (2021): move the clip norm geometrically toward a quantile of the norms."""

    target_quantile: float = Field(
        0.5, gt=0, lt=1, description="share of updates that should be left unclipped (gamma)"
    )
    lr: float = Field(0.2, gt=0, description="geometric step size eta_C")
    count_stddev: float | None = Field(
        None,
        gt=0,
        description="noise std sigma_b on the count of unclipped updates "
        "(default: cohort size / 20, as in the paper)",
    )


def privacy_problem(run: Any) -> str | None:
    """Why ``run``'s (a ``RunConfig``) algorithm, model and privacy settings cannot run
    together, or ``None`` (typed loosely: this module must not import medsilo.config)."""
    algorithm, privacy = run.algorithm, run.privacy
    algo = algorithm.name
    dp_fedavg = algo == "dp_fedavg"
    if privacy.dp_sgd is not None:
        if dp_fedavg:
            return (
                "privacy.dp_sgd (sample-level) and algorithm 'dp_fedavg' (client-level) are "
                "accounted separately; choose one of them"
            )
        if algo not in DP_SGD_ALGORITHMS:
            return (
                f"privacy.dp_sgd replaces the local SGD of {' or '.join(DP_SGD_ALGORITHMS)}; "
                f"algorithm {algo!r} is not supported with it"
            )
        if run.model.name == "cnn_bn":
            return (
                "privacy.dp_sgd needs per-example gradients, but model 'cnn_bn' has BatchNorm, "
                "which mixes the examples of a batch (Opacus refuses it); use model 'cnn'"
            )
    private = dp_fedavg or privacy.dp_sgd is not None
    if dp_fedavg:
        problem = async_dp_fedavg_problem(run)
        if problem is not None:
            return problem
    if dp_fedavg and algorithm.adaptive_clip is not None and run.secure_aggregation.enabled:
        return (
            "algorithm.adaptive_clip needs each site's unclipped indicator, which "
            "secure_aggregation hides; use a fixed clip with secure_aggregation"
        )
    auto = getattr(algorithm, "noise_multiplier", None) == "auto" or (
        privacy.dp_sgd is not None and privacy.dp_sgd.noise_multiplier == "auto"
    )
    if auto and privacy.target_epsilon is None:
        return "noise_multiplier 'auto' calibrates to a budget: set privacy.target_epsilon"
    if privacy.target_epsilon is not None and not private:
        return (
            "privacy.target_epsilon is a budget, but no DP mechanism is on; use algorithm "
            "'dp_fedavg' or set privacy.dp_sgd"
        )
    return None


def async_dp_fedavg_problem(run: Any) -> str | None:
    """Why client-level DP-FedAvg cannot run under ``run.asynchrony``, or ``None``.

    Sample-level DP-SGD composes with any timing (a site's guarantee is the composition of
    its own DP-SGD trainings), so it is never refused here. DP-FedAvg's Gaussian mechanism
    is the coordinator's noisy mean of a group of clipped updates: FedBuff's buffer of ``K``
    updates is such a group (noise ``z C / K``, each site at most once per buffer, accounted
    with ``q = 1``: arrivals depend on timing, not on a random sample, so there is no
    amplification by sampling). FedAsync has no group.
    """
    mode = getattr(getattr(run, "asynchrony", None), "mode", "sync")
    if mode == "sync":
        return None
    algorithm = run.algorithm
    if mode == "fedasync":
        return (
            "algorithm 'dp_fedavg' cannot run with asynchrony.mode 'fedasync': fedasync applies "
            "each update alone, so the coordinator's noise z*C/m has m = 1 and protects one "
            "site's update by itself, which is local DP without any averaging over a cohort; "
            "use privacy.dp_sgd (each site's own DP, noise: local in effect) or asynchrony.mode "
            "'fedbuff' (noise z*C/K over a buffer of K updates)"
        )
    if algorithm.noise == "local":
        return (
            "algorithm 'dp_fedavg' with fedbuff needs noise: central: local noise shares are "
            "calibrated so that a fixed cohort's shares sum to z*C, but fedbuff scales stale "
            "updates by 1/sqrt(1 + staleness), shrinking their noise below what is accounted"
        )
    if algorithm.adaptive_clip is not None:
        return (
            "algorithm.adaptive_clip with fedbuff: the updates of one buffer were clipped with "
            "the clip norms of the model versions they started from, so a stale, larger clip "
            "would exceed the one the coordinator's noise is calibrated to; use a fixed clip"
        )
    return None
