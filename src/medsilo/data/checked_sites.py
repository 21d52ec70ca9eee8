"""Every site of a federation checked before any training array is built, failures together.

The FHIR and OMOP sources (:mod:`medsilo.data.fhir_sites`, :mod:`medsilo.data.omop_sites`)
read each site through its own adapter, but refuse a federation the same way: a site whose
source cannot be read (the adapter raises its source error) or whose rows do not fit the
schema (a :class:`~medsilo.data.site_validation.SiteCheck` with issues) does not stop the
others from being checked, so one refusal names every failing site and the user fixes them
in one pass instead of one per run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from medsilo.data.site_validation import SiteCheck

Site = TypeVar("Site")


def check_every_site(
    source: str,
    sites: Sequence[Site],
    check: Callable[[Site], SiteCheck],
    unreadable: type[Exception],
    refusal: Callable[[str], Exception],
) -> list[SiteCheck]:
    """The passing checks of ``sites``, in order, when every site passes.

    ``check`` reads one site; an ``unreadable`` error it raises must name the site (its
    message is the site's line of the refusal). Otherwise ``refusal`` is raised with one
    line per failing site, headed by how many of the ``source`` sites failed.
    """
    checks: list[SiteCheck] = []
    failures: list[str] = []
    for site in sites:
        try:
            result = check(site)
        except unreadable as err:
            failures.append(str(err))
            continue
        if result.ok:
            checks.append(result)
        else:
            failures.append(result.message())
    if failures:
        raise refusal(
            f"refusing to train: {len(failures)} of {len(sites)} {source} site(s) failed:\n"
            + "\n".join(failures)
        )
    return checks
