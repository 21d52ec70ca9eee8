"""CKKS as the engine's secure aggregation (``secure_aggregation.mechanism: ckks``).

Three roles, three objects (:class:`CKKSAggregation`): a key holder that generates the keys
and decrypts sums only; sites with the public context, which encrypt
``[clip(w * delta), w, w * loss]``; a coordinator with the public context (no secret key),
which adds the ciphertexts that arrive. A site that drops out is simply missing from the
sum. Keys are fresh per run. See :mod:`medsilo.secure.ckks` for the parameters.
"""

from __future__ import annotations

import numpy as np
import tenseal as ts  # type: ignore[import-untyped]

from medsilo.secure.ckks import (
    CKKSKeys,
    decrypt_sum,
    encrypt_vector,
    load_context,
    sum_ciphertexts,
)
from medsilo.secure.result import EXTRA_SLOTS, SecureRound, aggregation_weight, placeholder
from medsilo.types import Update, flatten


def encrypt_site_input(
    ctx: ts.Context, slots: int, update: Update, equal_weights: bool, clip: float
) -> tuple[list[bytes], int]:
    """``(ciphertext chunks, clipped coordinates)``: what a site sends, ``[clip(w * delta),
    w, w * loss]`` encrypted under the public context (every runtime's sites call this)."""
    w = aggregation_weight(equal_weights, update)
    loss = float(update.metrics.get("train_loss", 0.0))
    body = flatten(update.delta).astype(np.float64) * w
    clipped = int(np.count_nonzero(np.abs(body) > clip))
    vector = np.concatenate(
        [np.clip(body, -clip, clip), [w, w * loss if np.isfinite(loss) else 0.0]]
    )
    return encrypt_vector(ctx, vector, slots), clipped


class CKKSAggregation:
    """The three CKKS roles of the in-process engine: a key holder that generates the keys
    and decrypts sums only, sites with the encryption context, a coordinator with the public
    context (no secret key). The keys are fresh per run."""

    def __init__(self) -> None:
        self.keys = CKKSKeys.generate()
        self.key_holder_context = load_context(self.keys.secret)
        self.site_context = load_context(self.keys.public)
        self.coordinator_context = load_context(self.keys.public)

    def run(
        self,
        equal_weights: bool,
        clip: float,
        cohort: list[str],
        updates: list[Update],
        late: set[str],
        absent: set[int],
    ) -> SecureRound:
        """One round: ``late`` sites send too late for the sum, ``absent`` (indices into
        ``updates``) drop out before sending."""
        result = SecureRound([], list(cohort), None, None, mechanism="ckks")
        sent: dict[str, list[bytes]] = {}
        for index, u in enumerate(updates):
            if index in absent:  # dropped out: sends nothing, is simply missing from the sum
                result.recovered.append(u.site)
                continue
            chunks, clipped = encrypt_site_input(
                self.site_context, self.keys.slots, u, equal_weights, clip
            )
            result.clipped += clipped
            result.bytes_up[u.site] = sum(len(c) for c in chunks)
            if u.site in late:  # sent, but too late for this round's sum
                result.recovered.append(u.site)
                continue
            sent[u.site] = chunks
        result.updates = [placeholder(s, b"".join(c)) for s, c in sent.items()]
        if not sent:
            result.abort_reason = f"no encrypted update of the {len(cohort)} sampled sites arrived"
            return result
        summed = sum_ciphertexts(self.coordinator_context, list(sent.values()))
        length = sum(int(w.size) for w in updates[0].delta) + EXTRA_SLOTS
        result.decrypted = decrypt_sum(self.key_holder_context, summed, length)
        result.survivors = list(sent)
        return result
