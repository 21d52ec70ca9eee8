"""Consent registers and site keys for the heart-disease hospitals (patient-consent tests).

Row ``i`` of a site's training set joins in round ``1 + i % 4`` (consent granted an hour
before that round's time); every fifth row (``i % 5 == 4``) is not in the register at all.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from medsilo.data.registry import build_federation
from medsilo.governance.patient_register import (
    ConsentEntry,
    create_site_key,
    load_site_key,
    row_pseudonym,
    write_register,
)
from tests.conftest import small_config

START = datetime(2026, 11, 1, tzinfo=UTC)
HOURS = 24.0


def round_time(rnd: int) -> datetime:
    return START + timedelta(hours=HOURS * (rnd - 1))


def train_sizes() -> dict[str, int]:
    fed = build_federation(small_config().data, 0)
    return {s.name: len(s.train) for s in fed.sites}


def joins_in(row: int) -> int | None:
    """The round row ``row``'s patient first consents in (``None``: not in the register)."""
    return None if row % 5 == 4 else 1 + row % 4


class Registers:
    """Each listed site's key and register, written under ``folder``."""

    def __init__(self, folder: Path, sites: list[str]) -> None:
        self.folder = folder
        self.sizes = train_sizes()
        self.sites = sites
        self.entries: dict[str, dict[str, ConsentEntry]] = {}
        for site in sites:
            create_site_key(self.key_file(site))
            entries = {}
            for row in range(self.sizes[site]):
                joins = joins_in(row)
                if joins is not None:
                    granted = round_time(joins) - timedelta(hours=1)
                    entries[self.patient(site, row)] = ConsentEntry(granted, None)
            self.entries[site] = entries
            self.write(site)

    def key_file(self, site: str) -> Path:
        return self.folder / f"{site}.key"

    def register_file(self, site: str) -> Path:
        return self.folder / f"{site}.csv"

    def patient(self, site: str, row: int) -> str:
        return row_pseudonym(load_site_key(self.key_file(site)), site, row)

    def write(self, site: str) -> None:
        write_register(self.register_file(site), self.entries[site])

    def section(self, **extra: Any) -> dict[str, Any]:
        """The ``governance.patient_consent`` config section."""
        sites = {
            s: {"register_file": str(self.register_file(s)), "key_file": str(self.key_file(s))}
            for s in self.sites
        }
        return {"start": START.isoformat(), "round_hours": HOURS, "sites": sites, **extra}
