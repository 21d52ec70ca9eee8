"""What an algorithm supports, declared once on its class.

Every compatibility refusal (:mod:`medsilo.algorithms.compatibility`) is derived from these
declarations, so an algorithm written anywhere, a test module included, is accepted or
refused by secure aggregation, DP-SGD, client-level DP, asynchrony, robust rules and
checkpoints from what it says about itself, not from name lists kept in step across files.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

#: How the coordinator half combines the site deltas:
#: ``weighted_mean``: the sample-weighted mean of the deltas (nothing else);
#: ``equal_mean``: the mean with every site weighted equally (client-level DP);
#: ``custom``: anything more (control variates, normalisation by step counts, ...).
AggregationKind = Literal["weighted_mean", "equal_mean", "custom"]


@dataclass(frozen=True)
class Capabilities:
    """An algorithm's declaration of what it needs and what it composes with.

    A ``str`` field holds the reason the combination is unsound (``None``: supported), so
    the refusal can say *why*, not only *that*.
    """

    aggregation: AggregationKind = "weighted_mean"
    #: Its maths assumes plain local SGD (no Adam): SCAFFOLD, FedNova, CC-PGD.
    requires_sgd: bool = False
    #: Its local steps are proximal SGD steps without momentum (CC-PGD).
    requires_no_momentum: bool = False
    #: It keeps BatchNorm layers local, so the model must have them (FedBN).
    requires_batch_norm: bool = False
    #: Why FedAsync/FedBuff break it (site state or maths tied to a synchronous cohort).
    asynchrony_unsound: str | None = None
    #: Its local training is plain (optionally proximal) SGD on the site's data, so
    #: sample-level DP-SGD can replace it without changing what the algorithm means.
    dp_sgd: bool = False
    #: Why client-level DP (clip each update, noise the mean) cannot wrap it.
    client_dp_unsound: str | None = None
    #: The coordinator needs nothing but the (weighted) sum of the deltas, which is all
    #: secure aggregation reveals.
    secure_aggregation: bool = True
    #: Its state survives a checkpoint (:mod:`medsilo.governance.checkpoint`) exactly.
    checkpoints: bool = True

    @property
    def coordinate_wise_robust(self) -> bool:
        """Median, trimmed mean and Bulyan replace the sample-weighted mean of the deltas,
        so they stand in only for an algorithm whose aggregation is exactly that mean."""
        return self.aggregation == "weighted_mean"


def with_client_dp(inner: Capabilities) -> Capabilities:
    """What an algorithm wrapped in client-level DP (:mod:`medsilo.privacy.client_dp`)
    supports: the mean becomes an equal-weight noisy mean and it is already private. Its
    checkpoints are the inner algorithm's: the layer's round counter and clip are server
    state, its noise is keyed by the round, and the accountant is checkpointed by the round
    loop."""
    return replace(
        inner,
        aggregation="equal_mean",
        dp_sgd=False,
        client_dp_unsound="it already has client-level DP",
    )
