"""Coordinator key handling and the site event kinds (enrolment, attestation)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from medsilo.ledger.events import (
    Attestation,
    Enrolment,
    record_attestation,
    record_enrolment,
)
from medsilo.ledger.keys import (
    KEY_ENV,
    default_key_path,
    fingerprint,
    load_or_create_private_key,
    load_public_key,
    write_public_key,
)
from medsilo.ledger.store import Ledger, open_readonly, read_records
from medsilo.ledger.verify import verify_ledger


def test_key_is_created_once_with_owner_only_permissions(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "coordinator.pem"
    key = load_or_create_private_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_or_create_private_key(path)
    assert fingerprint(again.public_key()) == fingerprint(key.public_key())
    write_public_key(key.public_key(), tmp_path / "ledger.pub")
    assert fingerprint(load_public_key(tmp_path / "ledger.pub")) == fingerprint(key.public_key())


def test_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "coordinator.pem"
    load_or_create_private_key(path)
    os.chmod(path, 0o644)
    with pytest.raises(PermissionError, match="chmod 600"):
        load_or_create_private_key(path)


def test_key_path_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, str(tmp_path / "k.pem"))
    assert default_key_path() == tmp_path / "k.pem"
    monkeypatch.delenv(KEY_ENV)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert default_key_path() == tmp_path / "medsilo" / "coordinator_ed25519.pem"


def test_enrolment_and_attestation_events_are_recorded_and_verified(tmp_path: Path) -> None:
    key = load_or_create_private_key(tmp_path / "k.pem")
    path = tmp_path / "ledger.sqlite"
    with Ledger(path, key) as ledger:
        record_enrolment(ledger, Enrolment("cleveland", "ab" * 32, details={"contact": "it"}))
        record_attestation(
            ledger,
            Attestation("cleveland", "sev-snp", "cd" * 32, verified=False, reason="stale TCB"),
        )
        record_enrolment(ledger, Enrolment("cleveland", "ab" * 32, action="revoked"))
        with pytest.raises(ValueError, match="enrolled, revoked or refused"):
            record_enrolment(ledger, Enrolment("va", "00" * 32, action="paused"))
    conn = open_readonly(path)
    records = list(read_records(conn))
    conn.close()
    assert [r.kind for r in records] == ["genesis", "enrolment", "attestation", "enrolment"]
    attestation = json.loads(records[2].payload)
    assert attestation["verified"] is False and attestation["reason"] == "stale TCB"
    assert json.loads(records[3].payload)["action"] == "revoked"
    result = verify_ledger(path, key.public_key())
    assert result.ok and result.verified == 4 and result.open_run_seq is None


def test_ledger_refuses_to_append_under_another_key(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    first = load_or_create_private_key(tmp_path / "a.pem")
    with Ledger(path, first) as ledger:
        record_enrolment(ledger, Enrolment("va", "00" * 32))
    with pytest.raises(ValueError, match="another coordinator key"):
        Ledger(path, load_or_create_private_key(tmp_path / "b.pem"))
    with Ledger(path, first) as ledger:  # the same key continues the chain
        record_enrolment(ledger, Enrolment("va", "00" * 32, action="revoked"))
    assert verify_ledger(path, first.public_key()).verified == 3
