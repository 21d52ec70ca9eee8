"""The deployed ServerApp and ClientApp driven in-process through a push/pull fake Grid.

Fast checks of what ``tests/deploy/test_loopback.py`` proves with real processes: the
deployed apps (enrolment with attestation, federated standardisation from moments, site data
read by the sites themselves, pooled metrics from site reports, checkpoints, per-round site
state on disk) give exactly the in-process engine's model; refusals and dead sites; a resumed
SCAFFOLD run (site control variates restored from disk) equals the uninterrupted one.
"""

from __future__ import annotations

import json
import pickle
import uuid
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flwr.app import Context, Message, RecordDict
from flwr.serverapp import Grid

from medsilo.confidential.vulnerabilities import default_registry
from medsilo.config import ConfigError, parse_config
from medsilo.data.own_site import load_own_site
from medsilo.deploy.kits import provision
from medsilo.deploy.loopback import SITES, heart_experiment
from medsilo.deploy.spec import parse_federation
from medsilo.ledger.keys import load_public_key
from medsilo.ledger.store import open_readonly, read_records
from medsilo.ledger.verify import verify_ledger
from medsilo.runtime.federation import FederationResult
from medsilo.runtime.flower.deployed_server import DeployedRunConfig, server_app
from medsilo.runtime.flower.deployed_site import client_app, load_cached_own_data
from medsilo.runtime.flower.packed_content import is_packed
from medsilo.runtime.simulation import run_federation

from .test_apps_inprocess import one_thread, task_identity  # noqa: F401  (autouse fixtures)

HEART = Path(__file__).resolve().parents[3] / "data" / "heart_disease"


class Crash(RuntimeError):
    """The coordinator 'dies' here."""


class PushPullGrid(Grid):
    """Each node runs the deployed ClientApp with its own node_config and context.

    Messages and contexts are pickled on the way, as a real SuperNode would serialise them.
    ``dead`` nodes vanish from ``get_node_ids`` and never answer; ``hung`` nodes stay listed
    but never answer (a site that hangs: the SuperLink still sees its heartbeat);
    ``crash_at`` raises :class:`Crash` when a message of that (type, group) is pushed.
    """

    def __init__(self, node_configs: dict[int, dict[str, Any]]) -> None:
        self.contexts = {
            node: Context(
                run_id=7, node_id=node, node_config=cfg, state=RecordDict(), run_config={}
            )
            for node, cfg in node_configs.items()
        }
        self.pending: dict[str, Message] = {}
        self.dead: set[int] = set()
        self.hung: set[int] = set()
        self.hang_after: tuple[str, int] | None = None  # (message type, node): hangs after it
        self.received: Counter[tuple[int, str]] = Counter()
        self.packed: Counter[str] = Counter()  # message type (+ " reply"): how many packed
        self.kill_after: tuple[str, int] | None = None  # (message type, node): dies after it
        self.crash_at: tuple[str, str] | None = None

    def set_run(self, run: object) -> None:  # type: ignore[override]
        pass

    @property
    def run(self) -> object:  # type: ignore[override]
        raise NotImplementedError

    def create_message(self, *args: object, **kwargs: object) -> Message:  # type: ignore[override]
        raise NotImplementedError

    def get_node_ids(self) -> list[int]:
        return [n for n in self.contexts if n not in self.dead]

    def push_messages(self, messages: Iterable[Message]) -> list[str]:
        ids = []
        for msg in messages:
            if self.crash_at == (msg.metadata.message_type, msg.metadata.group_id):
                raise Crash(f"coordinator killed while sending {self.crash_at}")
            mid = uuid.uuid4().hex
            msg.metadata.__dict__["_message_id"] = mid
            self.pending[mid] = msg
            ids.append(mid)
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> list[Message]:
        replies = []
        for mid in list(message_ids):
            msg = self.pending.pop(mid, None)
            if msg is None:
                continue
            node = msg.metadata.dst_node_id
            if node in self.dead:
                continue  # never answers
            if node in self.hung:
                self.pending[mid] = msg  # still waiting for an answer that never comes
                continue
            kind = msg.metadata.message_type
            self.received[(node, kind)] += 1
            context = pickle.loads(pickle.dumps(self.contexts[node]))
            reply = client_app(pickle.loads(pickle.dumps(msg)), context)
            self.contexts[node] = context
            self.packed[kind] += is_packed(msg.content)
            self.packed[f"{kind} reply"] += reply.has_content() and is_packed(reply.content)
            replies.append(pickle.loads(pickle.dumps(reply)))
            if self.kill_after == (kind, node):
                self.dead.add(node)
            if self.hang_after == (kind, node):
                self.hung.add(node)
        return replies

    def send_and_receive(  # type: ignore[override]
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> list[Message]:
        if not list(messages):  # nothing to send (every site refused): no replies, as Flower
            return []
        raise AssertionError("the deployed coordinator polls with push/pull")


def experiment(algorithm: str = "fedavg", rounds: int = 2) -> dict[str, Any]:
    """The loopback tests' heart-disease experiment, shorter, with another algorithm."""
    exp = heart_experiment(rounds, local_steps=5, lr=0.05)
    return exp | {"name": "deployed-inprocess", "algorithm": {"name": algorithm}}


def spoil_attestation_key(kit: Path) -> None:
    """Replace the site's attestation key: its evidence no longer verifies."""
    (kit / "attest.key").write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


class Federation:
    def __init__(
        self,
        root: Path,
        exp: dict[str, Any],
        enrolment: dict[str, Any] | None = None,
        provisioned: list[str] = SITES,  # fewer: the others are added later (add-site)
    ) -> None:
        self.root = root
        spec = parse_federation(
            {
                "federation": "inprocess",
                "coordinator": {"address": "127.0.0.1", "port": 9999},
                "sites": [{"name": s} for s in provisioned],
                "enrolment": {"allowed_backends": ["software"]} | (enrolment or {}),
            }
        )
        provision(spec, root / "kits")
        self.exp = exp
        self.exp_path = root / "experiment.yaml"
        self.exp_path.write_text(yaml.safe_dump(exp))

    def grid(self) -> PushPullGrid:
        return PushPullGrid(
            {
                100 + 7 * i: {
                    "site": site,
                    "kit": str(self.root / "kits" / "sites" / site),
                    "data": str(HEART),
                }
                for i, site in enumerate(SITES)
            }
        )

    def run(
        self,
        grid: PushPullGrid,
        *,
        resume: bool = False,
        min_sites: int = 0,
        round_timeout_s: float = 2.0,
        straggler_timeout_s: float | None = None,
    ) -> Path:
        settings = DeployedRunConfig(
            experiment=self.exp_path,
            kit=self.root / "kits" / "coordinator",
            run_dir=self.root / "run",
            resume=resume,
            round_timeout_s=round_timeout_s,
            connect_timeout_s=1.0,
            poll_interval_s=0.001,
            min_sites=min_sites,
            straggler_timeout_s=straggler_timeout_s,
        )
        context = Context(run_id=7, node_id=0, node_config={}, state=RecordDict(), run_config={})
        context.run_config.update(settings.as_run_config())
        server_app(grid, context)
        return self.root / "run"


def final_weights(run_dir: Path) -> list[np.ndarray]:
    with np.load(run_dir / "final_weights.npz") as npz:
        return [npz[f"arr_{i}"] for i in range(len(npz.files))]


def assert_the_engines_model(fed: Federation, run_dir: Path) -> FederationResult:
    """The in-process engine's run of the same experiment; its final model is asserted to be
    the deployed run's, bit for bit."""
    engine = run_federation(parse_config(fed.exp))
    for a, b in zip(final_weights(run_dir), engine.weights, strict=True):
        assert np.array_equal(a, b)
    return engine


def rounds(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "rounds.jsonl").read_text().splitlines()]


def test_deployed_apps_give_the_engines_model_and_pooled_metrics(tmp_path: Path) -> None:
    fed = Federation(tmp_path, experiment())
    run_dir = fed.run(fed.grid())
    engine = assert_the_engines_model(fed, run_dir)
    records = rounds(run_dir)
    assert [r["round"] for r in records] == [1, 2]
    # The coordinator holds no test data: pooled metrics are the sites' reports, weighted.
    for mine, theirs in zip(records, engine.rounds, strict=True):
        assert mine["test"]["n"] == theirs["test"]["n"]
        assert mine["test"]["accuracy"] == pytest.approx(theirs["test"]["accuracy"], abs=1e-12)
        assert mine["test"]["loss"] == pytest.approx(theirs["test"]["loss"], rel=1e-5)
        assert mine["global_model_sha256"] == theirs["global_model_sha256"]
    enrolment = json.loads((run_dir / "enrolment.json").read_text())
    assert sorted(enrolment) == sorted(SITES) and all(e["accepted"] for e in enrolment.values())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["admitted"] == sorted(SITES) and summary["rounds_completed"] == 2
    # Deployed sites witness both rounds and the final head, though the engine's switch,
    # governance.site_witness, is off in this experiment: it never reaches a deployment.
    assert parse_config(fed.exp).governance.site_witness is False
    conn = open_readonly(run_dir / "ledger.sqlite")
    try:
        kinds = [(r.kind, json.loads(r.payload)) for r in read_records(conn)]
    finally:
        conn.close()
    assert Counter(p["site"] for k, p in kinds if k == "witness") == dict.fromkeys(SITES, 3)
    # Each site kept its prepared arrays beside its state (later messages read them back).
    for site in SITES:
        (cache,) = (tmp_path / "kits" / "sites" / site / "state").glob("*/own-data.npz")
        stored = load_cached_own_data(cache.parent)
        fresh = load_own_site(parse_config(fed.exp).data, site, HEART, 0)
        assert stored is not None
        for got, want in zip(
            (stored.sites[0].train, stored.sites[0].test),
            (fresh.sites[0].train, fresh.sites[0].test),
            strict=True,
        ):
            assert np.array_equal(got.x, want.x) and np.array_equal(got.y, want.y)


def test_a_site_whose_evidence_does_not_verify_is_refused_and_gets_no_work(
    tmp_path: Path,
) -> None:
    fed = Federation(tmp_path, experiment())
    spoil_attestation_key(tmp_path / "kits" / "sites" / "va")
    grid = fed.grid()
    run_dir = fed.run(grid, min_sites=2)
    enrolment = json.loads((run_dir / "enrolment.json").read_text())
    assert enrolment["va"]["accepted"] is False and "signature" in enrolment["va"]["reason"]
    va = next(n for n, c in grid.contexts.items() if c.node_config["site"] == "va")
    assert grid.received[(va, "train")] == 0
    assert grid.received[(va, "query.admission")] == 1  # told, so it can log the refusal
    assert all("va" in r["dropped"] for r in rounds(run_dir))


def test_nodes_turned_away_before_attestation_are_ledgered(tmp_path: Path) -> None:
    """A second node claiming an enrolled site's name (first come, first served: the two
    hold the same kit) and a node naming a site outside the federation (it refuses itself)
    are turned away before any attestation, each in enrolment.json and the audit ledger."""
    fed = Federation(tmp_path, experiment())
    grid = fed.grid()
    sites = tmp_path / "kits" / "sites"
    impostors = {
        900: {"site": "hungarian", "kit": str(sites / "hungarian"), "data": str(HEART)},
        901: {"site": "mayo", "kit": str(sites / "va"), "data": str(HEART)},
    }
    for node, node_config in impostors.items():
        grid.contexts[node] = Context(
            run_id=7, node_id=node, node_config=node_config, state=RecordDict(), run_config={}
        )
    run_dir = fed.run(grid)
    enrolment = json.loads((run_dir / "enrolment.json").read_text())
    assert all(enrolment[s]["accepted"] for s in SITES)  # one of the two hungarian nodes
    (duplicate,) = [e for e in enrolment.values() if e.get("site") == "hungarian"]
    assert "a second node claims to be site 'hungarian'" in duplicate["reason"]
    assert "'mayo' is not in the federation's roster" in enrolment["node-901"]["reason"]
    conn = open_readonly(run_dir / "ledger.sqlite")
    try:
        refused = [
            json.loads(r.payload)
            for r in read_records(conn)
            if r.kind == "enrolment" and json.loads(r.payload)["action"] == "refused"
        ]
    finally:
        conn.close()
    assert sorted((r["site"], r["details"]["node"]) for r in refused) == [
        ("hungarian", duplicate["node"]),
        ("node-901", 901),
    ]
    assert grid.received[(duplicate["node"], "train")] == 0
    assert grid.received[(901, "train")] == 0
    assert verify_ledger(run_dir / "ledger.sqlite", load_public_key(run_dir / "ledger.pub")).ok


def test_too_few_admitted_sites_stop_before_training(tmp_path: Path) -> None:
    fed = Federation(tmp_path, experiment())
    spoil_attestation_key(tmp_path / "kits" / "sites" / "va")
    with pytest.raises(RuntimeError, match=r"only 2 site\(s\) admitted"):
        fed.run(fed.grid())  # default: every roster site must be admitted
    assert not (tmp_path / "run" / "rounds.jsonl").exists()


def test_a_site_that_dies_mid_run_is_dropped_and_the_run_finishes(tmp_path: Path) -> None:
    fed = Federation(tmp_path, experiment(rounds=3))
    grid = fed.grid()
    hungarian = next(n for n, c in grid.contexts.items() if c.node_config["site"] == "hungarian")
    grid.kill_after = ("train", hungarian)  # answers round 1's training, then is gone
    run_dir = fed.run(grid)
    records = rounds(run_dir)
    assert [r["round"] for r in records] == [1, 2, 3]
    assert "hungarian" not in records[0].get("dropped", [])
    assert all("hungarian" in r["dropped"] for r in records[1:])
    assert records[0]["evaluation_missing"] == ["hungarian"]
    assert (run_dir / "summary.json").exists()


def test_a_hung_site_is_dropped_at_the_straggler_timeout_not_the_round_timeout(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """hungarian stays connected but never answers after round 1's exchange; with a round
    timeout of an hour, only the straggler deadline (0 s once the quorum replied) lets the
    run finish, each later exchange dropping it (no clock is read by the assertions)."""
    fed = Federation(tmp_path, experiment(rounds=3))
    grid = fed.grid()
    hungarian = next(n for n, c in grid.contexts.items() if c.node_config["site"] == "hungarian")
    grid.hang_after = ("train", hungarian)
    with caplog.at_level("WARNING", logger="medsilo"):
        run_dir = fed.run(grid, round_timeout_s=3600.0, straggler_timeout_s=0.0)
    records = rounds(run_dir)
    assert [r["round"] for r in records] == [1, 2, 3]
    assert "hungarian" not in records[0].get("dropped", [])
    assert all(r["dropped"] == ["hungarian"] for r in records[1:])
    assert all(r["evaluation_missing"] == ["hungarian"] for r in records)
    assert "within the straggler timeout (0s after 1 replied)" in caplog.text
    assert json.loads((run_dir / "summary.json").read_text())["complete"] is True
    assert (hungarian, "train") in grid.received  # it did take part in round 1


def test_straggler_timeout_is_refused_with_secure_aggregation(tmp_path: Path) -> None:
    secure = experiment() | {"secure_aggregation": {"enabled": True}}
    fed = Federation(tmp_path, secure)
    with pytest.raises(ConfigError, match="not supported with secure aggregation"):
        fed.run(fed.grid(), straggler_timeout_s=1.0)
    assert not (tmp_path / "run").exists()  # refused before anything is written


def test_resumed_scaffold_run_equals_the_uninterrupted_one(tmp_path: Path) -> None:
    fed = Federation(tmp_path, experiment("scaffold", rounds=4))
    crashing = fed.grid()
    # Dies as it starts round 4: round 3's evaluation rides on that message (one exchange
    # per round), so rounds 1-2 are on record, with the checkpoint of round 2.
    crashing.crash_at = ("train", "4")
    with pytest.raises(Crash):
        fed.run(crashing)
    run_dir = tmp_path / "run"
    assert [r["round"] for r in rounds(run_dir)] == [1, 2]
    # A new Flower run: fresh contexts (SCAFFOLD's control variates only on the sites' disks).
    fed.run(fed.grid(), resume=True)
    assert_the_engines_model(fed, run_dir)
    assert [r["round"] for r in rounds(run_dir)] == [1, 2, 3, 4]
    assert json.loads((run_dir / "summary.json").read_text())["resumed_after_round"] == 2


def test_a_site_keeps_only_the_round_files_a_resume_can_need(tmp_path: Path) -> None:
    """A 100M-parameter site's state is 400 MB a round. With the coordinator checkpointing
    every 2nd round and keeping 1, a site keeps its newest file and, for each checkpoint the
    coordinator may hold, the newest file at or before it; the resumed run is still the
    uninterrupted one."""
    exp = experiment("scaffold", rounds=6) | {"governance": {"checkpoint": {"every": 2, "keep": 1}}}
    fed = Federation(tmp_path, exp)
    crashing = fed.grid()
    crashing.crash_at = ("train", "6")  # rounds 1-5 trained; round 4's checkpoint is the last
    with pytest.raises(Crash):
        fed.run(crashing)

    def kept() -> dict[str, list[str]]:
        folders = (tmp_path / "kits" / "sites").glob("*/state/*")
        return {
            f.parent.parent.name: sorted(p.name for p in f.glob("round-*.npz")) for f in folders
        }

    after_crash = ["round-0002.npz", "round-0004.npz", "round-0005.npz"]
    assert kept() == {site: after_crash for site in SITES}
    fed.run(fed.grid(), resume=True)
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["resumed_after_round"] == 4
    assert_the_engines_model(fed, tmp_path / "run")
    assert kept() == {site: ["round-0004.npz", "round-0006.npz"] for site in SITES}


def test_resume_without_the_site_state_on_disk_would_differ(tmp_path: Path) -> None:
    """The state files matter: delete them and the resumed SCAFFOLD run is another run."""
    fed = Federation(tmp_path, experiment("scaffold", rounds=4))
    crashing = fed.grid()
    crashing.crash_at = ("train", "3")
    with pytest.raises(Crash):
        fed.run(crashing)
    for state in (tmp_path / "kits" / "sites").glob("*/state/*/round-*.npz"):
        state.unlink()
    fed.run(fed.grid(), resume=True)
    engine = run_federation(parse_config(fed.exp))
    assert not all(
        np.array_equal(a, b)
        for a, b in zip(final_weights(tmp_path / "run"), engine.weights, strict=True)
    )


def test_a_deployed_sites_state_lives_on_its_disk_not_in_flowers_context(tmp_path: Path) -> None:
    """Flower stores a deployed ClientApp's ``context.state`` only after the reply, so a
    large error-feedback residual kept there could still be in flight when the next round's
    message arrives. The residual is in the site's round files, written before the reply,
    and the contexts carry none of it; the run is still the engine's, bit for bit."""
    exp = experiment(rounds=3) | {"compression": {"codec": "topk", "k": 0.3}}
    fed = Federation(tmp_path, exp)
    grid = fed.grid()
    run_dir = fed.run(grid)
    assert_the_engines_model(fed, run_dir)
    for context in grid.contexts.values():
        assert not [k for k in context.state.array_records if k.startswith("medsilo.state.")]
    for site in SITES:
        files = sorted((tmp_path / "kits" / "sites" / site / "state").glob("*/round-*.npz"))
        assert [f.name for f in files] == ["round-0001.npz", "round-0002.npz", "round-0003.npz"]
        with np.load(files[-1]) as npz:
            residual = [npz[k] for k in npz.files]
        assert residual and any(np.any(r != 0) for r in residual)


def test_an_attested_exploitable_tcb_sets_that_sites_ccpgd_indicator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The indicator CC-PGD uses comes from attestation: va claims SEV-SNP at a TCB that an
    (installed, test) registry entry marks exploitable; with ``exploitable_tcb: flag`` it is
    admitted with indicator 1, and the run equals the engine told the same platform record."""
    home = tmp_path / "xdg"
    (home / "medsilo").mkdir(parents=True)
    (home / "medsilo" / "tee_vulnerabilities.json").write_text(
        json.dumps(
            {
                "_comment": "test registry",
                "entries": [
                    {
                        "cve": "CVE-2099-0001",
                        "name": "test side channel",
                        "platforms": ["sev-snp"],
                        "exploitable": True,
                        "fixed_tcb": {"sev-snp": "2.0"},
                        "source": "test",
                    }
                ],
            }
        )
    )
    monkeypatch.setenv("XDG_DATA_HOME", str(home))
    default_registry.cache_clear()
    try:
        exp = experiment("ccpgd") | {"algorithm": {"name": "ccpgd", "lam": 0.3, "kappa": 3.0}}
        fed = Federation(tmp_path, exp, {"exploitable_tcb": "flag"})
        grid = fed.grid()
        for context in grid.contexts.values():
            if context.node_config["site"] == "va":
                context.node_config["platform"] = "sev-snp"
                context.node_config["tcb-version"] = "1.5"
        run_dir = fed.run(grid)
        va = json.loads((run_dir / "enrolment.json").read_text())["va"]
        assert va["accepted"] and va["exploit_indicator"] == 1
        assert va["matched_cves"] == ["CVE-2099-0001"] and "flagged" in va["reason"]
        told = exp | {
            "sites": {
                "overrides": {
                    "va": {
                        "platform": {
                            "kind": "sev-snp",
                            "tcb_version": "1.5",
                            "known_vulnerabilities": ["CVE-2099-0001"],
                        }
                    }
                }
            }
        }
        same = run_federation(parse_config(told)).weights
        unexposed = run_federation(parse_config(exp)).weights
        deployed = final_weights(run_dir)
        assert all(np.array_equal(a, b) for a, b in zip(deployed, same, strict=True))
        assert not all(np.array_equal(a, b) for a, b in zip(deployed, unexposed, strict=True))
    finally:
        default_registry.cache_clear()


def test_a_round_is_one_exchange_its_evaluation_riding_on_the_next_training(
    tmp_path: Path,
) -> None:
    """Train-with-evaluation: each round is one message per site (a site outside the next
    cohort gets an ``evaluate`` in the same exchange), the last round one more; moments come
    with the enrolment. The records still equal the engine's, which evaluates separately."""
    exp = experiment(rounds=3)
    exp["training"] |= {"fraction": 0.5, "min_sites": 2}  # cohorts of 2 of the 3 sites
    fed = Federation(tmp_path, exp)
    grid = fed.grid()
    run_dir = fed.run(grid)
    engine = assert_the_engines_model(fed, run_dir)
    records = rounds(run_dir)
    for mine, theirs in zip(records, engine.rounds, strict=True):
        assert mine["sites"] == theirs["sites"] and len(mine["sites"]) == 2
        assert mine["global_model_sha256"] == theirs["global_model_sha256"]
        assert mine["test"]["accuracy"] == pytest.approx(theirs["test"]["accuracy"], abs=1e-12)
        for site in SITES:  # each site's own evaluation, done before its next training
            got, want = mine["per_site"][site], theirs["per_site"][site]
            assert got["accuracy"] == pytest.approx(want["accuracy"], abs=1e-12)
            assert got["loss"] == pytest.approx(want["loss"], rel=1e-5)
    assert {kind for _, kind in grid.received} == {
        "query.enrol",
        "query.admission",
        "train",
        "evaluate",
        "query.witness",
    }
    for node, context in grid.contexts.items():
        site = context.node_config["site"]
        assert grid.received[(node, "train")] == sum(site in r["sites"] for r in records)
        # rounds 1 and 2 are evaluated in rounds 2 and 3's exchanges; round 3 on its own
        alone = sum(site not in r["sites"] for r in records[1:])
        assert grid.received[(node, "evaluate")] == alone + 1
    assert sum(grid.received[(n, "evaluate")] for n in grid.contexts) > len(SITES)
    # every train and evaluate message and its reply travelled packed (packed_content); an
    # enrolment query is one record, which packing would not shrink, so it and its reply not
    for kind in ("train", "evaluate"):
        sent = sum(grid.received[(n, kind)] for n in grid.contexts)
        assert grid.packed[kind] == grid.packed[f"{kind} reply"] == sent
    assert grid.packed["query.enrol"] == grid.packed["query.enrol reply"] == 0


def test_a_deployed_site_trains_with_the_runs_intra_op_threads(tmp_path: Path) -> None:
    """As the engine does (``threads``, default 1): torch's own default, one thread per core,
    oversubscribed sites sharing a machine (docs/deployment.md, "Performance: deployed vs
    in-process", item 8)."""
    assert torch.get_num_threads() == 1  # one_thread
    fed = Federation(tmp_path, experiment(rounds=1) | {"threads": 2})
    fed.run(fed.grid())
    assert torch.get_num_threads() == 2  # set by the sites' handlers, in this process
