"""What a site does with the chain: check the model it received before training on it."""

from __future__ import annotations

from medsilo.anchor.chain import AnchorError
from medsilo.anchor.registry import FederationRegistry
from medsilo.ledger.digest import weights_sha256
from medsilo.types import Weights


class AnchorMismatch(AnchorError):
    """The model a site received is not the one the coordinator anchored for that round."""


def verify_received(registry: FederationRegistry, round_index: int, weights: Weights) -> str:
    """The received model's SHA-256 when it equals the hash anchored for ``round_index``
    (the audit ledger's hash, :func:`medsilo.ledger.digest.weights_sha256`); otherwise
    :class:`AnchorMismatch` naming both hashes, so the site can refuse to train on it."""
    anchored = registry.anchored(round_index)
    if anchored is None:
        raise AnchorMismatch(
            f"round {round_index} is not anchored in the registry at {registry.address} "
            f"(it holds {registry.round_count} rounds)"
        )
    received = weights_sha256(weights)
    if received != anchored.model_sha256:
        raise AnchorMismatch(
            f"the model received for round {round_index} hashes to {received}, but the "
            f"registry at {registry.address} anchors {anchored.model_sha256}: it is not the "
            "model the coordinator recorded; do not train on it"
        )
    return received
