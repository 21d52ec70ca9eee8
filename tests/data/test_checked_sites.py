"""The shared loop of the FHIR and OMOP sources: every site checked, failures refused together."""

from __future__ import annotations

import pytest

from medsilo.data.checked_sites import check_every_site
from medsilo.data.site_validation import Issue, SiteCheck


class Unreadable(Exception):
    pass


class Refused(Exception):
    pass


def _check(site: str) -> SiteCheck:
    """``down*`` sites cannot be read, ``bad*`` sites fail the schema, others pass."""
    if site.startswith("down"):
        raise Unreadable(f"site {site!r}: cannot connect")
    check = SiteCheck(site=site, csv=f"source of {site}", schema="heart")
    if site.startswith("bad"):
        check.issues.append(Issue("age", None, "all values missing", "record ages"))
    return check


def test_passing_sites_come_back_in_order() -> None:
    checks = check_every_site("TEST", ["b", "a", "c"], _check, Unreadable, Refused)
    assert [c.site for c in checks] == ["b", "a", "c"]


def test_every_failing_site_is_named_in_one_refusal_after_all_were_checked() -> None:
    seen: list[str] = []

    def check(site: str) -> SiteCheck:
        seen.append(site)
        return _check(site)

    with pytest.raises(Refused) as err:
        check_every_site("TEST", ["down1", "ok", "bad1"], check, Unreadable, Refused)
    assert seen == ["down1", "ok", "bad1"]  # the first failure did not stop the others
    lines = str(err.value).splitlines()
    assert lines[0] == "refusing to train: 2 of 3 TEST site(s) failed:"
    assert lines[1] == "site 'down1': cannot connect"
    assert lines[2].startswith("site 'bad1' (source of bad1) fails the federation schema")
    assert "column 'age': all values missing. Fix: record ages" in lines[3]


def test_an_error_other_than_the_sources_is_not_turned_into_a_refusal() -> None:
    def broken(site: str) -> SiteCheck:
        raise KeyError(site)

    with pytest.raises(KeyError):
        check_every_site("TEST", ["a"], broken, Unreadable, Refused)
