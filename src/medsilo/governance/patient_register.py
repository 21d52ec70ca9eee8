"""A site's consent register and secret key: what stays at the site (docs/governance.md).

The register is a CSV with the header ``patient_id,granted,revoked``: one line per patient,
a pseudonymous id, when consent was granted and, if it was, when it was revoked (ISO 8601
date or date-time; a time without a zone is UTC; an empty ``revoked`` is current consent).
Consent holds at time ``t`` when ``granted <= t < revoked``.

The key is the site's secret (64 hex digits in a file, created once with
:func:`create_site_key`). It keys two HMAC-SHA256 functions:

* :func:`row_pseudonym`, the patient id of training row ``i`` of a dataset without ids (the
  bundled ones): ``HMAC(key, "SITE:i")``. Without the key no one can tell which row an id is.
* :func:`patient_ref`, the only form in which a patient leaves the site (a withdrawn
  patient in a config, an unlearning record in the ledger, the per-round set digests). It is
  keyed, not a plain hash, because ids are often short or structured (a plain SHA-256 of
  ``P000123`` is reversed by trying every id); with the key only the site can recompute a
  ref and show an auditor which of its patients a record concerns.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from medsilo.data.base import DataFormatError

HEADER = ["patient_id", "granted", "revoked"]
REF_CONTEXT = b"medsilo-patient-ref/1:"


@dataclass(frozen=True)
class ConsentEntry:
    granted: datetime
    revoked: datetime | None

    def holds_at(self, t: datetime) -> bool:
        return self.granted <= t and (self.revoked is None or t < self.revoked)


def create_site_key(path: Path) -> Path:
    """Write a new random site key to ``path`` (readable by its owner only); never overwrites."""
    if path.exists():
        raise DataFormatError(f"{path} already exists; a site key is never overwritten")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32) + "\n")
    return path


def load_site_key(path: Path) -> bytes:
    if not path.is_file():
        raise DataFormatError(f"site key not found: {path} (create one with create_site_key)")
    text = path.read_text().strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise DataFormatError(f"{path}: a site key is 64 hex digits") from None
    if len(key) < 32:
        raise DataFormatError(f"{path}: a site key is 64 hex digits, found {len(text)}")
    return key


def row_pseudonym(key: bytes, site: str, row: int) -> str:
    """The pseudonymous id of ``site``'s training row ``row`` (datasets without patient ids)."""
    return hmac.new(key, f"{site}:{row}".encode(), hashlib.sha256).hexdigest()[:32]


def patient_ref(key: bytes, patient_id: str) -> str:
    """What may leave the site about a patient (see the module docstring for why it is keyed)."""
    return hmac.new(key, REF_CONTEXT + patient_id.encode(), hashlib.sha256).hexdigest()


def _timestamp(text: str, where: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        try:
            value = datetime.combine(date.fromisoformat(text), datetime.min.time())
        except ValueError:
            raise DataFormatError(f"{where}: {text!r} is not an ISO 8601 date or time") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def read_register(path: Path) -> dict[str, ConsentEntry]:
    """The register's entries by patient id; every problem is reported at once."""
    if not path.is_file():
        raise DataFormatError(f"consent register not found: {path}")
    entries: dict[str, ConsentEntry] = {}
    problems: list[str] = []
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or [h.strip() for h in header] != HEADER:
            raise DataFormatError(f"{path}: the header must be {','.join(HEADER)}, got {header}")
        for line, row in enumerate(reader, start=2):
            if not any(cell.strip() for cell in row):
                continue
            where = f"{path}, line {line}"
            if len(row) != len(HEADER):
                problems.append(f"{where}: {len(row)} cells, expected {len(HEADER)}")
                continue
            patient, granted_text, revoked_text = (cell.strip() for cell in row)
            try:
                if not patient:
                    raise DataFormatError(f"{where}: empty patient_id")
                if patient in entries:
                    raise DataFormatError(f"{where}: patient_id {patient!r} appears twice")
                granted = _timestamp(granted_text, f"{where}, granted")
                revoked = _timestamp(revoked_text, f"{where}, revoked") if revoked_text else None
                if revoked is not None and revoked <= granted:
                    raise DataFormatError(f"{where}: revoked ({revoked_text}) is not after granted")
            except DataFormatError as err:
                problems.append(str(err))
                continue
            entries[patient] = ConsentEntry(granted, revoked)
    if problems:
        raise DataFormatError("\n".join(problems))
    return entries


def write_register(path: Path, entries: dict[str, ConsentEntry]) -> Path:
    """Write ``entries`` as a register (how a site exports its consent records for medsilo)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        for patient, entry in entries.items():
            revoked = "" if entry.revoked is None else entry.revoked.isoformat()
            writer.writerow([patient, entry.granted.isoformat(), revoked])
    return path
