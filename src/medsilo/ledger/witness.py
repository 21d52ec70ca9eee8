"""What travels between the coordinator and a witnessing site: a head proof and a countersignature.

A signed chain held by one writer cannot show truncation after ``run_end``, a history
re-signed by the coordinator, or different histories shown to different sites
(docs/audit-ledger.md). Sites close that gap by witnessing: with each round's message a site
receives a :class:`HeadProof`, the ledger records it has not seen yet (full records, so it
can recompute every hash and check every link and coordinator signature back to the head it
saw last), and answers with a :class:`Countersignature`: its own Ed25519 signature over the
new head's ``(seq, hash)``, its name and the run. Because every hash commits to the one
before it, countersigning a head countersigns the whole history up to it.

The countersigned bytes are ``TAG || F(site) || F(run) || F(seq) || F(hash)`` (``TAG =
b"medsilo-witness/2\\n"``, ``F`` the 8-byte length prefix of
:func:`~medsilo.ledger.chain.length_prefixed`): the tag keeps a site's signature from meaning
anything else, e.g. the attestation evidence its key also signs in a deployment; the site
name keeps one site's countersignature from being passed off as another's, and ``run`` (a
deployed run's run key, ``""`` where the runtime has none, as in the engine) ties it to one
run. Version 1 signed ``(seq, hash)`` only; it is no longer read (no witness file of it was
ever kept outside this project's tests).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from medsilo.ledger.canonical import canonical_json
from medsilo.ledger.chain import LedgerRecord, length_prefixed
from medsilo.ledger.keys import raw_public

TAG = b"medsilo-witness/2\n"
#: The ledger record kind that stores a site's countersignature (medsilo.ledger.verify.KINDS).
WITNESS_KIND = "witness"


class WitnessError(ValueError):
    """A head proof a site cannot accept (malformed, broken, or not extending its last head)."""


def countersigned_bytes(site: str, run: str, seq: int, head_hash: str) -> bytes:
    """What a site signs for the head ``(seq, head_hash)`` of run ``run`` (module docstring)."""
    fields = (site.encode(), run.encode(), str(seq).encode("ascii"), head_hash.encode())
    return TAG + b"".join(length_prefixed(field) for field in fields)


@dataclass(frozen=True)
class HeadProof:
    """Ledger records, consecutive, ending at the coordinator's current head."""

    records: tuple[LedgerRecord, ...]

    @property
    def head(self) -> LedgerRecord:
        return self.records[-1]

    def to_bytes(self) -> bytes:
        rows = [asdict(r) | {"payload": r.payload.decode("ascii")} for r in self.records]
        return canonical_json({"records": rows})

    @staticmethod
    def from_bytes(data: bytes) -> HeadProof:
        try:
            rows = json.loads(data)["records"]
            records = tuple(
                LedgerRecord(
                    int(row["seq"]),
                    str(row["timestamp"]),
                    str(row["kind"]),
                    str(row["payload"]).encode("ascii"),
                    str(row["prev_hash"]),
                    str(row["hash"]),
                    str(row["signature"]),
                )
                for row in rows
            )
        except (ValueError, KeyError, TypeError) as err:
            raise WitnessError(f"the ledger head proof is malformed: {err}") from None
        if not records:
            raise WitnessError("the ledger head proof holds no record")
        return HeadProof(records)


@dataclass(frozen=True)
class Countersignature:
    """A site's signature over a ledger head, and the public key to check it with (raw hex).

    Who the key belongs to is not taken from here: the coordinator's feed and verification
    compare it with the key pinned for the site (:mod:`medsilo.ledger.witness_keys`) and the
    key in the site's own witness file (:mod:`medsilo.ledger.witness_verify`)."""

    site: str
    run: str
    seq: int
    hash: str
    public_key: str
    signature: str

    @staticmethod
    def sign(
        key: Ed25519PrivateKey, site: str, run: str, seq: int, head_hash: str
    ) -> Countersignature:
        signature = key.sign(countersigned_bytes(site, run, seq, head_hash)).hex()
        public = raw_public(key.public_key()).hex()
        return Countersignature(site, run, seq, head_hash, public, signature)

    def valid(self) -> bool:
        """Whether ``signature`` verifies under ``public_key``."""
        try:
            key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(self.public_key))
            signed = countersigned_bytes(self.site, self.run, self.seq, self.hash)
            key.verify(bytes.fromhex(self.signature), signed)
        except (InvalidSignature, ValueError):
            return False
        return True

    def payload(self, rnd: int | None) -> dict[str, Any]:
        """The ``witness`` ledger record's payload (``round``: the round whose message
        carried the head; absent for the exchange after ``run_end``)."""
        out: dict[str, Any] = asdict(self)
        if rnd is not None:
            out["round"] = rnd
        return out

    def to_bytes(self) -> bytes:
        return canonical_json(asdict(self))

    @staticmethod
    def from_payload(payload: dict[str, Any]) -> Countersignature:
        try:
            return Countersignature(
                str(payload["site"]),
                str(payload["run"]),
                int(payload["seq"]),
                str(payload["hash"]),
                str(payload["public_key"]),
                str(payload["signature"]),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise WitnessError(f"malformed countersignature: {err}") from None

    @staticmethod
    def from_bytes(data: bytes) -> Countersignature:
        try:
            payload = json.loads(data)
        except ValueError as err:
            raise WitnessError(f"malformed countersignature: {err}") from None
        if not isinstance(payload, dict):
            raise WitnessError("malformed countersignature: not a JSON object")
        return Countersignature.from_payload(payload)
