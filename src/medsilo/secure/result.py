"""What one round of secure aggregation produced, as the coordinator sees it.

:class:`SecureRound` holds the placeholders of what each site sent (its name and its masked
or encrypted payload, never a delta, an example count or a metric), the survivors and the
sums ``S = sum_i w_i delta_i``, ``W = sum_i w_i``, ``L = sum_i w_i loss_i`` (mechanism
``masking``: as an unmasked integer vector mod ``2**k``; ``ckks``: as the key holder's
decryption), plus the round-record fields. Both mechanisms lay the site vector out the same
way: ``[w * delta (clipped), w, w * train_loss]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from medsilo.secure.fixed_point import FixedPoint, Ring
from medsilo.types import Update

#: Slots after the delta: the weight and weight x training loss.
EXTRA_SLOTS = 2


def aggregation_weight(equal_weights: bool, update: Update) -> int:
    """A site's weight in the sum: 1 for an algorithm that weighs sites equally (client-level
    DP), else its example count."""
    return 1 if equal_weights else int(update.num_examples)


def placeholder(site: str, payload: bytes) -> Update:
    """What the coordinator holds for a site: its name and its payload, nothing in clear."""
    return Update(site=site, delta=[], num_examples=0, num_steps=0, encoded_delta=payload)


@dataclass
class SecureRound:
    """One round's secure aggregation: what the coordinator saw and the survivors' sums."""

    #: What the coordinator received per site: name, masked payload; no delta, no size.
    updates: list[Update]
    sites: list[str]
    threshold: int | None
    encoder: FixedPoint | None
    mechanism: str = "masking"
    #: masking: the unmasked sum mod ``2**bits``; CKKS: ``None``, see ``decrypted``.
    total: Ring | None = None
    #: CKKS: the key holder's decryption of ``[sum w * delta, sum w, sum w * loss]``.
    decrypted: NDArray[np.float64] | None = None
    survivors: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)
    bytes_up: dict[str, int] = field(default_factory=dict)
    clipped: int = 0
    abort_reason: str | None = None
    #: SecAgg+'s neighbours per site (``t`` is then per neighbourhood); 0: complete graph.
    neighbours: int = 0

    @property
    def ok(self) -> bool:
        """Whether the round produced its sums (it did not abort)."""
        return self.total is not None or self.decrypted is not None

    def sums(self) -> tuple[NDArray[np.float64], int, float]:
        """``(sum of w * delta, sum of w, sum of w * loss)`` decoded from the unmasked total.

        The first is a new array each call (the caller may scale it in place)."""
        if self.decrypted is not None:
            d = self.decrypted
            return d[:-2].copy(), round(float(d[-2])), float(d[-1])
        if self.total is None or self.encoder is None:
            raise ValueError("the round aborted; there is no sum")
        weight, loss = self.totals()
        return self.encoder.decode(self.total[:-2]), weight, loss

    def totals(self) -> tuple[int, float]:
        """``(sum of w, sum of w * loss)`` without decoding the model-sized sum."""
        if self.decrypted is not None:
            return round(float(self.decrypted[-2])), float(self.decrypted[-1])
        if self.total is None or self.encoder is None:
            raise ValueError("the round aborted; there is no sum")
        weight = int(self.encoder.signed(self.total[-2:-1])[0])
        return weight, float(self.encoder.decode(self.total[-1:])[0])

    def annotate(self, record: dict[str, Any]) -> None:
        """Put :meth:`record_fields` into a round record; drop the per-update metrics that
        would describe the payload placeholders (the coordinator saw no update), and the
        per-site health the dashboard would release (it saw no site's loss or norm either)."""
        for key in ("leakage", "sparsity", "projected_share"):
            record.get("extra", {}).pop(key, None)
        record.pop("site_health", None)
        record.update(self.record_fields())

    def record_fields(self) -> dict[str, Any]:
        """Round-record keys: protocol bytes, survivors, recovered dropouts, aborts."""
        info: dict[str, Any] = {
            "mechanism": self.mechanism,
            "threshold": self.threshold,
            "survivors": self.survivors,
            "dropouts_recovered": self.recovered,
            "clipped_coordinates": self.clipped,
        }
        if self.neighbours:
            info["neighbours"] = self.neighbours
        if self.encoder is not None:
            info.update(resolution=self.encoder.resolution, bits=self.encoder.bits)
        if self.rejected:
            info["rejected"] = self.rejected
        if self.abort_reason is not None:
            info["abort"] = self.abort_reason
        fields: dict[str, Any] = {
            "bytes_up": sum(self.bytes_up.values()),
            "bytes_up_site": dict(self.bytes_up),
            "secure_aggregation": info,
        }
        if self.ok:
            weight, loss = self.totals()
            fields["train_loss"] = loss / weight if weight > 0 else None
        return fields
