"""The audit ledger's head proof and a site's countersignature as Flower message records.

* server -> site, ``train`` (or ``query.witness`` after ``run_end``): ``witness.head``
  (ConfigRecord, ``proof``: :meth:`HeadProof.to_bytes`, the records the site has not seen);
* site -> server: ``witness.countersignature`` (ConfigRecord, ``signature``:
  :meth:`Countersignature.to_bytes`).

Protocol and checks: :mod:`medsilo.ledger.witness`, :mod:`medsilo.ledger.witness_file`.
"""

from __future__ import annotations

from flwr.app import ConfigRecord, RecordDict

from medsilo.ledger.witness import Countersignature, HeadProof

HEAD = "witness.head"
COUNTERSIGNATURE = "witness.countersignature"
#: The message a deployed coordinator sends after ``run_end`` (the head proof only).
WITNESS = "witness"
WITNESS_ACTION = f"query.{WITNESS}"


def with_head(content: RecordDict, proof: HeadProof | None) -> RecordDict:
    """``content`` plus the head proof (a new RecordDict; ``content`` may be shared)."""
    if proof is None:
        return content
    out = RecordDict(dict(content.items()))
    out[HEAD] = ConfigRecord({"proof": proof.to_bytes()})
    return out


def read_head(content: RecordDict) -> HeadProof | None:
    if HEAD not in content.config_records:
        return None
    return HeadProof.from_bytes(bytes(content.config_records[HEAD]["proof"]))  # type: ignore[arg-type]


def add_countersignature(content: RecordDict, signature: Countersignature | None) -> RecordDict:
    if signature is not None:
        content[COUNTERSIGNATURE] = ConfigRecord({"signature": signature.to_bytes()})
    return content


def read_countersignature(content: RecordDict) -> Countersignature | None:
    if COUNTERSIGNATURE not in content.config_records:
        return None
    data = content.config_records[COUNTERSIGNATURE]["signature"]
    return Countersignature.from_bytes(bytes(data))  # type: ignore[arg-type]
