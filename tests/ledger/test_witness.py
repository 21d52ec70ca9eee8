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
from medsilo.ledger.events import Enrolment, RoundEntry, record_enrolment
from medsilo.ledger.keys import fingerprint, load_or_create_private_key, write_public_key
from medsilo.ledger.store import Ledger, open_readonly, read_records
from medsilo.ledger.verify import verify_ledger, verify_records
from medsilo.ledger.witness import WITNESS_KIND, Countersignature, HeadProof, WitnessError
from medsilo.ledger.witness_feed import WitnessFeed
from medsilo.ledger.witness_file import SiteWitness, read_witness_lines
from medsilo.ledger.witness_keys import WITNESS_KEYS_FILE
from medsilo.ledger.witness_verify import WitnessLog, check_countersignatures, check_witnesses

from ..conftest import small_config
from .conftest import tamper
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
    run: Path, key: Ed25519PrivateKey, sites: SimulatedSites, tmp_path: Path
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
        assert lines[1]["type"] == "coordinator"
        assert lines[1]["ledger_key"] == key.public_key().public_bytes_raw().hex()
        assert [line["seq"] for line in lines[2:]] == [FIRST_HEAD, 6, ROUND_2, RUN_END]
    assert findings(run, sites) == []


def test_truncation_after_run_end_is_named_at_the_sites_last_head(
    tmp_path: Path, key: Ed25519PrivateKey, sites: SimulatedSites
) -> None:
    path = tmp_path / "ledger.sqlite"
    witnessed_run(path, key, sites)
    with Ledger(path, key) as ledger:  # a second run in the same ledger (a resume in place)
        feed = WitnessFeed(ledger, sites.pins())
        start_run(ledger, rounds=1)
        witnessed_round(ledger, feed, sites, 1)
        end_run(ledger, feed, sites, rounds=1)
    second_end = stored(path)[-4].seq
    truncate_after(path, LAST)  # everything after the first run: a valid, shorter chain
    assert verify_ledger(path, key.public_key()).ok  # the chain alone cannot tell
    found = findings(path, sites)
    assert where(found) == {("truncated", site, second_end) for site in SITES}
    assert f"the ledger ends at seq {LAST}" in found[0].reason


def test_a_history_rewritten_with_the_coordinators_own_key_is_named_at_that_record(
    run: Path, key: Ed25519PrivateKey, sites: SimulatedSites
) -> None:
    rewrite_from(run, ROUND_2, key, _hide_rejection)
    assert verify_ledger(run, key.public_key()).ok  # signed by the real key: the chain is fine
    found = findings(run, sites)
    heads = {f for f in where(found) if f[0] != "countersignature"}
    assert heads == {("diverged", site, ROUND_2) for site in SITES}
    assert "kind round" in found[0].reason
    # The countersignatures replayed after the rewrite sign hashes the ledger no longer holds.
    replayed = [f for f in found if f.what == "countersignature"]
    assert replayed and all(f.seq > ROUND_2 and "does not hold" in f.reason for f in replayed)


def test_a_chain_re_signed_under_a_new_key_is_named(run: Path, sites: SimulatedSites) -> None:
    forger = Ed25519PrivateKey.generate()
    rewrite_from(run, 1, forger, _same_payload)
    assert verify_ledger(run, forger.public_key()).ok
    found = where(findings(run, sites))
    assert {("re-signed", site, 1) for site in SITES} <= found
    assert {("diverged", site, 1) for site in SITES} <= found  # every site saw the genesis


def test_equivocation_names_the_record_and_the_site_shown_the_other_history(
    tmp_path: Path, key: Ed25519PrivateKey, sites: SimulatedSites
) -> None:
    main, fork = tmp_path / "ledger.sqlite", tmp_path / "fork.sqlite"
    with Ledger(main, key) as ledger:
        feed = WitnessFeed(ledger, sites.pins())
        start_run(ledger)
        witnessed_round(ledger, feed, sites, 1)
        feed.record(2, sites.countersign(feed.proofs(SITES)))  # round 2's heads, then fork:
    shutil.copy(main, fork)
    pins = sites.pins()
    with Ledger(main, key) as shown_to_a_and_c, Ledger(fork, key) as shown_to_b:
        main_feed, fork_feed = WitnessFeed(shown_to_a_and_c, pins), WitnessFeed(shown_to_b, pins)
        shown_to_a_and_c.append("round", _round(2, rejected=False))
        shown_to_b.append("round", _round(2, rejected=True))  # the same seq, another record
        main_feed.record(3, sites.countersign(main_feed.proofs(["a", "c"])))
        fork_feed.record(3, sites.countersign(fork_feed.proofs(["b"])))
        # Later the coordinator shows b the main history: b refuses and keeps the evidence.
        with pytest.raises(WitnessError, match=f"record seq {ROUND_2} has hash"):
            sites.countersign(main_feed.proofs(["b"]))
    found = findings(main, sites)
    assert ("diverged", "b", ROUND_2) in where(found)
    assert ("equivocation", "b", ROUND_2) in where(found)  # a and b saw different seq 10s
    cross = [f for f in found if f.what == "equivocation" and "sites a and b" in f.reason]
    assert cross and cross[0].seq == ROUND_2
    refused = [f for f in found if f.what == "refused"]
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
    with pytest.raises(WitnessError, match="signature does not verify with the public key"):
        witness.witness(HeadProof((foreign,)))
    assert witness.witness(HeadProof(tuple(later[2:]))).seq == 4
    with pytest.raises(WitnessError, match="behind the head seq 4"):
        witness.witness(HeadProof((later[1],)))
    lines = read_witness_lines(tmp_path / "a.jsonl")
    assert [line["type"] for line in lines] == [
        "header", "refused", "coordinator", "head", "refused", "refused", "refused", "head",
        "refused",
    ]  # fmt: skip
    reopened = SiteWitness(tmp_path / "a.jsonl", "a", site_key)  # state comes from the file
    assert reopened.last == (4, later[3].hash)
    with pytest.raises(ValueError, match="another site key"):
        SiteWitness(tmp_path / "a.jsonl", "a", Ed25519PrivateKey.generate())


def test_the_feed_ledgers_countersignatures_under_the_pinned_keys_only(
    run: Path, key: Ed25519PrivateKey, sites: SimulatedSites
) -> None:
    head = stored(run)[-1]
    impostor = Ed25519PrivateKey.generate()
    forged = Countersignature.sign(impostor, "c", "", head.seq, head.hash)  # verifies, wrong key
    assert forged.valid()
    genuine = sites.witnesses["a"].key
    other_run = Countersignature.sign(genuine, "a", "another run", head.seq, head.hash)
    honest = Countersignature.sign(genuine, "a", "", head.seq, head.hash)
    with Ledger(run, key) as ledger:
        WitnessFeed(ledger).record(None, {"a": honest})  # nothing pinned: nothing ledgered
        feed = WitnessFeed(ledger, sites.pins())
        feed.record(None, {"c": forged, "a": other_run})
        assert ledger.records()[-1].seq == LAST  # both left out
        feed.record(None, {"a": honest})
        assert ledger.records()[-1].seq == LAST + 1


def test_a_countersignature_under_an_unpinned_key_is_named(
    run: Path, key: Ed25519PrivateKey, sites: SimulatedSites
) -> None:
    """A coordinator that ledgers a countersignature itself, under a key of its own."""
    head = stored(run)[-1]
    forged = Countersignature.sign(Ed25519PrivateKey.generate(), "c", "", head.seq, head.hash)
    with Ledger(run, key) as ledger:
        appended = ledger.append(WITNESS_KIND, forged.payload(None)).seq
    assert where(findings(run, sites)) == {("countersignature", "c", appended)}
    alone = check_countersignatures(stored(run), sites.pins())  # no witness file needed
    assert where(alone) == {("countersignature", "c", appended)}
    assert "not the key pinned for site c" in alone[0].reason


def test_a_countersignature_names_its_site_and_run(sites: SimulatedSites) -> None:
    """Site a's signature cannot be passed off as site b's, or as one of another run."""
    signed = Countersignature.sign(sites.witnesses["a"].key, "a", "run-1", 5, "ab" * 32)
    assert signed.valid()
    assert not dataclasses.replace(signed, site="b").valid()
    assert not dataclasses.replace(signed, run="run-2").valid()
    assert not dataclasses.replace(signed, run="").valid()


def test_pins_must_match_the_enrolled_keys_and_the_sites_files(
    run: Path, key: Ed25519PrivateKey, sites: SimulatedSites
) -> None:
    """Deployed, a pin is the key the site's enrolment record names; a witness file under
    another key than the pin is named too."""
    pins = sites.pins()
    with Ledger(run, key) as ledger:
        a_key = sites.witnesses["a"].key.public_key()
        record_enrolment(ledger, Enrolment("a", fingerprint(a_key)))
        other = record_enrolment(ledger, Enrolment("b", fingerprint(a_key)))  # not b's key
    assert where(check_countersignatures(stored(run), pins)) == {("key pin", "b", other.seq)}
    tamper(run, "UPDATE records SET payload = ? WHERE seq = ?", (b"\xff{", other.seq))
    assert check_countersignatures(stored(run), pins) == []  # verify names the broken record
    assert not verify_ledger(run, key.public_key()).ok
    swapped = dataclasses.replace(pins, keys=pins.keys | {"c": pins.keys["a"]})
    logs = [WitnessLog.read(w.path) for w in sites.witnesses.values()]
    found = where(check_witnesses(stored(run), logs, swapped))
    assert ("key pin", "c", FIRST_HEAD) in found  # c's file is not under the pinned key
    assert {f for f in found if f[0] == "countersignature"} == {
        ("countersignature", "c", seq) for seq in _witness_seqs(run, "c")
    }


def _witness_seqs(run: Path, site: str) -> list[int]:
    return [
        r.seq
        for r in stored(run)
        if r.kind == WITNESS_KIND and json.loads(r.payload)["site"] == site
    ]


def test_a_witness_line_the_coordinator_never_signed_proves_nothing(
    run: Path, sites: SimulatedSites, tmp_path: Path
) -> None:
    path = tmp_path / "witness" / "a.jsonl"
    fabricated = {
        "type": "head", "seq": 99, "hash": "ab" * 32, "kind": "round",
        "coordinator_signature": "00" * 64, "countersignature": "00" * 64,
    }  # fmt: skip
    with path.open("a") as out:
        out.write(json.dumps(fabricated) + "\n")
    assert where(findings(run, sites)) == {("bad witness line", "a", 99)}


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
    for name in ("ledger.sqlite", "ledger.pub", WITNESS_KEYS_FILE):
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
    old = tmp_path / "old.jsonl"  # version 1 (site not in the signed bytes): no longer read
    lines = (run / "witness" / "va.jsonl").read_text().splitlines()
    old.write_text("\n".join([lines[0].replace("medsilo-witness/2", "medsilo-witness/1")]))
    res = runner.invoke(app, ["audit", "verify", str(run), "--witness", str(old)])
    assert res.exit_code == 2 and "reads 'medsilo-witness/2' only" in " ".join(res.output.split())
    copy = _copy_run(run, tmp_path)
    (copy / WITNESS_KEYS_FILE).write_text("{}")
    res = runner.invoke(app, ["audit", "verify", str(copy)])
    assert res.exit_code == 2 and "cannot read the pinned witness keys" in res.output


def test_cli_names_each_site_whose_witness_file_was_not_given(
    engine_run: tuple[Path, Path],
) -> None:
    run, _ = engine_run
    one = ["--witness", str(run / "witness" / "va.jsonl")]
    res = runner.invoke(app, ["audit", "verify", str(run), *one])
    assert res.exit_code == 0, res.output
    output = " ".join(res.output.split())
    for name in ("cleveland", "hungarian", "switzerland"):
        assert f"NOT CHECKED: site {name} (no witness file given)" in output
    assert "NOT CHECKED: site va" not in output
    assert "WITNESSED: every record site(s) va saw" in output
    assert "(3 site(s) of the run not checked)" in output


def test_cli_checks_the_ledgered_countersignatures_against_the_pinned_keys(
    engine_run: tuple[Path, Path], tmp_path: Path
) -> None:
    run, key_path = engine_run
    pins = json.loads((run / WITNESS_KEYS_FILE).read_text())
    names = ["cleveland", "hungarian", "switzerland", "va"]
    for name in names:  # the engine pinned each simulated site's own key
        public = load_or_create_private_key(run / "witness" / f"{name}.key").public_key()
        assert pins["keys"][name] == public.public_bytes_raw().hex()
    ok = runner.invoke(app, ["audit", "verify", str(run)])
    assert ok.exit_code == 0, ok.output
    assert "countersignatures: 12 ledgered, each under its site's key pinned" in ok.output
    bare = tmp_path / "bare"  # a site's copy of the ledger alone: says what it left out
    bare.mkdir()
    for name in ("ledger.sqlite", "ledger.pub"):
        shutil.copy(run / name, bare / name)
    res = runner.invoke(app, ["audit", "verify", str(bare)])
    assert res.exit_code == 0, res.output
    assert "NOT CHECKED: the countersignatures against the sites' pinned keys" in res.output
    forged_run = _copy_run(run, tmp_path)  # the coordinator ledgers a signature of its own
    head = stored(forged_run / "ledger.sqlite")[-1]
    impostor = Ed25519PrivateKey.generate()
    forged = Countersignature.sign(impostor, "va", "", head.seq, head.hash)
    with Ledger(forged_run / "ledger.sqlite", load_or_create_private_key(key_path)) as ledger:
        seq = ledger.append(WITNESS_KIND, forged.payload(None)).seq
    for extra in ([], ["--witness", str(run / "witness")]):
        res = runner.invoke(app, ["audit", "verify", str(forged_run), *extra])
        assert res.exit_code == 1, res.output
        assert f"WITNESS countersignature at record seq {seq}, site va" in res.output
        assert "not the key pinned for site va" in " ".join(res.output.split())


def test_a_site_that_refuses_its_first_proof_keeps_a_verifiable_file(
    tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    """The refusal comes after the header, and ``audit verify --witness`` names it."""
    run = tmp_path / "run"
    run.mkdir()
    sites = SimulatedSites(run / "witness", ["a"])
    sites.pins().write(run)
    write_public_key(key.public_key(), run / "ledger.pub")
    with Ledger(run / "ledger.sqlite", key) as ledger:
        start_run(ledger)
        records = ledger.records()
    witness = sites.witnesses["a"]
    with pytest.raises(WitnessError, match="must start at the genesis"):
        witness.witness(HeadProof(records[1:]))  # the very first proof: refused
    lines = read_witness_lines(witness.path)
    assert [line["type"] for line in lines] == ["header", "refused"]
    assert where(findings(run / "ledger.sqlite", sites)) == {("refused", "a", FIRST_HEAD)}
    args = ["audit", "verify", str(run), "--no-require-end", "--witness", str(witness.path)]
    res = runner.invoke(app, args)
    assert res.exit_code == 1, res.output
    assert f"WITNESS refused at record seq {FIRST_HEAD}, site a" in res.output
    assert "signed by the coordinator" in res.output
    witness.witness(HeadProof(tuple(records)))  # later it accepts the ledger from genesis
    reopened = SiteWitness(witness.path, "a", witness.key)
    assert reopened.last == (FIRST_HEAD, records[-1].hash)
    assert [line["type"] for line in read_witness_lines(witness.path)] == [
        "header", "refused", "coordinator", "head"
    ]  # fmt: skip
    assert where(findings(run / "ledger.sqlite", sites)) == {("refused", "a", FIRST_HEAD)}


def test_a_site_and_the_verifier_name_a_broken_record_alike(
    tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    """Both walk records with the same check (medsilo.ledger.chain_check)."""
    with Ledger(tmp_path / "l.sqlite", key) as ledger:
        start_run(ledger)
        records = ledger.records()
    broken = dataclasses.replace(records[1], payload=b'{"round":9}')
    problem = verify_records([records[0], broken], key.public_key()).problem
    assert problem is not None and problem.seq == 2
    witness = SiteWitness(tmp_path / "a.jsonl", "a", Ed25519PrivateKey.generate())
    with pytest.raises(WitnessError) as refused:
        witness.witness(HeadProof((records[0], broken)))
    assert f"record seq 2: {problem.reason}" in str(refused.value)


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
        feed = WitnessFeed(
            ledger, sites.pins()
        )  # a new feed: what each site acknowledged, from the ledger
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
