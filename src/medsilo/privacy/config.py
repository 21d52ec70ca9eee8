"""The ``privacy:`` section of a run config, and client-level DP's settings.

Plain pydantic models with ``extra="forbid"`` (a misspelt key fails at load time, named);
they import nothing from the rest of medsilo so that :mod:`medsilo.config` can use them.

```yaml
privacy:
  delta: 1.0e-5          # the delta every epsilon is reported at
  target_epsilon: 3.0    # optional budget: training stops before a round would exceed it
  dp_sgd:                # optional: sample-level DP-SGD at every site (Opacus)
    noise_multiplier: auto   # or a number; auto calibrates to target_epsilon per site
    max_grad_norm: 1.0
  client_dp:             # optional: client-level DP around the algorithm (not with dp_sgd)
    clip: 1.0
    noise_multiplier: 1.0    # or auto
    noise: central           # or local (needs secure aggregation)
```

``algorithm: {name: dp_fedavg, clip: ..., ...}`` is FedAvg with ``client_dp``: the same
fields, the same results.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

NoiseMultiplier = Annotated[float, Field(ge=0)] | Literal["auto"]


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


class ClientDPConfig(_Strict):
    """Client-level DP around the run's algorithm (docs/privacy.md): each site's update is
    clipped to ``clip`` (fixed, or the start of adaptive clipping), and Gaussian noise is
    added at the coordinator (``central``) or by the sites (``local``)."""

    clip: float = Field(1.0, gt=0)
    noise_multiplier: NoiseMultiplier = Field(
        1.0, description="noise std / clip; 'auto' calibrates to privacy.target_epsilon"
    )
    noise: Literal["central", "local"] = Field(
        "central", description="local: each site adds its share (needs secure aggregation)"
    )
    adaptive_clip: AdaptiveClipConfig | None = None


class PrivacyConfig(_Strict):
    delta: float = Field(1e-5, gt=0, lt=1, description="delta every epsilon is reported at")
    target_epsilon: float | None = Field(
        None, gt=0, description="budget: stop before a round would take epsilon above it"
    )
    dp_sgd: DPSGDConfig | None = None
    client_dp: ClientDPConfig | None = Field(
        None,
        description="client-level DP around the algorithm (algorithm 'dp_fedavg' is "
        "FedAvg with it)",
    )


def privacy_problem(run: Any) -> str | None:
    """Why ``run``'s (a ``RunConfig``) DP mechanisms cannot run as configured, or ``None``
    (typed loosely: this module must not import medsilo.config). What each algorithm
    allows is checked from its capabilities (:mod:`medsilo.algorithms.compatibility`)."""
    privacy = run.privacy
    client = run.client_dp()
    if client is not None:
        problem = async_client_dp_problem(run, client)
        if problem is not None:
            return problem
        if client.adaptive_clip is not None and run.secure_aggregation.enabled:
            return (
                f"{client_dp_section(run)}.adaptive_clip needs each site's unclipped "
                "indicator, which secure_aggregation hides; use a fixed clip with "
                "secure_aggregation"
            )
    auto = (client is not None and client.noise_multiplier == "auto") or (
        privacy.dp_sgd is not None and privacy.dp_sgd.noise_multiplier == "auto"
    )
    if auto and privacy.target_epsilon is None:
        return "noise_multiplier 'auto' calibrates to a budget: set privacy.target_epsilon"
    if privacy.target_epsilon is not None and client is None and privacy.dp_sgd is None:
        return (
            "privacy.target_epsilon is a budget, but no DP mechanism is on; use algorithm "
            "'dp_fedavg', privacy.client_dp or privacy.dp_sgd"
        )
    return None


def client_dp_section(run: Any) -> str:
    """Where ``run`` configures client-level DP: ``algorithm`` (dp_fedavg) or
    ``privacy.client_dp``."""
    return "privacy.client_dp" if run.privacy.client_dp is not None else "algorithm"


def client_dp_label(run: Any) -> str:
    """How refusals name the run's client-level DP."""
    if run.privacy.client_dp is not None:
        return f"privacy.client_dp around algorithm {run.algorithm.name!r}"
    return f"algorithm {run.algorithm.name!r}"


def async_client_dp_problem(run: Any, client: ClientDPConfig) -> str | None:
    """Why client-level DP cannot run under ``run.asynchrony``, or ``None``.

    Sample-level DP-SGD composes with any timing (a site's guarantee is the composition of
    its own DP-SGD trainings), so it is never refused here. Client-level DP's Gaussian
    mechanism is the coordinator's noisy mean of a group of clipped updates: FedBuff's
    buffer of ``K`` updates is such a group (noise ``z C / K``, each site at most once per
    buffer, accounted with ``q = 1``: arrivals depend on timing, not on a random sample, so
    there is no amplification by sampling). FedAsync has no group.
    """
    mode = getattr(getattr(run, "asynchrony", None), "mode", "sync")
    if mode == "sync":
        return None
    label = client_dp_label(run)
    if mode == "fedasync":
        return (
            f"{label} cannot run with asynchrony.mode 'fedasync': fedasync applies "
            "each update alone, so the coordinator's noise z*C/m has m = 1 and protects one "
            "site's update by itself, which is local DP without any averaging over a cohort; "
            "use privacy.dp_sgd (each site's own DP, noise: local in effect) or asynchrony.mode "
            "'fedbuff' (noise z*C/K over a buffer of K updates)"
        )
    if client.noise == "local":
        return (
            f"{label} with fedbuff needs noise: central: local noise shares are "
            "calibrated so that a fixed cohort's shares sum to z*C, but fedbuff scales stale "
            "updates by 1/sqrt(1 + staleness), shrinking their noise below what is accounted"
        )
    if client.adaptive_clip is not None:
        return (
            f"{client_dp_section(run)}.adaptive_clip with fedbuff: the updates of one buffer "
            "were clipped with the clip norms of the model versions they started from, so a "
            "stale, larger clip would exceed the one the coordinator's noise is calibrated "
            "to; use a fixed clip"
        )
    return None
