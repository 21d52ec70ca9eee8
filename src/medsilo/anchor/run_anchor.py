"""A run's anchoring: the registry it writes to, one transaction per round, the sites' checks.

Opened before the run folder exists (:func:`open_anchor`), so a node that does not answer or
a registry that is not this coordinator's stops the run before anything is written. The
run's ledger (:class:`medsilo.ledger.run_ledger.RunLedger`) anchors each round right after
appending its record, so the chain holds the model hash *and* the ledger head that covers
it; a failed anchoring stops the run (anchoring was asked for, so it fails closed). At the
end the coordinator checks the final model against the chain, as a site does with a model it
receives, and sends an acknowledgement from each institution's account on its behalf
(:meth:`RunAnchor.finish` says what that does and does not prove). ``RUN/anchor.json`` keeps
the contract, its compiler, and the gas and seconds of every transaction.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medsilo.anchor.chain import AnchorError, connect
from medsilo.anchor.compiled import federation_registry
from medsilo.anchor.config import IN_PROCESS, AnchorConfig
from medsilo.anchor.registry import FederationRegistry, Transaction
from medsilo.anchor.site_check import verify_received
from medsilo.types import Weights

if TYPE_CHECKING:
    from web3 import Web3

ANCHOR_FILE = "anchor.json"
#: Ether sent to each in-process institution account so it can pay for acknowledgements.
INSTITUTION_FUNDING_WEI = 10**18


def in_process_institutions(w3: Web3, sites: list[str], funder: str) -> dict[str, str]:
    """One account per site on the in-process chain (key derived from the site's name, so
    runs are reproducible), funded from ``funder``. Test and demo use only: the keys are
    public knowledge."""
    accounts: dict[str, str] = {}
    from web3.types import Wei

    tester = w3.provider.ethereum_tester  # type: ignore[attr-defined]
    known = {a.lower() for a in w3.eth.accounts}
    for site in sites:
        key = hashlib.sha256(f"medsilo-anchor-demo-site:{site}".encode()).hexdigest()
        address = w3.eth.account.from_key(key).address
        if address.lower() not in known:
            tester.add_account("0x" + key)
            tx = w3.eth.send_transaction(
                {"from": funder, "to": address, "value": Wei(INSTITUTION_FUNDING_WEI)}
            )
            w3.eth.wait_for_transaction_receipt(tx)
        accounts[site] = address
    return accounts


class RunAnchor:
    def __init__(
        self,
        cfg: AnchorConfig,
        registry: FederationRegistry,
        deployed: Transaction | None,
        institutions: dict[str, str],
    ) -> None:
        self.cfg = cfg
        self.registry = registry
        self.deployed = deployed
        self.institutions = institutions
        self.rounds: list[dict[str, Any]] = []
        self.acknowledged: dict[str, dict[str, Any]] = {}

    def round(self, round_index: int, model_sha256: str, ledger_head: str) -> Transaction:
        tx = self.registry.anchor_round(round_index, model_sha256, ledger_head)
        self.rounds.append({"round": round_index, **asdict(tx)})
        return tx

    def finish(self, weights: Weights, run_dir: Path) -> None:
        """Check the final model against the last anchored round, hashing it once, and send
        each institution's acknowledgement of that hash; then write ``anchor.json``.

        The check and every acknowledgement run in this, the coordinator's, process: each
        transaction is sent from an institution's account, but its key is one the coordinator
        can use (in-process: derived from the site's public name; over JSON-RPC: an account
        the node unlocks for whoever calls it). On chain they therefore show that the model
        the coordinator saved is the one it anchored, and that the accounts were registered;
        they do not show that any institution received, checked or approved the model. An
        institution acknowledges for itself only by calling ``verify_received`` and
        ``acknowledge_round`` with a key it alone holds (docs/anchoring.md).
        """
        last = self.registry.round_count
        if last > 0 and self.institutions:
            sha = verify_received(self.registry, last, weights)  # the same for every account
            for site, account in self.institutions.items():
                tx = self.registry.acknowledge_round(account, last, sha)
                self.acknowledged[site] = {"round": last, **asdict(tx)}
        self.write(run_dir)

    def write(self, run_dir: Path) -> None:
        compiled = federation_registry()
        gas = [r["gas_used"] for r in self.rounds]
        seconds = [r["seconds"] for r in self.rounds]
        report = {
            "rpc": self.cfg.rpc,
            "chain_id": int(self.registry.w3.eth.chain_id),
            "contract": self.registry.address,
            "coordinator": self.registry.account,
            "compiler": compiled.compiler,
            "source_sha256": compiled.source_sha256,
            "deploy_gas": self.deployed.gas_used if self.deployed is not None else None,
            "institutions": self.institutions,
            "rounds": self.rounds,
            "mean_gas_per_round": sum(gas) / len(gas) if gas else None,
            "mean_seconds_per_round": sum(seconds) / len(seconds) if seconds else None,
            "acknowledged": self.acknowledged,
            # read back from the chain, so the file shows what the registry holds
            "anchored": [
                asdict(a)
                for r in range(1, self.registry.round_count + 1)
                if (a := self.registry.anchored(r)) is not None
            ],
        }
        (run_dir / ANCHOR_FILE).write_text(json.dumps(report, indent=2))


def open_anchor(
    cfg: AnchorConfig, federation_id: str, sites: list[str], resuming: bool
) -> RunAnchor | None:
    """The run's anchoring, ready (registry deployed or checked, institutions registered);
    None when ``cfg`` asks for none. ``federation_id``: the run's config SHA-256."""
    if not cfg.enabled:
        return None
    assert cfg.rpc is not None
    if resuming:
        raise AnchorError(
            "anchor: a resumed run cannot anchor (the registry takes each round once, in "
            "order, and the resumed rounds start after the checkpoint); remove anchor.rpc"
        )
    unknown = sorted(set(cfg.institutions) - set(sites))
    if unknown:
        raise AnchorError(f"anchor.institutions names unknown site(s) {unknown}; sites: {sites}")
    w3 = connect(cfg.rpc)
    account = cfg.account or _first_account(w3, cfg.rpc)
    if cfg.contract is None:
        registry, deployed = FederationRegistry.deploy(w3, account, federation_id)
    else:
        registry, deployed = FederationRegistry.at(w3, cfg.contract, account), None
        _check_fresh(registry, account)
    institutions = dict(cfg.institutions)
    if not institutions and cfg.rpc == IN_PROCESS:
        institutions = in_process_institutions(w3, sites, account)
    for site, address in institutions.items():
        if registry.institution(address) is None:
            registry.register_institution(address, site)
    return RunAnchor(cfg, registry, deployed, institutions)


def _first_account(w3: Web3, rpc: str) -> str:
    accounts = w3.eth.accounts
    if not accounts:
        raise AnchorError(f"the node at {rpc} has no unlocked account; set anchor.account")
    return str(accounts[0])


def _check_fresh(registry: FederationRegistry, account: str) -> None:
    if registry.coordinator.lower() != account.lower():
        raise AnchorError(
            f"the registry at {registry.address} is written by {registry.coordinator}, not by "
            f"this coordinator's account {account}"
        )
    if registry.round_count:
        raise AnchorError(
            f"the registry at {registry.address} already holds {registry.round_count} "
            "rounds; a run anchors into a registry of its own (leave anchor.contract null "
            "to deploy one)"
        )
