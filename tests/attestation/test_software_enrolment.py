"""Enrolment with the software backend: accepted evidence is recorded, bad evidence is
refused with a reason, and the exploit indicator follows the attested TCB."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from medsilo.attestation.evidence import Evidence
from medsilo.attestation.nonces import NonceBook
from medsilo.attestation.policy import EnrolmentDecision, EnrolmentPolicy, enrol
from medsilo.attestation.software import sign_evidence
from medsilo.confidential.vulnerabilities import exploit_indicator
from medsilo.config import SiteRecord
from medsilo.ledger.keys import fingerprint
from medsilo.ledger.store import Ledger

from .helpers import MEASUREMENT, OTHER_MEASUREMENT, REGISTRY, site_key, software_policy


def _evidence(key: Ed25519PrivateKey, nonce: str, **kw: object) -> Evidence:
    args: dict[str, object] = {"site": "hungary", "measurement": MEASUREMENT, "nonce": nonce}
    return sign_evidence(key, **(args | kw))  # type: ignore[arg-type]


def _enrol(
    evidence: Evidence,
    book: NonceBook,
    key: Ed25519PrivateKey,
    policy: EnrolmentPolicy | None = None,
    ledger: Ledger | None = None,
) -> EnrolmentDecision:
    keys = {"hungary": key.public_key()}
    rules = policy or software_policy()
    return enrol(evidence, rules, book, keys, registry=REGISTRY, ledger=ledger)


def test_valid_software_evidence_is_accepted_and_recorded(tmp_path: Path) -> None:
    key, book = site_key(), NonceBook()
    evidence = _evidence(key, book.issue("hungary"), platform="sev-snp", tcb_version="9.0.8.115")
    with Ledger(tmp_path / "ledger.sqlite", Ed25519PrivateKey.generate()) as ledger:
        decision = _enrol(evidence, book, key, ledger=ledger)
        records = ledger.records()
    assert decision.accepted, decision.reason
    assert (decision.backend, decision.platform, decision.tcb_version) == (
        "software",
        "sev-snp",
        "9.0.8.115",
    )
    assert decision.hardware_rooted is False
    assert decision.exploit_indicator == 0
    assert decision.matched_cves == []
    kinds = [r.kind for r in records]
    assert kinds == ["genesis", "attestation", "enrolment"]
    attestation = json.loads(records[1].payload)
    assert attestation["verified"] is True
    assert attestation["evidence_type"] == "software"
    assert attestation["details"]["tcb_version"] == "9.0.8.115"
    enrolment = json.loads(records[2].payload)
    assert enrolment["public_key_sha256"] == fingerprint(key.public_key())
    assert enrolment["details"]["platform"] == "sev-snp"


def _rejected(decision_reason: str, accepted: bool, *needles: str) -> None:
    assert not accepted
    for needle in needles:
        assert needle in decision_reason, decision_reason


def test_tampered_measurement_is_rejected() -> None:
    key, book = site_key(), NonceBook()
    good = _evidence(key, book.issue("hungary"))
    tampered = good.model_copy(update={"measurement": OTHER_MEASUREMENT})
    d = _enrol(tampered, book, key)
    _rejected(d.reason, d.accepted, "signature does not verify")


def test_wrong_key_is_rejected() -> None:
    key, book = site_key(), NonceBook()
    evidence = _evidence(site_key(), book.issue("hungary"))
    d = _enrol(evidence, book, key)
    _rejected(d.reason, d.accepted, "signature does not verify")


def test_unregistered_site_is_rejected() -> None:
    key, book = site_key(), NonceBook()
    evidence = _evidence(key, book.issue("poland"), site="poland")
    d = _enrol(evidence, book, key)
    _rejected(d.reason, d.accepted, "no registered public key", "poland")


def test_stale_evidence_is_rejected() -> None:
    key, book = site_key(), NonceBook()
    old = datetime.now(UTC) - timedelta(seconds=600)
    evidence = _evidence(key, book.issue("hungary"), now=old)
    d = _enrol(evidence, book, key, policy=software_policy(max_age_s=300))
    _rejected(d.reason, d.accepted, "stale evidence")
    book2 = NonceBook()
    fresh_enough = _evidence(key, book2.issue("hungary"), now=old)
    assert _enrol(fresh_enough, book2, key, policy=software_policy(max_age_s=900)).accepted


def test_replayed_evidence_is_rejected() -> None:
    key, book = site_key(), NonceBook()
    evidence = _evidence(key, book.issue("hungary"))
    assert _enrol(evidence, book, key).accepted
    replay = _enrol(evidence, book, key)
    _rejected(replay.reason, replay.accepted, "no outstanding challenge")
    book.issue("hungary")  # a new challenge: the old evidence answers the old one
    replay = _enrol(evidence, book, key)
    _rejected(replay.reason, replay.accepted, "nonce mismatch")


def test_unknown_measurement_is_rejected() -> None:
    key, book = site_key(), NonceBook()
    evidence = _evidence(key, book.issue("hungary"), measurement=OTHER_MEASUREMENT)
    d = _enrol(evidence, book, key)
    _rejected(d.reason, d.accepted, "not in the allow-list")


def test_software_backend_needs_explicit_permission(tmp_path: Path) -> None:
    key, book = site_key(), NonceBook()
    evidence = _evidence(key, book.issue("hungary"))
    policy = EnrolmentPolicy(allowed_measurements=(MEASUREMENT,))  # default: hardware only
    with Ledger(tmp_path / "ledger.sqlite", Ed25519PrivateKey.generate()) as ledger:
        d = _enrol(evidence, book, key, policy=policy, ledger=ledger)
        records = ledger.records()
    _rejected(d.reason, d.accepted, "backend 'software' not allowed")
    assert [r.kind for r in records] == ["genesis", "attestation"]  # no enrolment
    assert json.loads(records[1].payload)["verified"] is False


def test_exploitable_tcb_sets_indicator_and_policy_decides() -> None:
    key = site_key()
    for mode, admitted in (("reject", False), ("flag", True)):
        book = NonceBook()
        evidence = _evidence(key, book.issue("hungary"), platform="sev-snp", tcb_version="3.0.8.93")
        d = _enrol(evidence, book, key, policy=software_policy(exploitable_tcb=mode))
        assert d.accepted is admitted, d.reason
        assert d.exploit_indicator == 1
        assert d.matched_cves == ["CVE-2099-0001", "CVE-2099-0002"]
        # the decision's platform record drives CC-PGD's indicator in the run config
        site = SiteRecord(platform=d.platform_record())
        assert exploit_indicator(site.platform, REGISTRY) == 1


def test_non_exploitable_match_keeps_indicator_zero() -> None:
    key, book = site_key(), NonceBook()
    # patched against CVE-2099-0001, still below the info-only CVE-2099-0002 fix
    evidence = _evidence(key, book.issue("hungary"), platform="sev-snp", tcb_version="3.1.8.115")
    d = _enrol(evidence, book, key)
    assert d.accepted and d.exploit_indicator == 0
    assert d.matched_cves == ["CVE-2099-0002"]


def test_malformed_tcb_version_is_rejected() -> None:
    key, book = site_key(), NonceBook()
    evidence = _evidence(key, book.issue("hungary"), platform="sev-snp", tcb_version="latest")
    d = _enrol(evidence, book, key)
    _rejected(d.reason, d.accepted, "not dot-separated integers")
