"""The SuperLink's database on 127.0.0.1 with real processes: a coordinator restart that the
running sites ride out, and a killed site dropped at the straggler timeout.

One heart-disease federation, 3 rounds (:func:`medsilo.deploy.resilience_probe.restart_and_kill`,
the scenario ``medsilo bench deployment`` times): the coordinator is killed with SIGKILL after
round 1 and resumed; the sites are not touched. With ``RUN/flower/superlink.db`` their node
keys stay registered under the same node ids, so no SuperNode is refused (305) or told 401,
and none is restarted by its supervisor; the keys were registered once, the resumed
coordinator found them registered. Then va's SuperNode is killed with SIGKILL during the
resumed run's first round and the coordinator drops it at the straggler timeout
(``training.min_sites: 2``, so the clock starts once the two others have replied).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medsilo.deploy.loopback import SITES, Loopback, heart_experiment
from medsilo.deploy.resilience_probe import dropped_pattern, restart_and_kill
from medsilo.deploy.site_node import refusals
from medsilo.deploy.superlink_state import DATABASE, FLOWER_DIR, load_registry

from ..markers import FEDERATION_PROCESSES

pytestmark = [pytest.mark.slow, FEDERATION_PROCESSES]


def test_sites_ride_out_a_coordinator_restart_and_a_killed_site_is_dropped(
    tmp_path: Path,
) -> None:
    lb = Loopback(tmp_path, heart_experiment(3, min_sites=2))
    try:
        times = restart_and_kill(lb, victim="va")
    finally:
        lb.stop_all()
    print(
        f"relisten {times.relisten_s:.1f} s, resume {times.resume_s:.1f} s, re-enrol "
        f"{times.reenrol_s:.1f} s, drop {times.drop_s:.1f} s"
    )  # for whoever reads the log
    assert times.exit_code == 0, lb.all_logs()
    run = tmp_path / "run"
    assert (run / FLOWER_DIR / DATABASE).is_file()
    registry = load_registry(run / FLOWER_DIR)
    assert sorted(registry) == sorted(SITES)
    coordinator = lb.log("coordinator-run")
    for site in SITES:  # registered by the first start only
        assert coordinator.count(f"registered SuperNode key of site {site} (node") == 1
        assert f"SuperNode key of site {site} already registered" in coordinator
    # The running sites were never refused nor restarted: same SuperNode, same node id.
    for site, text in times.site_logs_after_restart.items():
        assert not refusals(text), (site, text)
        assert "restarting in" not in text, (site, text)
    enrolment = json.loads((run / "enrolment.json").read_text())  # the resumed run's
    assert {s: e["node"] for s, e in enrolment.items()} == {
        s: r.node_id for s, r in registry.items()
    }
    records = lb.rounds()
    assert [r.round for r in records] == [1, 2, 3]
    assert all("va" in (r.dropped or []) for r in records[1:]), records
    assert json.loads((run / "summary.json").read_text())["resumed_after_round"] >= 1
    (line,) = [m.group(0) for m in dropped_pattern("va").finditer(coordinator)][:1]
    assert "straggler timeout" in line, line  # not the round timeout nor a heartbeat expiry
