"""A run directory's ledger: ``RUN/ledger.sqlite`` and the key to check it, ``RUN/ledger.pub``.

:func:`medsilo.experiment.run_experiment` opens one per run, appends ``run_start`` before
training, one ``round`` record as each round record is written to ``rounds.jsonl`` (same
moment, so a crash leaves the two in step) and ``run_end`` once the final weights are
saved (before any leave-one-hospital-out evaluation, which trains other models). The
round's model hash is the record's ``global_model_sha256`` (the runtimes add it,
:func:`medsilo.runtime.records.model_hash_field`); ``run_end`` hashes the final weights
saved to ``final_weights.npz``. A run resumed from a checkpoint
(docs/governance.md) starts a new ledger whose ``run_start`` names the checkpoint's round
and model hash; the rounds before it are in the original run's ledger.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from medsilo.ledger.digest import config_sha256, weights_sha256
from medsilo.ledger.events import (
    RoundEntry,
    RunEnd,
    RunStart,
    record_round,
    record_run_end,
    record_run_start,
)
from medsilo.ledger.keys import fingerprint, load_or_create_private_key, write_public_key
from medsilo.ledger.store import Ledger
from medsilo.ledger.trust import TrustStore
from medsilo.ledger.witness_feed import Exchange, WitnessFeed
from medsilo.runtime.round_record import RoundRecord
from medsilo.types import Weights

if TYPE_CHECKING:
    from medsilo.anchor.run_anchor import RunAnchor
    from medsilo.config import RunConfig

log = logging.getLogger(__name__)

LEDGER_FILE = "ledger.sqlite"
PUBLIC_KEY_FILE = "ledger.pub"


class Resumed(Protocol):
    """What the ledger needs of a checkpoint a run resumes from."""

    round: int
    weights: Weights


def privacy_mechanism(cfg: RunConfig) -> str | None:
    if cfg.client_dp() is not None:
        return "dp_fedavg"  # the DP-FedAvg mechanism, around whichever algorithm
    return "dp_sgd" if cfg.privacy.dp_sgd is not None else None


def pin_at_provisioning(ledger: Path, key_sha256: str) -> None:
    """Pin the coordinator's key for the ledger it creates (:mod:`medsilo.ledger.trust`), so
    a later ``audit verify`` on this machine refuses a chain re-signed under another key.
    A trust store that cannot be written costs the pin, not the run: logged and skipped."""
    try:
        TrustStore().pin(ledger, key_sha256, "pinned at provisioning by the coordinator")
    except (OSError, ValueError) as err:
        log.warning("could not pin the ledger key in the trust store: %s", err)


class RunLedger:
    """The coordinator's ledger of one run (key: :func:`~medsilo.ledger.keys
    .default_key_path` unless ``key_path`` is given)."""

    def __init__(
        self,
        run_dir: Path,
        cfg: RunConfig,
        sites: list[str],
        resumed: Resumed | None = None,
        key_path: Path | None = None,
        anchor: RunAnchor | None = None,
    ) -> None:
        """``anchor``: where each round is also anchored on chain (docs/anchoring.md)."""
        self.run_dir = run_dir
        self.anchor = anchor
        key = load_or_create_private_key(key_path)
        write_public_key(key.public_key(), run_dir / PUBLIC_KEY_FILE)
        self.ledger = Ledger(run_dir / LEDGER_FILE, key)
        pin_at_provisioning(run_dir / LEDGER_FILE, fingerprint(key.public_key()))
        self.rule = cfg.robust.rule
        if resumed is not None:
            self._close_interrupted(resumed)
        secure = cfg.secure_aggregation
        start = RunStart(
            name=cfg.name,
            config_sha256=config_sha256(cfg),
            algorithm=cfg.algorithm.name,
            aggregation_rule=self.rule,
            server_optimizer=cfg.server_optimizer.name,
            seed=cfg.seed,
            rounds=cfg.training.rounds,
            data=cfg.data.model_dump(mode="json"),
            sites=sites,
            privacy=privacy_mechanism(cfg),
            secure_aggregation=secure.mechanism if secure.enabled else None,
            resumed_after_round=resumed.round if resumed is not None else None,
            resumed_model_sha256=weights_sha256(resumed.weights) if resumed is not None else None,
        )
        record_run_start(self.ledger, start)
        self.rounds = 0
        self.sites = list(sites)
        #: Head proofs to the sites, their countersignatures back (docs/audit-ledger.md).
        self.feed = WitnessFeed(self.ledger)

    def _close_interrupted(self, resumed: Resumed) -> None:
        """A run resumed in the same folder left its run open when it died: close it with
        an honest ``run_end`` (written now, at resume time, saying so) before the new
        ``run_start``, so the chain stays well formed and the interruption is on record."""
        stored = self.ledger.records()
        open_run = False
        for record in stored:
            if record.kind == "run_start":
                open_run = True
            elif record.kind == "run_end":
                open_run = False
        if not open_run:
            return
        end = RunEnd(
            rounds_completed=resumed.round,
            final_model_sha256=weights_sha256(resumed.weights),
            stop_reason=(
                f"interrupted: recorded when resuming from the checkpoint of round "
                f"{resumed.round}; rounds after it are redone"
            ),
            epsilon=None,
            test_accuracy=None,
        )
        record_run_end(self.ledger, end)

    def round(self, record: RoundRecord) -> None:
        entry = record_round(self.ledger, RoundEntry.from_round_record(record, self.rule))
        self.rounds += 1
        if self.anchor is not None:
            assert record.global_model_sha256 is not None  # every runtime sets it
            self.anchor.round(record.round, record.global_model_sha256, entry.hash)

    def end(
        self, weights: Weights, last: RoundRecord | None, witnesses: Exchange | None = None
    ) -> None:
        """Append ``run_end`` (final weights hashed as saved), let the sites witness it
        through ``witnesses`` (their countersignatures are ledgered after it) and close."""
        test = last.test if last is not None else None
        privacy = (last.privacy if last is not None else None) or {}
        end = RunEnd(
            rounds_completed=self.rounds,
            final_model_sha256=weights_sha256(weights),
            stop_reason=last.stop_reason if last is not None else None,
            epsilon=privacy.get("epsilon"),
            test_accuracy=test.accuracy if test is not None else None,
        )
        record_run_end(self.ledger, end)
        try:
            if witnesses is not None:
                self.feed.final(self.sites, witnesses)
        finally:  # a site refusing the final head still leaves the ledger closed
            self.ledger.close()
        if self.anchor is not None:
            self.anchor.finish(weights, self.run_dir)
