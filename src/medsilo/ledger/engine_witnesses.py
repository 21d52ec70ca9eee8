"""The in-process engine's sites as witnesses: a key and a witness file per simulated site.

In the engine every site lives in the coordinator's process, so nothing here protects against
a dishonest coordinator; it runs the same protocol as a deployment (the same head proofs,
checks, countersignatures and files, :mod:`medsilo.ledger.witness_file`) so that a run
directory shows, and lets ``medsilo audit verify --witness`` exercise, exactly what
deployed sites keep. It is therefore off unless ``governance.site_witness`` is true. Each
site's Ed25519 key is ``RUN/witness/<site>.key`` (created on first use, mode 0600,
:func:`~medsilo.ledger.keys.load_or_create_private_key`) and its witness file
``RUN/witness/<site>.jsonl``; a run resumed in the same folder reuses both. When the run
starts the coordinator pins those keys (``RUN/witness_keys.json``,
:mod:`medsilo.ledger.witness_keys`): its feed ledgers countersignatures under them only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from medsilo.ledger.keys import load_or_create_private_key
from medsilo.ledger.witness import Countersignature, HeadProof
from medsilo.ledger.witness_feed import WitnessFeed
from medsilo.ledger.witness_file import SiteWitness
from medsilo.ledger.witness_keys import WitnessKeys

WITNESS_DIR = "witness"
#: Where the engine's pinned witness keys come from (``RUN/witness_keys.json``, ``source``).
ENGINE_KEYS = f"engine: each simulated site's key made at run start, RUN/{WITNESS_DIR}/<site>.key"


class SimulatedSites:
    """One :class:`SiteWitness` per site, under ``directory``."""

    def __init__(self, directory: Path, names: list[str]) -> None:
        self.names = list(names)
        self.witnesses = {
            name: SiteWitness(
                directory / f"{name}.jsonl",
                name,
                load_or_create_private_key(directory / f"{name}.key"),
            )
            for name in names
        }

    def pins(self) -> WitnessKeys:
        """Each site's public key, to pin (the engine's runs have no run id: ``""``)."""
        keys = {name: witness.key.public_key() for name, witness in self.witnesses.items()}
        return WitnessKeys.of("", ENGINE_KEYS, keys)

    def countersign(self, proofs: Mapping[str, HeadProof]) -> dict[str, Countersignature]:
        """Each site checks its proof and countersigns its head (a refusal raises
        :class:`~medsilo.ledger.witness.WitnessError`: in one process it can only mean the
        ledger file was changed under the run)."""
        return {site: self.witnesses[site].witness(proof) for site, proof in proofs.items()}


@dataclass(frozen=True)
class EngineWitnessing:
    """The coordinator's feed and the simulated sites, handed to the engine together."""

    feed: WitnessFeed
    sites: SimulatedSites

    @staticmethod
    def create(run_dir: Path, names: list[str], feed: WitnessFeed) -> EngineWitnessing:
        """The sites' keys are made (or, resumed in place, reloaded) and pinned now."""
        sites = SimulatedSites(run_dir / WITNESS_DIR, names)
        feed.pin(sites.pins().write(run_dir))
        return EngineWitnessing(feed, sites)
