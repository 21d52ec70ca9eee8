"""Deployed sites witness the coordinator's ledger: each keeps the heads on its own disk, and
``medsilo audit verify --witness`` holds the coordinator's ledger against them (a real
SuperLink, SuperNodes, TLS and node keys on 127.0.0.1, as in test_loopback.py)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medsilo.cli import app
from medsilo.deploy.kit_files import load_attest_private_key
from medsilo.deploy.loopback import Loopback, heart_experiment
from medsilo.ledger.store import open_readonly, read_records
from medsilo.ledger.witness import WITNESS_KIND
from medsilo.ledger.witness_file import read_witness_lines
from medsilo.ledger.witness_keys import WITNESS_KEYS_FILE

from ..ledger.conftest import tamper
from ..markers import FEDERATION_PROCESSES

pytestmark = [pytest.mark.slow, FEDERATION_PROCESSES]
ROUNDS = 2


@pytest.fixture
def loopback(tmp_path: Path) -> Iterator[Loopback]:
    # the engine's switch does not reach a deployment: its sites witness all the same
    lb = Loopback(tmp_path, heart_experiment(ROUNDS) | {"governance": {"site_witness": False}})
    yield lb
    lb.stop_all()


def test_deployed_sites_witness_every_round_and_the_end(loopback: Loopback, tmp_path: Path) -> None:
    coordinator = loopback.start_coordinator()
    for site in loopback.sites:
        loopback.start_site(site)
    assert loopback.wait(coordinator, 900) == 0, loopback.all_logs()
    run = tmp_path / "run"
    conn = open_readonly(run / "ledger.sqlite")
    records = list(read_records(conn))
    conn.close()
    run_end = next(r for r in records if r.kind == "run_end")
    signed = [json.loads(r.payload) for r in records if r.kind == WITNESS_KIND]
    pins = json.loads((run / WITNESS_KEYS_FILE).read_text())
    assert pins["run"] and {s["run"] for s in signed} == {pins["run"]}  # the run key, signed
    files = []
    for site in loopback.sites:
        attest = load_attest_private_key(loopback.site_kit(site) / "attest.key").public_key()
        assert pins["keys"][site] == attest.public_bytes_raw().hex()  # its enrolled key
        (path,) = (loopback.site_kit(site) / "witness").glob("*.jsonl")  # on the site's disk
        heads = [line for line in read_witness_lines(path) if line["type"] == "head"]
        assert len(heads) == ROUNDS + 1, heads  # each round's train message, and the end
        assert heads[-1]["seq"] == run_end.seq and heads[-1]["kind"] == "run_end"
        assert [s["seq"] for s in signed if s["site"] == site] == [h["seq"] for h in heads]
        files += ["--witness", str(path)]
    ok = CliRunner().invoke(app, ["audit", "verify", str(run), *files])
    assert ok.exit_code == 0, ok.output
    assert "WITNESSED" in ok.output and "NOT CHECKED" not in ok.output
    first, *others = loopback.sites  # one site's file only: the others are named as unchecked
    partial = CliRunner().invoke(app, ["audit", "verify", str(run), *files[:2]])
    assert partial.exit_code == 0, partial.output
    for site in others:
        assert f"NOT CHECKED: site {site} (no witness file given)" in partial.output
    assert f"NOT CHECKED: site {first} " not in partial.output

    copy = tmp_path / "copy"  # the coordinator cuts its ledger back to before run_end
    copy.mkdir()
    for name in ("ledger.sqlite", "ledger.pub", WITNESS_KEYS_FILE):
        shutil.copy(run / name, copy / name)
    tamper(copy / "ledger.sqlite", "DELETE FROM records WHERE seq >= ?", (run_end.seq,))
    cut = CliRunner().invoke(app, ["audit", "verify", str(copy), "--no-require-end", *files])
    assert cut.exit_code == 1, cut.output
    for site in loopback.sites:
        assert f"truncated at record seq {run_end.seq}, site {site}" in cut.output
