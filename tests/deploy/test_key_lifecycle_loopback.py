"""Key lifecycle on 127.0.0.1 with real processes: an added site trains, a revoked one is out.

One federation, one round (slow; the fast equivalents drive the same apps through a fake
grid, tests/runtime/flower/test_deployed_key_lifecycle.py): cleveland and hungarian are
provisioned, va is added afterwards with ``medsilo provision add-site`` (nobody else's kit
re-issued) and hungarian is revoked with ``revoke-site``. All three sites are started; the
real SuperLink refuses hungarian's node key (the coordinator no longer registers it), the
round completes with cleveland and va, and the run's ledger records hungarian as revoked.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medsilo.cli import app
from medsilo.deploy.loopback import SITES, Loopback, heart_experiment
from tests.deploy.tree import tree_hashes
from tests.runtime.flower.test_deployed_key_lifecycle import enrolment_records

from ..markers import FEDERATION_PROCESSES

pytestmark = [pytest.mark.slow, FEDERATION_PROCESSES]
runner = CliRunner()


@pytest.fixture
def loopback(tmp_path: Path) -> Iterator[Loopback]:
    lb = Loopback(tmp_path, heart_experiment(1), sites=SITES[:2])
    yield lb
    lb.stop_all()


def test_an_added_site_trains_and_a_revoked_site_is_refused_by_the_superlink(
    loopback: Loopback, tmp_path: Path
) -> None:
    lb, kits = loopback, tmp_path / "kits"
    cleveland = tree_hashes(lb.site_kit("cleveland"))
    added = runner.invoke(app, ["provision", "add-site", str(kits), "--name", "va"])
    assert added.exit_code == 0, added.output
    revoke = ["provision", "revoke-site", str(kits), "--name", "hungarian", "--reason", "test"]
    revoked = runner.invoke(app, revoke)
    assert revoked.exit_code == 0, revoked.output
    assert tree_hashes(lb.site_kit("cleveland")) == cleveland  # shipped kits stay valid

    coordinator = lb.start_coordinator(round_timeout=60)
    for site in SITES:
        lb.start_site(site)
    assert lb.wait(coordinator, 600) == 0, lb.all_logs()  # a ceiling: shared CI cores

    run = tmp_path / "run"
    (record,) = lb.rounds()
    assert record["sites"] == SITES and record["dropped"] == ["hungarian"]
    enrolment = json.loads((run / "enrolment.json").read_text())
    assert sorted(enrolment) == ["cleveland", "va"]  # hungarian never got to enrol
    assert all(e["accepted"] for e in enrolment.values())
    records = enrolment_records(run)  # the ledger verifies, too
    assert sorted(r["site"] for r in records if r["action"] == "enrolled") == ["cleveland", "va"]
    (out,) = [r for r in records if r["action"] == "revoked"]
    assert out["site"] == "hungarian" and out["details"]["refused_at"].startswith("connection")
    assert "not registering hungarian" in lb.log("coordinator-run")
    # The SuperLink turned its node key away; the site's supervisor says so.
    assert "refused this site's node key" in lb.log("site-hungarian"), lb.log("site-hungarian")
