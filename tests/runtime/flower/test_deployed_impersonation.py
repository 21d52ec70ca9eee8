"""A node presenting another site's node key, or another site's attestation, is refused and
ledgered (deployed apps through the push/pull fake grid, as test_deployed_apps.py).

The SuperLink only proves that a node holds *some* registered key; which site that key
belongs to is in ``RUN/flower/registered-nodes.json`` (written by the coordinator when it
registers the keys, :mod:`medsilo.deploy.superlink_state`). Here va's node key is stolen:
node 50 holds it (the SuperLink would give it va's node id, 50 in the fake) but runs
cleveland's kit (cleveland's name and stolen attestation key too). And hungarian's node
attests with cleveland's attestation key. Both are refused before training and recorded in
the audit ledger; the real cleveland still enrols.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from flwr.app import Context, RecordDict

from medsilo.deploy.superlink_state import FLOWER_DIR, REGISTRY

from .test_apps_inprocess import one_thread, task_identity  # noqa: F401  (autouse fixtures)
from .test_deployed_apps import HEART, Federation, experiment, rounds
from .test_deployed_key_lifecycle import enrolment_records


def test_another_sites_node_key_or_attestation_is_refused_and_ledgered(tmp_path: Path) -> None:
    fed = Federation(tmp_path, experiment())
    grid = fed.grid()  # nodes 100 (cleveland), 107 (hungarian), 114 (va)
    sites = tmp_path / "kits" / "sites"
    del grid.contexts[114]  # va itself is down; its node key is node 50's
    grid.contexts[50] = Context(
        run_id=7,
        node_id=50,
        node_config={"site": "cleveland", "kit": str(sites / "cleveland"), "data": str(HEART)},
        state=RecordDict(),
        run_config={},
    )
    shutil.copy(sites / "cleveland" / "attest.key", sites / "hungarian" / "attest.key")
    registry = {"cleveland": 100, "hungarian": 107, "va": 50}
    (tmp_path / "run" / FLOWER_DIR).mkdir(parents=True)
    (tmp_path / "run" / FLOWER_DIR / REGISTRY).write_text(
        json.dumps({s: {"node_id": n, "key_sha256": "0" * 64} for s, n in registry.items()})
    )

    run_dir = fed.run(grid, min_sites=1)

    enrolment = json.loads((run_dir / "enrolment.json").read_text())
    assert enrolment["cleveland"]["accepted"] and enrolment["cleveland"]["node"] == 100
    assert enrolment["hungarian"]["accepted"] is False
    assert "signature" in enrolment["hungarian"]["reason"]
    records = enrolment_records(run_dir)  # the ledger verifies
    (stolen,) = [r for r in records if r["action"] == "refused"]
    assert stolen["site"] == "cleveland" and stolen["details"]["node"] == 50
    assert "presents the node key of va" in stolen["details"]["reason"]
    assert [r["site"] for r in records if r["action"] == "enrolled"] == ["cleveland"]
    assert grid.received[(50, "train")] == 0 and grid.received[(107, "train")] == 0
    assert all(r["dropped"] == ["hungarian", "va"] for r in rounds(run_dir))
