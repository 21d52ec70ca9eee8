"""Which sites may train: withdrawn sites and expired cohorts are absent.

An absent site stays on the roster (``names`` and so every per-site seed keep their indices);
it is filtered out of each round's sampled cohort, so it is never asked for an update and
never appears in a round's ``sites``. A cohort collected until day ``c`` is expired when
``as_of > c + window_days``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from medsilo.config import ConfigError
from medsilo.governance.config import GovernanceConfig

log = logging.getLogger(__name__)


def _check_known(kind: str, sites: list[str], names: list[str]) -> None:
    unknown = sorted(set(sites) - set(names))
    if unknown:
        raise ConfigError(
            f"governance.{kind} names unknown site(s) {unknown}; the federation has {names}"
        )


def absent_sites(gov: GovernanceConfig, names: list[str]) -> dict[str, str]:
    """Each absent site with the reason it may not train."""
    _check_known("cohorts", list(gov.cohorts), names)
    _check_known("withdrawn_sites", gov.withdrawn_sites, names)
    _check_known("withdrawn_cohorts", [c.partition(":")[0] for c in gov.withdrawn_cohorts], names)
    absent: dict[str, str] = {}
    if gov.consent is not None:
        undeclared = [n for n in names if n not in gov.cohorts]
        if undeclared:
            raise ConfigError(
                f"governance.consent needs every site to declare its cohort; "
                f"governance.cohorts lacks {undeclared}"
            )
        for name in names:
            cohort = gov.cohorts[name]
            expires = cohort.collected_until + timedelta(days=gov.consent.window_days)
            if gov.consent.as_of > expires:
                absent[name] = (
                    f"cohort {cohort.version} expired on {expires.isoformat()} "
                    f"(collected until {cohort.collected_until.isoformat()}, "
                    f"window {gov.consent.window_days} days, as of {gov.consent.as_of.isoformat()})"
                )
    for entry in gov.withdrawn_cohorts:
        site, _, version = entry.partition(":")
        declared = gov.cohorts.get(site)
        if declared is not None and declared.version == version:
            absent[site] = f"cohort {version} withdrawn"
    for site in gov.withdrawn_sites:
        absent[site] = "site withdrawn"
    return {n: absent[n] for n in names if n in absent}


@dataclass(frozen=True)
class Participation:
    absent: dict[str, str]
    cohorts: dict[str, str]

    @classmethod
    def of(cls, gov: GovernanceConfig, names: list[str]) -> Participation:
        absent = absent_sites(gov, names)
        for site, reason in absent.items():
            log.warning("site %r does not train: %s", site, reason)
        return cls(absent, {n: c.version for n, c in gov.cohorts.items()})

    def present(self, sampled: list[str]) -> list[str]:
        return [n for n in sampled if n not in self.absent]

    def annotate(self, record: dict[str, Any], sites: list[str]) -> None:
        """Which cohort each participating site trained on, and who was absent and why."""
        if self.cohorts:
            record["cohorts"] = {n: self.cohorts[n] for n in sites if n in self.cohorts}
        if self.absent:
            record["absent_sites"] = dict(self.absent)
