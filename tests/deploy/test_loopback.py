"""A deployed federation on 127.0.0.1: real SuperLink, SuperNodes, TLS and node keys.

Each test starts ``python -m medsilo coordinator start`` and three ``medsilo site start``
processes on heart disease (cleveland, hungarian, va) and checks what issue 6 asks: the
result equals the in-process engine's; an unregistered node never joins; a site whose
attestation does not verify is refused and the refusal is logged; a site killed mid-run does
not stop the run; a coordinator killed after round 2 resumes at round 3 and ends with the
uninterrupted run's model.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from medsilo.config import parse_config
from medsilo.deploy.loopback import Loopback, heart_experiment, kill, wait_until
from medsilo.deploy.site_node import ACTIVATION_REFUSED
from medsilo.ledger.keys import load_public_key
from medsilo.ledger.store import open_readonly, read_records
from medsilo.ledger.verify import verify_ledger
from medsilo.runtime.simulation import run_federation

from ..markers import FEDERATION_PROCESSES

pytestmark = [pytest.mark.slow, FEDERATION_PROCESSES]


@pytest.fixture
def loopback_factory(tmp_path: Path) -> Iterator[list[Loopback]]:
    made: list[Loopback] = []
    yield made
    for lb in made:
        lb.stop_all()


def _new(made: list[Loopback], root: Path, rounds: int, **training: object) -> Loopback:
    lb = Loopback(root, heart_experiment(rounds, **training))
    made.append(lb)
    return lb


def _final_weights(run_dir: Path) -> list[np.ndarray]:
    with np.load(run_dir / "final_weights.npz") as npz:
        return [npz[f"arr_{i}"] for i in range(len(npz.files))]


def _engine_weights(lb: Loopback) -> list[np.ndarray]:
    return run_federation(parse_config(lb.experiment)).weights


def _ledger(run_dir: Path) -> list[tuple[str, dict[str, object]]]:
    """The run's ledger, verified with its ``ledger.pub``: ``(kind, payload)`` per record."""
    result = verify_ledger(run_dir / "ledger.sqlite", load_public_key(run_dir / "ledger.pub"))
    assert result.ok, result.problem
    conn = open_readonly(run_dir / "ledger.sqlite")
    try:
        return [(r.kind, json.loads(r.payload)) for r in read_records(conn)]
    finally:
        conn.close()


def _copy_kit(lb: Loopback, site: str, name: str) -> Path:
    kit = lb.root / "kits" / name
    shutil.copytree(lb.site_kit(site), kit)
    return kit


def test_three_sites_match_the_engine_and_an_unregistered_node_is_refused(
    tmp_path: Path, loopback_factory: list[Loopback]
) -> None:
    lb = _new(loopback_factory, tmp_path, rounds=3)
    # An impostor: cleveland's kit (CA, attestation key, name) with a node key the
    # coordinator never registered. TLS works; SuperNode authentication must refuse it.
    impostor = _copy_kit(lb, "cleveland", "impostor")
    key = ec.generate_private_key(ec.SECP384R1())
    (impostor / "node.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    coordinator = lb.start_coordinator()
    lb.start_site("impostor", impostor)
    for site in lb.sites:
        lb.start_site(site)
    assert lb.wait(coordinator, 300) == 0, lb.all_logs()

    run = tmp_path / "run"
    deployed, engine = _final_weights(run), _engine_weights(lb)
    assert len(deployed) == len(engine)
    for a, b in zip(deployed, engine, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    records = lb.rounds()
    assert [r["round"] for r in records] == [1, 2, 3]
    assert all(r["sites"] == lb.sites and not r.get("dropped") for r in records)
    enrolment = json.loads((run / "enrolment.json").read_text())
    assert sorted(enrolment) == sorted(lb.sites)  # the impostor never got to enrol
    assert all(e["accepted"] and e["backend"] == "software" for e in enrolment.values())
    kinds = [kind for kind, _ in _ledger(run)]
    assert kinds.count("enrolment") == 3 and kinds.count("round") == 3
    assert "summary.json" in {p.name for p in run.iterdir()}
    # Flower's SuperLink refused the unregistered node's key: failed connection attempts
    # while it starts, then "failed to activate" (exit code 305) on every try once it is up.
    impostor = lb.log("site-impostor")
    refusals = ("Connection attempt failed", "401", ACTIVATION_REFUSED)
    assert any(refusal in impostor for refusal in refusals), impostor


def test_bad_attestation_is_refused_and_a_killed_site_does_not_stop_the_run(
    tmp_path: Path, loopback_factory: list[Loopback]
) -> None:
    lb = _new(loopback_factory, tmp_path, rounds=4)
    # va's attestation key is replaced: its evidence no longer verifies with the key the
    # coordinator holds for va.
    (lb.site_kit("va") / "attest.key").write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    coordinator = lb.start_coordinator("run", "--min-sites", "2", round_timeout=15)
    sites = {site: lb.start_site(site) for site in lb.sites}
    wait_until(lambda: len(lb.rounds()) >= 1, 240, "round 1")
    kill(sites["hungarian"])  # dies mid-run, without a goodbye
    assert lb.wait(coordinator, 300) == 0, lb.all_logs()

    run = tmp_path / "run"
    enrolment = json.loads((run / "enrolment.json").read_text())
    assert enrolment["va"]["accepted"] is False
    assert "signature" in enrolment["va"]["reason"]
    assert enrolment["cleveland"]["accepted"] and enrolment["hungarian"]["accepted"]
    assert "REFUSED" in lb.log("coordinator-run")
    assert "REFUSED by the coordinator" in lb.log("site-va")
    records = lb.rounds()
    assert [r["round"] for r in records] == [1, 2, 3, 4]
    last = records[-1]
    assert "hungarian" in last.get("dropped", []), last
    assert last["test"]["n"] > 0  # cleveland still trained and evaluated
    refused = [p for kind, p in _ledger(run) if kind == "attestation" and p.get("site") == "va"]
    assert refused and refused[0]["verified"] is False


def test_a_coordinator_killed_after_round_2_resumes_at_round_3(
    tmp_path: Path, loopback_factory: list[Loopback]
) -> None:
    lb = _new(loopback_factory, tmp_path, rounds=4)
    coordinator = lb.start_coordinator()
    for site in lb.sites:
        lb.start_site(site)
    checkpoint = tmp_path / "run" / "checkpoints" / "round-0002.json"
    wait_until(checkpoint.exists, 240, "the checkpoint of round 2")
    kill(coordinator)  # kill -9 the coordinator, its SuperLink and its ServerApp
    assert not (tmp_path / "run" / "summary.json").exists()

    resumed = lb.start_coordinator("run", "--resume")
    assert lb.wait(resumed, 300) == 0, lb.all_logs()
    records = lb.rounds()
    assert [r["round"] for r in records] == [1, 2, 3, 4]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["resumed_after_round"] >= 2
    deployed, engine = _final_weights(tmp_path / "run"), _engine_weights(lb)
    for a, b in zip(deployed, engine, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    starts = [p for kind, p in _ledger(tmp_path / "run") if kind == "run_start"]
    assert len(starts) == 2 and starts[1]["resumed_after_round"] == summary["resumed_after_round"]
