"""The ``governance:`` section of a run config (docs/governance.md).

Choices:

* ``checkpoint: {every: N, keep: all | K}`` writes the engine state after every N-th round
  (and the last) into ``RUN/checkpoints``; ``keep: K`` keeps only the K newest.
* ``cohorts: {SITE: {version, collected_until}}`` is the cohort (data extract) each site
  declares it trains on.
* ``consent: {window_days: N, as_of: DATE}`` is a rolling consent window: a cohort collected
  until day ``c`` may be used while ``as_of <= c + N days``; an expired cohort's site is absent
  from training (never sampled into a round, its update never computed).
* ``withdrawn_sites`` / ``withdrawn_cohorts`` (``SITE:VERSION``) are sites whose data was
  withdrawn; they stay on the federation's roster (site indices, and so every seed, unchanged)
  but are absent from training, as expired cohorts are.
* ``quorum: {council: FILE, decisions: DIR, authority: CA_CERT}`` makes starting the run
  need a council-approved ``start_run`` proposal for its config hash (``governance.quorum``,
  docs/governance.md "Quorum decisions"); absent, runs start as before.
* ``patient_consent: {start, round_hours, sites: {SITE: {register_file, key_file}}, withdrawn}`` is
  patient-level consent (:mod:`medsilo.governance.patient_consent`): a site trains in round
  ``r`` only on the patients its register says consent at ``start + (r-1) * round_hours``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from medsilo.data.paths import anchored


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def today_utc() -> date:
    return datetime.now(UTC).date()


class CheckpointConfig(_Strict):
    every: int = Field(1, ge=1, description="checkpoint after every N-th round (and the last)")
    keep: int | Literal["all"] = Field("all", description="'all' or how many newest to keep")

    @field_validator("keep")
    @classmethod
    def _positive(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 1:
            raise ValueError("keep must be 'all' or at least 1")
        return value

    def due(self, rnd: int, last_round: int) -> bool:
        """Whether round ``rnd`` of a ``last_round``-round run is checkpointed."""
        return rnd % self.every == 0 or rnd == last_round

    def possibly_held(self, rnd: int, last_round: int) -> list[int]:
        """The rounds whose checkpoints the coordinator may hold while round ``rnd`` runs
        (before and after it saves ``rnd``'s): a resume starts after one of them. With
        ``keep: K`` that is the newest K+1 due rounds up to ``rnd``."""
        due = [r for r in range(1, rnd + 1) if self.due(r, last_round)]
        return due if self.keep == "all" else due[-(self.keep + 1) :]


class CohortDeclaration(_Strict):
    version: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="e.g. 2026-10")
    collected_until: date


class ConsentConfig(_Strict):
    window_days: int = Field(ge=1, description="a cohort is usable this long after collection")
    as_of: date = Field(
        default_factory=today_utc, description="the day consent is judged (default: today, UTC)"
    )


class QuorumConfig(_Strict):
    council: Path = Field(description="the council.json written by `medsilo provision`")
    decisions: Path = Field(description="the decisions folder (proposals, approvals, ledger)")
    authority: Path = Field(
        description="the federation's ca.crt, which must have signed the council file: an "
        "unsigned or edited council is refused"
    )

    def anchored_at(self, folder: Path) -> QuorumConfig:
        return QuorumConfig(
            council=anchored(self.council, folder),
            decisions=anchored(self.decisions, folder),
            authority=anchored(self.authority, folder),
        )


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class PatientConsentSite(_Strict):
    register_file: Path = Field(
        description="the site's consent register: patient_id,granted,revoked"
    )
    key_file: Path = Field(description="the site's secret key file (pseudonyms and ledger refs)")

    def anchored_at(self, folder: Path) -> PatientConsentSite:
        return PatientConsentSite(
            register_file=anchored(self.register_file, folder),
            key_file=anchored(self.key_file, folder),
        )


class PatientConsentConfig(_Strict):
    start: datetime = Field(
        default_factory=now_utc, description="round 1's time (default: now, UTC)"
    )
    round_hours: float = Field(24.0, gt=0, description="time between two rounds")
    sites: dict[str, PatientConsentSite] = Field(
        min_length=1, description="keyed by site name; other sites train on every row"
    )
    withdrawn: dict[str, list[str]] = Field(
        default_factory=dict,
        description="SITE: [patient ref]: never trains (written by `medsilo unlearn --patient`)",
    )

    @field_validator("start")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def round_time(self, rnd: int) -> datetime:
        """When round ``rnd`` (1-based) happens on the run's consent schedule."""
        return self.start + timedelta(hours=self.round_hours * (rnd - 1))

    def anchored_at(self, folder: Path) -> PatientConsentConfig:
        sites = {name: site.anchored_at(folder) for name, site in self.sites.items()}
        return self.model_copy(update={"sites": sites})

    def without(self, site: str) -> PatientConsentConfig | None:
        sites = {k: v for k, v in self.sites.items() if k != site}
        if not sites:
            return None
        withdrawn = {k: v for k, v in self.withdrawn.items() if k != site}
        return self.model_copy(update={"sites": sites, "withdrawn": withdrawn})


class GovernanceConfig(_Strict):
    checkpoint: CheckpointConfig | None = None
    cohorts: dict[str, CohortDeclaration] = Field(
        default_factory=dict, description="keyed by site name: the cohort each site trains on"
    )
    consent: ConsentConfig | None = None
    withdrawn_sites: list[str] = Field(default_factory=list)
    withdrawn_cohorts: list[str] = Field(default_factory=list, description="SITE:VERSION")
    quorum: QuorumConfig | None = None
    patient_consent: PatientConsentConfig | None = None
    site_witness: bool = Field(
        False,
        description="the engine's simulated sites countersign the ledger head every round "
        "and keep witness files in the run folder (docs/audit-ledger.md). Off by default: "
        "they share the coordinator's process and keys, so they protect nothing and only "
        "show the protocol, at about 9 ms of fsyncs per site and round. Deployed sites "
        "always witness, whatever this says.",
    )

    @field_validator("withdrawn_cohorts")
    @classmethod
    def _site_and_version(cls, value: list[str]) -> list[str]:
        for entry in value:
            site, sep, version = entry.partition(":")
            if not (site and sep and version):
                raise ValueError(f"withdrawn cohort {entry!r} is not SITE:VERSION")
        return value

    def without(self, site: str) -> GovernanceConfig:
        """The same section for a federation that lacks ``site`` (leave-one-out runs)."""
        return self.model_copy(
            update={
                "cohorts": {k: v for k, v in self.cohorts.items() if k != site},
                "withdrawn_sites": [s for s in self.withdrawn_sites if s != site],
                "withdrawn_cohorts": [
                    c for c in self.withdrawn_cohorts if c.partition(":")[0] != site
                ],
                "patient_consent": (
                    None if self.patient_consent is None else self.patient_consent.without(site)
                ),
            }
        )

    def anchored_at(self, folder: Path) -> GovernanceConfig:
        """The section with its file paths (consent registers and keys; the quorum's council,
        decisions folder and authority) read from ``folder``."""
        update: dict[str, object] = {}
        if self.patient_consent is not None:
            update["patient_consent"] = self.patient_consent.anchored_at(folder)
        if self.quorum is not None:
            update["quorum"] = self.quorum.anchored_at(folder)
        return self.model_copy(update=update)
