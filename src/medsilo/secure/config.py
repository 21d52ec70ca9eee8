"""``secure_aggregation:`` in a run config (docs/secure-aggregation.md).

``threshold`` is either a fraction of the round's cohort (a float in ``(0.5, 1]``; the
threshold is ``ceil(fraction * n)``) or a site count (an int). It must exceed half the cohort:
below that, a coordinator that tells two halves of the sites different survivor lists could
collect both the self-mask seed and the mask key of one site and unmask its update.
``graph: harary`` is SecAgg+ (Bell et al. 2020): each site masks with and shares to only
``k`` neighbours of a random ``k``-regular graph; ``k`` and the per-neighbourhood threshold
``t`` are chosen from the cohort size, ``corrupt_fraction``, ``dropout_fraction``,
``security_bits`` and ``correctness_bits`` (:mod:`medsilo.secure.graph_parameters`), or
``neighbours`` fixes ``k``. ``graph: complete`` (the default) is Bonawitz et al.'s protocol.

``clip`` bounds every coordinate of a site's weighted update ``w_i * delta_i``; together with
``bits`` and the cohort size it fixes the fixed-point scale (:mod:`medsilo.secure.fixed_point`).

This module has no import from :mod:`medsilo.config`, which imports it.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from medsilo.secure.graph_parameters import choose_graph

#: Fields that only SecAgg+ (``graph: harary``) reads.
SPARSE_FIELDS = (
    "neighbours",
    "corrupt_fraction",
    "dropout_fraction",
    "security_bits",
    "correctness_bits",
)


class SecureAggregationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    mechanism: Literal["masking", "ckks"] = Field(
        "masking",
        description="masking: pairwise masks (Bonawitz et al. 2017), recovers up to n - t "
        "dropouts; ckks: TenSEAL CKKS encryption summed by the coordinator and decrypted by "
        "a separate key holder (threshold, bits do not apply; clip still bounds each site)",
    )
    threshold: float | int = Field(
        0.6,
        description="sites needed to finish a round: a fraction (0.5, 1] of the cohort or a "
        "count; up to n - threshold dropouts are recovered",
    )
    graph: Literal["complete", "harary"] = Field(
        "complete",
        description="masking: complete: every pair of sites shares a mask (Bonawitz et al. "
        "2017, O(n) work a site); harary: SecAgg+ (Bell et al. 2020), each site masks with k "
        "= O(log n) neighbours of a random Harary graph, t applies per neighbourhood",
    )
    neighbours: int | None = Field(
        None,
        ge=2,
        description="harary: k, the neighbours per site (even); default: the smallest k "
        "meeting the bounds set by the four fields below",
    )
    corrupt_fraction: float = Field(
        0.1, ge=0, lt=0.5, description="harary: share of sites that may collude (gamma)"
    )
    dropout_fraction: float = Field(
        0.1, ge=0, lt=0.5, description="harary: share of sites that may drop out (delta)"
    )
    security_bits: int = Field(
        40, ge=1, le=128, description="harary: privacy fails with probability <= 2**-this"
    )
    correctness_bits: int = Field(
        30,
        ge=1,
        le=128,
        description="harary: a round with at most dropout_fraction dropouts aborts with "
        "probability <= 2**-this",
    )
    bits: int = Field(32, ge=16, le=62, description="integers are mod 2**bits")
    clip: float = Field(
        1000.0,
        gt=0,
        description="every coordinate of a site's weighted update (weight x delta) is "
        "clipped to [-clip, clip] before encoding",
    )
    simulated_dropout: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="share of each round's cohort (engine and Flower) that drops out "
        "after sharing keys and before sending its masked update (their masks are recovered)",
    )

    key_holder: str | None = Field(
        None,
        description="ckks over Flower (simulated or deployed): the site that generates the "
        "CKKS keys, keeps the secret key and decrypts each round's sum; the coordinator gets "
        "the public context only (the in-process engine keeps its key holder as a separate "
        "object and ignores this)",
    )

    @model_validator(mode="after")
    def _threshold_shape(self) -> SecureAggregationConfig:
        t = self.threshold
        if self.key_holder is not None and self.mechanism != "ckks":
            raise ValueError("secure_aggregation.key_holder applies to mechanism: ckks only")
        if isinstance(t, float) and not 0.5 < t <= 1.0:
            raise ValueError(
                f"secure_aggregation.threshold as a fraction must be in (0.5, 1], got {t}"
            )
        if isinstance(t, int) and t < 2:
            raise ValueError(f"secure_aggregation.threshold as a count must be >= 2, got {t}")
        if self.mechanism == "ckks" and self.graph != "complete":
            raise ValueError("secure_aggregation.graph applies to mechanism: masking only")
        # Compared with the defaults, not model_fields_set: a dumped config re-validated
        # (checkpoints, approvals) sets every field.
        fields = type(self).model_fields
        changed = {f for f in SPARSE_FIELDS if getattr(self, f) != fields[f].default}
        if self.graph == "complete" and changed:
            raise ValueError(
                f"secure_aggregation {', '.join(sorted(changed))} apply to graph: harary only"
            )
        if self.graph == "harary" and self.threshold != fields["threshold"].default:
            raise ValueError(
                "secure_aggregation.threshold applies to graph: complete; with graph: harary "
                "t is chosen per neighbourhood from neighbours, corrupt_fraction, "
                "dropout_fraction, security_bits and correctness_bits"
            )
        if self.neighbours is not None and self.neighbours % 2:
            raise ValueError(
                f"secure_aggregation.neighbours must be even (a Harary graph H(n, k) joins "
                f"each site to k/2 on either side), got {self.neighbours}"
            )
        return self

    def threshold_for(self, cohort: int) -> int:
        """The threshold ``t`` for a round of ``cohort`` sites; refuses unsafe values."""
        return self.shape_for(cohort)[1]

    def shape_for(self, cohort: int) -> tuple[int, int]:
        """``(k, t)`` for a round of ``cohort`` sites: ``k = 0`` is the complete graph."""
        if self.graph == "complete":
            return 0, resolve_threshold(self.threshold, cohort)
        choice = choose_graph(
            cohort,
            self.corrupt_fraction,
            self.dropout_fraction,
            self.security_bits,
            self.correctness_bits,
            self.neighbours,
        )
        return choice.neighbours, choice.threshold


def resolve_threshold(threshold: float | int, cohort: int) -> int:
    """``t`` for ``cohort`` sites: a count as given, a fraction rounded up; needs ``t > n/2``."""
    t = threshold if isinstance(threshold, int) else math.ceil(threshold * cohort - 1e-9)
    if cohort < 2:
        raise ValueError(f"secure aggregation needs at least 2 sites a round, got {cohort}")
    if t > cohort:
        raise ValueError(
            f"secure_aggregation.threshold {threshold} needs {t} sites but a round has {cohort}"
        )
    if 2 * t <= cohort:
        raise ValueError(
            f"secure_aggregation.threshold {threshold} gives t={t} of {cohort} sites; it must "
            "exceed half the cohort"
        )
    return t


def incompatibility(
    secure: SecureAggregationConfig,
    robust_rule: str,
    codec: str,
    max_norm: float | None,
    max_norm_factor_set: bool,
) -> str | None:
    """Why ``secure`` cannot be combined with the rest of a run config, or ``None``.

    The coordinator only learns the sum, so anything that needs individual updates is out:
    robust rules (they select, trim or rescale single updates), compression (codecs are
    not additive over the ring) and norm validation (the coordinator cannot see a norm; the
    site's clip is the bound instead). Algorithms that need more than the sum declare it
    (:attr:`~medsilo.algorithms.capabilities.Capabilities.secure_aggregation`; SCAFFOLD's
    control variates, FedNova's normalisation, Ditto's personal models).
    ``max_norm_factor_set`` means a relative norm check other than the default was chosen:
    the default one is on for every run and simply does not apply under secure aggregation.
    """
    if not secure.enabled:
        return None
    if robust_rule != "none":
        return (
            f"robust.rule {robust_rule!r} needs individual updates, which secure_aggregation "
            "hides from the coordinator; use robust.rule: none (the site's clip bounds each "
            "contribution)"
        )
    if codec != "none":
        return (
            f"compression.codec {codec!r} is not additive over the masked integers; use "
            "compression.codec: none with secure_aggregation"
        )
    if max_norm is not None or max_norm_factor_set:
        return (
            "validation.max_norm / max_norm_factor need each update's norm, which the "
            "coordinator cannot see under secure_aggregation; remove them (each site clips "
            "its contribution to secure_aggregation.clip per coordinate instead)"
        )
    return None
