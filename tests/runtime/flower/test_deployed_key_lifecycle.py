"""Key lifecycle through the deployed apps (push/pull fake grid, as test_deployed_apps.py).

A site added after provisioning (``medsilo provision add-site``) enrols with its new keys and
the run equals the engine's for the same roster; a revoked site (``revoke-site``) is refused
at enrolment, gets no training message and is ledgered as an ``enrolment`` record
``revoked``, and one whose node never reaches the coordinator (its key is not registered) is
ledgered as revoked all the same.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from medsilo.config import parse_config
from medsilo.deploy.add_site import add_site
from medsilo.deploy.loopback import SITES
from medsilo.deploy.revocation import revoke_site
from medsilo.ledger.keys import load_public_key
from medsilo.ledger.store import open_readonly, read_records
from medsilo.ledger.verify import verify_ledger
from medsilo.runtime.simulation import run_federation

from .test_apps_inprocess import one_thread, task_identity  # noqa: F401  (autouse fixtures)
from .test_deployed_apps import Federation, experiment, final_weights, rounds


def enrolment_records(run_dir: Path) -> list[dict[str, Any]]:
    assert verify_ledger(run_dir / "ledger.sqlite", load_public_key(run_dir / "ledger.pub")).ok
    conn = open_readonly(run_dir / "ledger.sqlite")
    try:
        return [json.loads(r.payload) for r in read_records(conn) if r.kind == "enrolment"]
    finally:
        conn.close()


def test_a_site_added_after_provisioning_trains_and_the_model_equals_the_engines(
    tmp_path: Path,
) -> None:
    fed = Federation(tmp_path, experiment(), provisioned=SITES[:2])
    add_site(tmp_path / "kits", SITES[2])
    run_dir = fed.run(fed.grid())
    engine = run_federation(parse_config(fed.exp))
    for a, b in zip(final_weights(run_dir), engine.weights, strict=True):
        assert np.array_equal(a, b)
    enrolment = json.loads((run_dir / "enrolment.json").read_text())
    assert enrolment[SITES[2]]["accepted"], enrolment[SITES[2]]
    assert sorted(r["site"] for r in enrolment_records(run_dir)) == sorted(SITES)


def test_a_revoked_site_is_refused_at_enrolment_and_ledgered(tmp_path: Path) -> None:
    fed = Federation(tmp_path, experiment())
    revoke_site(tmp_path / "kits", "va", "attestation key copied to an unmanaged laptop")
    grid = fed.grid()
    run_dir = fed.run(grid)  # no --min-sites: every site that is not revoked must enrol
    enrolment = json.loads((run_dir / "enrolment.json").read_text())
    assert not enrolment["va"]["accepted"]
    assert "revoked by the federation's certificate authority" in enrolment["va"]["reason"]
    va = next(n for n, c in grid.contexts.items() if c.node_config["site"] == "va")
    assert grid.received[(va, "train")] == 0
    assert all("va" in r["dropped"] for r in rounds(run_dir))
    (revoked,) = [r for r in enrolment_records(run_dir) if r["action"] == "revoked"]
    assert revoked["site"] == "va" and revoked["details"]["node"] == va
    assert "unmanaged laptop" in revoked["details"]["reason"]
    assert revoked["details"]["refused_at"] == "enrolment"


def test_a_revoked_site_that_cannot_connect_is_still_ledgered(tmp_path: Path) -> None:
    """Its key is not registered, so the SuperLink never lets its node in (the fake grid
    simply lacks it); the run goes on with the others and its ledger says va is revoked."""
    fed = Federation(tmp_path, experiment())
    revoke_site(tmp_path / "kits", "va", "left the consortium")
    grid = fed.grid()
    for node in [n for n, c in grid.contexts.items() if c.node_config["site"] == "va"]:
        del grid.contexts[node]
    run_dir = fed.run(grid)
    assert [r["round"] for r in rounds(run_dir)] == [1, 2]
    records = enrolment_records(run_dir)
    (revoked,) = [r for r in records if r["action"] == "revoked"]
    assert revoked["site"] == "va" and "node" not in revoked["details"]
    assert revoked["details"]["refused_at"].startswith("connection")
    assert sorted(r["site"] for r in records if r["action"] == "enrolled") == SITES[:2]
