"""Patient-level consent: each round a site trains only on patients who consent at that round.

Round ``r`` happens at ``start + (r-1) * round_hours`` (``governance.patient_consent``): a
fixed schedule, so a run's consent decisions depend on its config and the registers only,
never on wall time. A site listed under ``sites`` trains in round ``r`` on its training rows
whose patient's register entry holds at that time (:class:`ConsentEntry.holds_at`) and whose
ref is not in ``withdrawn``; rows without an entry never train. The rows keep their order, so
the site's batches in a round depend only on the set of consenting patients: two runs whose
sets agree in a round train identically in it (what exact unlearning rests on,
:mod:`medsilo.governance.patient_unlearn`). A site with no consenting patient in a round does
not train in it. Sites not listed train on every row.

Each round record gets ``patients: {site: {consented, sha256}}`` for the sites that trained:
how many patients, and the SHA-256 of their sorted refs (never an id). The digest lets
unlearning tell, per round, whether a given patient trained, without the coordinator ever
holding the list.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from medsilo.config import ConfigError, RunConfig
from medsilo.governance.config import GovernanceConfig, PatientConsentConfig
from medsilo.governance.patient_register import (
    ConsentEntry,
    load_site_key,
    patient_ref,
    read_register,
    row_pseudonym,
)
from medsilo.runtime.round_record import RoundFields
from medsilo.training.samples import Samples

log = logging.getLogger(__name__)


def set_digest(refs: Iterable[str]) -> str:
    """The SHA-256 of a set of patient refs (sorted, one a line)."""
    return hashlib.sha256("\n".join(sorted(refs)).encode()).hexdigest()


@dataclass(frozen=True)
class SitePatients:
    """One site's training rows as patients: each row's id, ref and register entry."""

    site: str
    ids: list[str]
    refs: list[str]
    entries: list[ConsentEntry | None]
    withdrawn: frozenset[str] = frozenset()

    @staticmethod
    def build(
        site: str,
        key: bytes,
        register: dict[str, ConsentEntry],
        rows: int,
        withdrawn: Iterable[str] = (),
    ) -> SitePatients:
        """Row ``i``'s patient id is :func:`row_pseudonym` (the bundled data have no ids)."""
        ids = [row_pseudonym(key, site, i) for i in range(rows)]
        unknown = len(set(register) - set(ids))
        if unknown:
            log.info("site %r: %d register entries match no training row", site, unknown)
        refs = [patient_ref(key, p) for p in ids]
        return SitePatients(site, ids, refs, [register.get(p) for p in ids], frozenset(withdrawn))

    def row_of(self, patient_id: str) -> int | None:
        return self.ids.index(patient_id) if patient_id in self.ids else None

    def consenting(self, settings: PatientConsentConfig, rnd: int) -> NDArray[np.int64]:
        """The rows (ascending) that may train in round ``rnd``."""
        t = settings.round_time(rnd)
        rows = [
            i
            for i, entry in enumerate(self.entries)
            if entry is not None and entry.holds_at(t) and self.refs[i] not in self.withdrawn
        ]
        return np.asarray(rows, dtype=np.int64)

    def summary(self, rows: NDArray[np.int64]) -> dict[str, int | str]:
        return {"consented": len(rows), "sha256": set_digest(self.refs[i] for i in rows)}


def site_patients(cfg: RunConfig, site: str, rows: int) -> SitePatients:
    """``site``'s patients under ``cfg`` (its register and key read from the site's files)."""
    settings = cfg.governance.patient_consent
    assert settings is not None and site in settings.sites
    files = settings.sites[site]
    return SitePatients.build(
        site,
        load_site_key(files.key_file),
        read_register(files.register_file),
        rows,
        settings.withdrawn.get(site, []),
    )


@dataclass
class PatientConsent:
    """The sites' consent filters for one run (empty: no site has patient-level consent)."""

    settings: PatientConsentConfig | None = None
    sites: dict[str, SitePatients] = field(default_factory=dict)
    _rows: dict[tuple[str, int], NDArray[np.int64]] = field(default_factory=dict)

    @staticmethod
    def of(cfg: RunConfig, train_sizes: dict[str, int]) -> PatientConsent:
        """Reads every listed site's register and key; unknown sites are refused."""
        settings = cfg.governance.patient_consent
        if settings is None:
            return PatientConsent()
        check_sites(cfg.governance, list(train_sizes))
        sites = {s: site_patients(cfg, s, train_sizes[s]) for s in settings.sites}
        return PatientConsent(settings, sites)

    def rows(self, site: str, rnd: int) -> NDArray[np.int64]:
        assert self.settings is not None
        if (site, rnd) not in self._rows:
            self._rows[(site, rnd)] = self.sites[site].consenting(self.settings, rnd)
        return self._rows[(site, rnd)]

    def without_patients(self, rnd: int, sites: list[str]) -> list[str]:
        """The sites of ``sites`` with no consenting patient in round ``rnd`` (they idle)."""
        return [s for s in sites if s in self.sites and len(self.rows(s, rnd)) == 0]

    def training_data(self, site: str, rnd: int, data: Samples) -> Samples:
        """What ``site`` trains on in round ``rnd``: its consenting patients' rows, in order."""
        if site not in self.sites:
            return data
        return data.subset(self.rows(site, rnd))

    def fields(self, rnd: int, sites: list[str]) -> RoundFields:
        """The round record's ``patients`` field for the sites in ``sites``."""
        summaries = {s: self.sites[s].summary(self.rows(s, rnd)) for s in sites if s in self.sites}
        return {"patients": summaries} if summaries else {}


def check_sites(gov: GovernanceConfig, names: list[str]) -> None:
    settings = gov.patient_consent
    if settings is None:
        return
    for what, listed in (("sites", settings.sites), ("withdrawn", settings.withdrawn)):
        unknown = sorted(set(listed) - set(names))
        if unknown:
            raise ConfigError(
                f"governance.patient_consent.{what} names unknown site(s) {unknown}; "
                f"the federation has {names}"
            )
    missing = sorted(set(settings.withdrawn) - set(settings.sites))
    if missing:
        raise ConfigError(
            f"governance.patient_consent.withdrawn lists site(s) {missing} without a register"
        )


def patient_consent_problem(cfg: RunConfig) -> str | None:
    """Why ``cfg`` cannot train with patient-level consent, or ``None``."""
    if cfg.governance.patient_consent is None:
        return None
    if cfg.privacy.dp_sgd is not None:
        return (
            "governance.patient_consent with privacy.dp_sgd: the accountant assumes each "
            "site's training set is fixed, but consent changes it from round to round"
        )
    if cfg.data.standardize == "federated":
        return (
            "governance.patient_consent with data.standardize: federated: the statistics are "
            "taken once from every training row, including patients without consent (and a "
            "later revocation could not be unlearned from them); use standardize: none"
        )
    return None


def refuse_outside_engine(cfg: RunConfig, runtime: str) -> None:
    """Patient-level consent is applied by the in-process engine only: refuse it elsewhere
    rather than train every row while the config says otherwise."""
    if cfg.governance.patient_consent is not None:
        raise ConfigError(
            f"governance.patient_consent is applied by the in-process engine only; {runtime} "
            "would train on every row (remove governance.patient_consent or run in-process)"
        )
