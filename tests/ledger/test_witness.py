"""Site witnesses catch what a single signed chain cannot: truncation, re-signing, equivocation."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from medsilo.cli import app
from medsilo.experiment import run_experiment
from medsilo.ledger.engine_witnesses import SimulatedSites
from medsilo.ledger.events import RoundEntry
from medsilo.ledger.keys import load_or_create_private_key
from medsilo.ledger.store import Ledger, open_readonly, read_records
from medsilo.ledger.verify import verify_ledger
from medsilo.ledger.witness import WITNESS_KIND, Countersignature, HeadProof, WitnessError
from medsilo.ledger.witness_feed import WitnessFeed
from medsilo.ledger.witness_file import SiteWitness, read_witness_lines

from ..conftest import small_config
from .witnessing import (
    FIRST_HEAD,
    LAST,
    ROUND_2,
    ROUNDS,
    RUN_END,
    SITES,
    end_run,
    findings,
    rewrite_from,
    start_run,
    stored,
    truncate_after,
    where,
    witnessed_round,
    witnessed_run,
)

runner = CliRunner()


@pytest.fixture
def sites(tmp_path: Path) -> SimulatedSites:
    return SimulatedSites(tmp_path / "witness", SITES)


@pytest.fixture
def run(tmp_path: Path, key: Ed25519PrivateKey, sites: SimulatedSites) -> Path:
    path = tmp_path / "ledger.sqlite"
    witnessed_run(path, key, sites)
    return path


def _same_payload(kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    return payload


def _hide_rejection(kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    if kind == "round" and payload["round"] == 2:
        return payload | {"rejected": [{"site": "b", "reason": "non-finite delta"}]}
    return payload


def test_an_honest_run_is_witnessed_by_every_site(
    run: Path, key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    assert verify_ledger(run, key.public_key()).ok
    records = stored(run)
    assert len(records) == LAST and records[RUN_END - 1].kind == "run_end"
    witness = [json.loads(r.payload) for r in records if r.kind == WITNESS_KIND]
    assert len(witness) == len(SITES) * (ROUNDS + 1)
    assert [w["seq"] for w in witness if w["site"] == "a"] == [FIRST_HEAD, 6, ROUND_2, RUN_END]
    assert all(Countersignature.from_payload(w).valid() for w in witness)
    for site in SITES:
        lines = read_witness_lines(tmp_path / "witness" / f"{site}.jsonl")
        assert lines[0]["type"] == "header" and lines[0]["site"] == site
        assert [line["seq"] for line in lines[1:]] == [FIRST_HEAD, 6, ROUND_2, RUN_END]
    assert findings(run, tmp_path / "witness") == []


def test_truncation_after_run_end_is_named_at_the_sites_last_head(
    tmp_path: Path, key: Ed25519PrivateKey, sites: SimulatedSites
) -> None:
    path = tmp_path / "ledger.sqlite"
    witnessed_run(path, key, sites)
    with Ledger(path, key) as ledger:  # a second run in the same ledger (a resume in place)
        feed = WitnessFeed(ledger)
        start_run(ledger, rounds=1)
        witnessed_round(ledger, feed, sites, 1)
        end_run(ledger, feed, sites, rounds=1)
    second_end = stored(path)[-4].seq
    truncate_after(path, LAST)  # everything after the first run: a valid, shorter chain
    assert verify_ledger(path, key.public_key()).ok  # the chain alone cannot tell
    found = findings(path, tmp_path / "witness")
    assert where(found) == {("truncated", site, second_end) for site in SITES}
    assert f"the ledger ends at seq {LAST}" in found[0].reason


def test_a_history_rewritten_with_the_coordinators_own_key_is_named_at_that_record(
    run: Path, key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    rewrite_from(run, ROUND_2, key, _hide_rejection)
    assert verify_ledger(run, key.public_key()).ok  # signed by the real key: the chain is fine
    found = findings(run, tmp_path / "witness")
    heads = {f for f in where(found) if f[0] != "countersignature"}
    assert heads == {("diverged", site, ROUND_2) for site in SITES}
    assert "kind round" in found[0].reason
    # The countersignatures replayed after the rewrite sign hashes the ledger no longer holds.
    replayed = [f for f in found if f.what == "countersignature"]
    assert replayed and all(f.seq > ROUND_2 and "does not hold" in f.reason for f in replayed)


def test_a_chain_re_signed_under_a_new_key_is_named(
    run: Path, key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    forger = Ed25519PrivateKey.generate()
    rewrite_from(run, 1, forger, _same_payload)
    assert verify_ledger(run, forger.public_key()).ok
    found = where(findings(run, tmp_path / "witness"))
    assert {("re-signed", site, 1) for site in SITES} <= found
    assert {("diverged", site, 1) for site in SITES} <= found  # every site saw the genesis


def test_equivocation_names_the_record_and_the_site_shown_the_other_history(
    tmp_path: Path, key: Ed25519PrivateKey, sites: SimulatedSites
) -> None:
    main, fork = tmp_path / "ledger.sqlite", tmp_path / "fork.sqlite"
    with Ledger(main, key) as ledger:
        feed = WitnessFeed(ledger)
        start_run(ledger)
        witnessed_round(ledger, feed, sites, 1)
        feed.record(2, sites.countersign(feed.proofs(SITES)))  # round 2's heads, then fork:
    shutil.copy(main, fork)
    with Ledger(main, key) as shown_to_a_and_c, Ledger(fork, key) as shown_to_b:
        main_feed, fork_feed = WitnessFeed(shown_to_a_and_c), WitnessFeed(shown_to_b)
        shown_to_a_and_c.append("round", _round(2, rejected=False))
        shown_to_b.append("round", _round(2, rejected=True))  # the same seq, another record
        main_feed.record(3, sites.countersign(main_feed.proofs(["a", "c"])))
        fork_feed.record(3, sites.countersign(fork_feed.proofs(["b"])))
        # Later the coordinator shows b the main history: b refuses and keeps the evidence.
        with pytest.raises(WitnessError, match=f"record seq {ROUND_2} has hash"):
            sites.countersign(main_feed.proofs(["b"]))
    found = findings(main, tmp_path / "witness")
    assert ("diverged", "b", ROUND_2) in where(found)
    assert ("equivocation", "b", ROUND_2) in where(found)  # a and b saw different seq 10s
    cross = [f for f in found if f.what == "equivocation" and "sites a and b" in f.reason]
    assert cross and cross[0].seq == ROUND_2
    refused = [f for f in found if "refused" in f.reason]
    assert refused and refused[0].site == "b" and refused[0].seq == ROUND_2
    assert "signed by the coordinator" in refused[0].reason
    assert verify_ledger(main, key.public_key(), require_end=False).ok  # each chain is valid


def _round(rnd: int, rejected: bool) -> dict[str, Any]:
    reasons = [{"site": "b", "reason": "non-finite delta"}] if rejected else []
    return RoundEntry(rnd, f"{rnd:064x}", SITES, "none", reasons).payload()


def test_a_site_refuses_gaps_rewinds_broken_and_foreign_records(
    tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    site_key = Ed25519PrivateKey.generate()
    witness = SiteWitness(tmp_path / "a.jsonl", "a", site_key)
    with Ledger(tmp_path / "l.sqlite", key) as ledger:
        start_run(ledger)
        records = ledger.records()
        ledger.append("round", _round(1, False))
        ledger.append("round", _round(2, False))
        later = ledger.records()
    with pytest.raises(WitnessError, match="must start at the genesis"):
        witness.witness(HeadProof(tuple(later[1:])))
    witness.witness(HeadProof(tuple(records)))  # seq 1..2
    with pytest.raises(WitnessError, match=r"records 3\.\.3 are missing"):
        witness.witness(HeadProof((later[3],)))
    forged = dataclasses.replace(later[2], payload=b'{"round":9}')
    with pytest.raises(WitnessError, match="hash mismatch"):
        witness.witness(HeadProof((forged,)))
    with Ledger(tmp_path / "other.sqlite", Ed25519PrivateKey.generate()) as other:
        start_run(other)
        other.append("round", _round(1, False))
        foreign = other.records()[2]
    with pytest.raises(WitnessError, match="not signed by the coordinator key"):
        witness.witness(HeadProof((foreign,)))
    assert witness.witness(HeadProof(tuple(later[2:]))).seq == 4
    with pytest.raises(WitnessError, match="behind the head seq 4"):
        witness.witness(HeadProof((later[1],)))
    lines = read_witness_lines(tmp_path / "a.jsonl")
    assert [line["type"] for line in lines] == [
        "refused", "header", "head", "refused", "refused", "refused", "head", "refused"
    ]  # fmt: skip
    reopened = SiteWitness(tmp_path / "a.jsonl", "a", site_key)  # state comes from the file
    assert reopened.last == (4, later[3].hash)
    with pytest.raises(ValueError, match="another site key"):
        SiteWitness(tmp_path / "a.jsonl", "a", Ed25519PrivateKey.generate())


def test_a_forged_countersignature_in_the_ledger_is_named(
    run: Path, key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    impostor = Ed25519PrivateKey.generate()
    head = stored(run)[-1]
    forged = Countersignature.sign(impostor, "c", head.seq, head.hash)
    with Ledger(run, key) as ledger:
        feed = WitnessFeed(ledger)
        feed.record(None, {"c": forged})  # the feed only checks the signature's own key
        appended = ledger.records()[-1].seq
        bad = Countersignature("a", head.seq, head.hash, forged.public_key, "00" * 64)
        feed.record(None, {"a": bad})  # does not verify at all: left out
        assert ledger.records()[-1].seq == appended
    assert where(findings(run, tmp_path / "witness")) == {("countersignature", "c", appended)}


def test_a_witness_line_the_coordinator_never_signed_proves_nothing(
    run: Path, tmp_path: Path
) -> None:
    path = tmp_path / "witness" / "a.jsonl"
    fabricated = {
        "type": "head", "seq": 99, "hash": "ab" * 32, "kind": "round",
        "coordinator_signature": "00" * 64, "countersignature": "00" * 64,
    }  # fmt: skip
    with path.open("a") as out:
        out.write(json.dumps(fabricated) + "\n")
    assert where(findings(run, tmp_path / "witness")) == {("bad witness line", "a", 99)}


@pytest.fixture(scope="module")
def engine_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 2-round, 4-site engine run (``medsilo simulate``'s path) with its sites witnessing,
    and its coordinator key."""
    key = tmp_path_factory.mktemp("key") / "coordinator.pem"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEDSILO_COORDINATOR_KEY", str(key))
        cfg = small_config(
            training={"rounds": 2, "local_steps": 3, "batch_size": 8, "lr": 0.1},
            governance={"site_witness": True},
        )
        return run_experiment(cfg, tmp_path_factory.mktemp("runs") / "run").run_dir, key


def _copy_run(run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("ledger.sqlite", "ledger.pub"):
        shutil.copy(run / name, copy / name)
    return copy


def test_engine_sites_witness_the_run_and_the_cli_holds_the_ledger_to_them(
    engine_run: tuple[Path, Path], tmp_path: Path
) -> None:
    run, key_path = engine_run
    names = ["cleveland", "hungarian", "switzerland", "va"]
    assert sorted(p.name for p in (run / "witness").glob("*.jsonl")) == [
        f"{n}.jsonl" for n in names
    ]
    assert all(((run / "witness" / f"{n}.key").stat().st_mode & 0o777) == 0o600 for n in names)
    witness = ["--witness", str(run / "witness")]
    ok = runner.invoke(app, ["audit", "verify", str(run), *witness])
    assert ok.exit_code == 0, ok.output
    assert "WITNESSED" in ok.output and "up to seq 13" in ok.output  # run_end: seq 13

    rewritten = _copy_run(run, tmp_path)  # round 2 (seq 12) rewritten with the real key
    coordinator = load_or_create_private_key(key_path)
    rewrite_from(rewritten / "ledger.sqlite", 12, coordinator, _hide_rejection)
    res = runner.invoke(app, ["audit", "verify", str(rewritten), *witness])
    assert res.exit_code == 1, res.output
    assert "OK: 17 record(s) verified" in res.output  # the chain alone is fine
    for name in names:
        assert f"WITNESS diverged at record seq 12, site {name}" in res.output


def test_cli_witness_input_errors_exit_2(engine_run: tuple[Path, Path], tmp_path: Path) -> None:
    run, _ = engine_run
    empty = tmp_path / "empty"
    empty.mkdir()
    res = runner.invoke(app, ["audit", "verify", str(run), "--witness", str(empty)])
    assert res.exit_code == 2 and "no witness file" in res.output
    bogus = tmp_path / "bogus.jsonl"
    bogus.write_text('{"type": "head", "seq": 1}\n')
    res = runner.invoke(app, ["audit", "verify", str(run), "--witness", str(bogus)])
    assert res.exit_code == 2 and "no header line" in res.output


def test_head_proofs_and_countersignatures_travel_in_flower_records(
    run: Path, tmp_path: Path
) -> None:
    from flwr.app import ConfigRecord, RecordDict

    from medsilo.runtime.flower import witness_records as wire
    from medsilo.runtime.flower.server_app import countersignatures

    proof = HeadProof(tuple(stored(run)))
    shared = RecordDict({"round": ConfigRecord({"round": 1})})
    content = wire.with_head(shared, proof)
    assert wire.HEAD not in shared  # the broadcast other sites get is left alone
    assert wire.read_head(content) == proof and wire.read_head(shared) is None
    signature = SiteWitness(tmp_path / "s.jsonl", "s", Ed25519PrivateKey.generate()).witness(
        wire.read_head(content) or proof
    )
    reply = wire.add_countersignature(RecordDict(), signature)
    garbled = RecordDict({wire.COUNTERSIGNATURE: ConfigRecord({"signature": b"not json"})})
    got = countersignatures("round 1", {"s": reply, "t": garbled, "u": RecordDict()})
    assert got == {"s": signature}  # the unreadable one is logged and left out


def test_a_restarted_coordinator_sends_each_site_only_what_it_has_not_countersigned(
    run: Path, key: Ed25519PrivateKey, sites: SimulatedSites
) -> None:
    with Ledger(run, key) as ledger:
        feed = WitnessFeed(ledger)  # a new feed: what each site acknowledged, from the ledger
        assert feed.acknowledged == dict.fromkeys(SITES, RUN_END)
        proofs = feed.proofs(SITES)
        assert [r.seq for r in proofs["a"].records] == list(range(RUN_END + 1, LAST + 1))
        signed = sites.countersign(proofs)  # the sites accept the continuation
        assert {s.seq for s in signed.values()} == {LAST}
        feed.record(None, signed)
        later = [r.seq for r in feed.proofs(["a"])["a"].records]
        assert later == [LAST + 1, LAST + 2, LAST + 3]  # only the 3 countersignatures just ledgered
        head = ledger.records()[-1]
        feed.acknowledged["b"] = head.seq  # a site already at the head is shown the head again
        assert feed.proofs(["b"])["b"].records == (head,)


def test_engine_witnessing_is_off_unless_asked_for(tmp_path: Path) -> None:
    """The engine's sites share the coordinator's process and keys: by default they do not
    go through the motions (``governance.site_witness: true`` does, as above)."""
    training = {"rounds": 2, "local_steps": 3, "batch_size": 8, "lr": 0.1}
    cfg = small_config(training=training)
    assert cfg.governance.site_witness is False
    run = run_experiment(cfg, tmp_path / "run").run_dir
    assert not (run / "witness").exists()
    conn = open_readonly(run / "ledger.sqlite")
    kinds = [r.kind for r in read_records(conn)]
    conn.close()
    assert WITNESS_KIND not in kinds and kinds[-1] == "run_end"
    ok = runner.invoke(app, ["audit", "verify", str(run)])
    assert ok.exit_code == 0, ok.output
