"""Typed payloads of the ledger's record kinds and the calls that append them.

``run_start`` (what was run, on what), ``round`` (what each round did: the global model it
produced, who took part, what was rejected and why, privacy spent), ``run_end``, and the
site events ``enrolment`` and ``attestation`` (for the enrolment/attestation flow of the
coordinator; those calls take only plain values so any caller can use them). Each payload
is a frozen dataclass whose :meth:`payload` is the JSON object stored; optional fields are
left out when absent rather than stored as null, except the model hash (null means "this
runtime has no global model to hash", e.g. the local-only baseline).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from medsilo.ledger.chain import LedgerRecord
from medsilo.ledger.store import Ledger
from medsilo.runtime.round_record import RoundRecord


@dataclass(frozen=True)
class RunStart:
    name: str
    config_sha256: str
    algorithm: str
    aggregation_rule: str
    server_optimizer: str
    seed: int
    rounds: int
    data: dict[str, Any]
    sites: list[str]
    privacy: str | None = None  # the DP mechanism, when any
    secure_aggregation: str | None = None  # the secure aggregation mechanism, when any
    resumed_after_round: int | None = None  # resumed from a checkpoint of that round
    resumed_model_sha256: str | None = None  # ... whose global model hashes to this

    def payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "config_sha256": self.config_sha256,
            "algorithm": self.algorithm,
            "aggregation_rule": self.aggregation_rule,
            "server_optimizer": self.server_optimizer,
            "seed": self.seed,
            "rounds": self.rounds,
            "data": self.data,
            "sites": list(self.sites),
        }
        optional = {
            "privacy": self.privacy,
            "secure_aggregation": self.secure_aggregation,
            "resumed_after_round": self.resumed_after_round,
            "resumed_model_sha256": self.resumed_model_sha256,
        }
        out.update({k: v for k, v in optional.items() if v is not None})
        return out


@dataclass(frozen=True)
class RoundEntry:
    round: int
    global_model_sha256: str | None
    sites: list[str]
    aggregation_rule: str
    rejected: list[dict[str, str]] = field(default_factory=list)  # {"site", "reason"}
    skipped: bool = False
    skip_reason: str | None = None
    robust_selected: list[str] | None = None
    epsilon: float | None = None
    delta: float | None = None
    secure_aggregation: dict[str, Any] | None = None  # survivors, recovered dropouts, abort
    stop_reason: str | None = None

    @classmethod
    def from_round_record(cls, record: RoundRecord, aggregation_rule: str) -> RoundEntry:
        """The entry for a runtime's round record: what was aggregated (or skipped, and
        why), the global model's hash, the privacy spent and secure aggregation's outcome."""
        privacy = record.privacy or {}
        secure = record.secure_aggregation
        secure_fields = None
        if secure is not None:
            keep = ("mechanism", "survivors", "dropouts_recovered", "rejected", "abort")
            secure_fields = {k: secure[k] for k in keep if k in secure}
        return cls(
            round=record.round,
            global_model_sha256=record.global_model_sha256,
            sites=list(record.sites),
            aggregation_rule=aggregation_rule,
            rejected=[{"site": r.site, "reason": r.reason} for r in record.rejected or []],
            skipped=bool(record.skipped),
            skip_reason=record.skip_reason,
            robust_selected=record.robust_selected,
            epsilon=privacy.get("epsilon"),
            delta=privacy.get("delta"),
            secure_aggregation=secure_fields,
            stop_reason=record.stop_reason,
        )

    def payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "round": self.round,
            "global_model_sha256": self.global_model_sha256,
            "sites": list(self.sites),
            "aggregation_rule": self.aggregation_rule,
            "rejected": self.rejected,
            "skipped": self.skipped,
        }
        optional = {
            "skip_reason": self.skip_reason,
            "robust_selected": self.robust_selected,
            "epsilon": self.epsilon,
            "delta": self.delta,
            "secure_aggregation": self.secure_aggregation,
            "stop_reason": self.stop_reason,
        }
        out.update({k: v for k, v in optional.items() if v is not None})
        return out


@dataclass(frozen=True)
class RunEnd:
    rounds_completed: int
    final_model_sha256: str | None
    stop_reason: str | None = None
    epsilon: float | None = None
    test_accuracy: float | None = None

    def payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rounds_completed": self.rounds_completed,
            "final_model_sha256": self.final_model_sha256,
        }
        optional = {
            "stop_reason": self.stop_reason,
            "epsilon": self.epsilon,
            "test_accuracy": self.test_accuracy,
        }
        out.update({k: v for k, v in optional.items() if v is not None})
        return out


@dataclass(frozen=True)
class Enrolment:
    """A site admitted to (or removed from) the federation, with the key it will use."""

    site: str
    public_key_sha256: str
    action: str = "enrolled"  # or "revoked", or "refused" (turned away before attestation)
    details: dict[str, Any] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        if self.action not in ("enrolled", "revoked", "refused"):
            raise ValueError(
                f"enrolment action must be enrolled, revoked or refused, got {self.action!r}"
            )
        return {
            "site": self.site,
            "public_key_sha256": self.public_key_sha256,
            "action": self.action,
            "details": self.details,
        }


@dataclass(frozen=True)
class Attestation:
    """The coordinator's verdict on a site's attestation evidence (e.g. a TEE quote)."""

    site: str
    evidence_type: str
    measurement_sha256: str
    verified: bool
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "evidence_type": self.evidence_type,
            "measurement_sha256": self.measurement_sha256,
            "verified": self.verified,
            "reason": self.reason,
            "details": self.details,
        }


def record_run_start(ledger: Ledger, event: RunStart) -> LedgerRecord:
    return ledger.append("run_start", event.payload())


def record_round(ledger: Ledger, event: RoundEntry) -> LedgerRecord:
    return ledger.append("round", event.payload())


def record_run_end(ledger: Ledger, event: RunEnd) -> LedgerRecord:
    return ledger.append("run_end", event.payload())


def record_enrolment(ledger: Ledger, event: Enrolment) -> LedgerRecord:
    return ledger.append("enrolment", event.payload())


def record_attestation(ledger: Ledger, event: Attestation) -> LedgerRecord:
    return ledger.append("attestation", event.payload())
