"""Hostile traffic at the coordinator's SuperLink port during a loopback run changes nothing.

Three heart-disease sites, 2 rounds, real processes (slow). cleveland reaches the
coordinator through a relay that records what it sends, as a network attacker on the path
would. Once round 1 is recorded, the test sends the SuperLink's port (:mod:`tests.deploy.hostile`):

* random bytes on fresh TCP connections;
* half of a Fleet API request over a verified TLS connection (``Content-Length`` promises
  more), then closes;
* every connection cleveland opened so far, replayed byte for byte (TLS ciphertext).

The half request is not served; a replayed TLS stream meets a new handshake, so the old
session's records do not decrypt and nothing reaches Flower. The SuperLink keeps serving:
the run ends with every site in every round and exactly the in-process engine's model.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from medsilo.config import parse_config
from medsilo.deploy.loopback import SITES, Loopback, heart_experiment, wait_until
from medsilo.runtime.simulation import run_federation
from tests.deploy.hostile import RecordingRelay, replay, send_garbage, send_truncated_request

from ..markers import FEDERATION_PROCESSES

pytestmark = [pytest.mark.slow, FEDERATION_PROCESSES]


def test_garbage_truncated_and_replayed_traffic_leave_the_run_unchanged(tmp_path: Path) -> None:
    lb = Loopback(tmp_path, heart_experiment(2))
    try:
        with RecordingRelay(lb.port) as relay:
            (lb.site_kit("cleveland") / "coordinator.txt").write_text(f"127.0.0.1:{relay.port}\n")
            coordinator = lb.start_coordinator(round_timeout=120)
            nodes = {site: lb.start_site(site) for site in SITES}
            wait_until(lambda: len(lb.rounds()) >= 1, 400, "round 1")
            # hold round 2 open while the hostile traffic goes in: hungarian's SuperNode is
            # paused (a few seconds, well inside Flower's heartbeat), so the run cannot end
            # and close the port before the last replay, however fast the rounds are
            os.killpg(nodes["hungarian"].pid, signal.SIGSTOP)
            try:
                captured = [bytes(c) for c in relay.captured if c]
                for _ in range(3):
                    send_garbage(lb.port)
                truncated = send_truncated_request(lb.port, lb.coordinator_kit / "ca.crt")
                for stream in captured:
                    replay(lb.port, stream)
                running_after_attack = coordinator.poll() is None
            finally:
                os.killpg(nodes["hungarian"].pid, signal.SIGCONT)
            code = lb.wait(coordinator, 400)
    finally:
        lb.stop_all()
    assert code == 0, lb.all_logs()
    assert running_after_attack, "the traffic reached a SuperLink serving a live run"
    assert captured, "cleveland's traffic went through the relay"
    assert not truncated.startswith(b"HTTP/1.1 2"), truncated  # half a request: not served
    # ... though it reached Flower's Fleet route, which saw the client leave mid-body
    superlink = (tmp_path / "run" / "flower" / "superlink.log").read_text(errors="replace")
    assert "[/v1/fleet/pull-messages][UnexpectedError:ClientDisconnect]" in superlink
    records = lb.rounds()
    assert [r.round for r in records] == [1, 2]
    assert all(r.sites == SITES and not r.dropped for r in records)
    enrolment = json.loads((tmp_path / "run" / "enrolment.json").read_text())
    assert sorted(enrolment) == sorted(SITES) and all(e["accepted"] for e in enrolment.values())
    with np.load(tmp_path / "run" / "final_weights.npz") as npz:
        deployed = [npz[f"arr_{i}"] for i in range(len(npz.files))]
    engine = run_federation(parse_config(lb.experiment)).weights
    for a, b in zip(deployed, engine, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
