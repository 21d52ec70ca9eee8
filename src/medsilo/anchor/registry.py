"""A client of the federation registry contract: deploy, register, anchor, acknowledge, read.

Every write returns its :class:`Transaction` (gas used, seconds until mined) so the run can
report what anchoring costs. A transaction the contract reverts (a non-coordinator writing,
a round out of order, a hash that differs) is an :class:`AnchorError` carrying the
contract's own reason.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from medsilo.anchor.chain import AnchorError
from medsilo.anchor.compiled import federation_registry

if TYPE_CHECKING:
    from web3 import Web3


@dataclass(frozen=True)
class Transaction:
    gas_used: int
    seconds: float
    tx_hash: str


@dataclass(frozen=True)
class AnchoredRound:
    round: int
    model_sha256: str  # hex, as the audit ledger writes it
    ledger_head: str  # hex: the hash of the ledger record of that round


def _reverted() -> tuple[type[BaseException], ...]:
    from web3.exceptions import ContractLogicError

    kinds: list[type[BaseException]] = [ContractLogicError]
    try:
        from eth_tester.exceptions import TransactionFailed

        kinds.append(TransactionFailed)
    except ImportError:  # a JSON-RPC node without eth-tester installed
        pass
    return tuple(kinds)


def _reason(err: BaseException) -> str:
    """The revert message alone (web3 also attaches the raw return data)."""
    first = err.args[0] if err.args else err
    return str(first)


def _transact(w3: Web3, call: Any, sender: str, what: str) -> tuple[Transaction, Any]:
    start = time.perf_counter()
    try:
        tx_hash = call.transact({"from": sender})
    except _reverted() as err:
        raise AnchorError(f"the registry refused to {what}: {_reason(err)}") from err
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash)
    if receipt["status"] != 1:
        raise AnchorError(f"the transaction to {what} failed (status {receipt['status']})")
    seconds = time.perf_counter() - start
    return Transaction(int(receipt["gasUsed"]), seconds, tx_hash.hex()), receipt


def _bytes32(hex_digest: str) -> bytes:
    raw = bytes.fromhex(hex_digest)
    if len(raw) != 32:
        raise ValueError(f"expected a SHA-256 hex digest, got {hex_digest!r}")
    return raw


class FederationRegistry:
    """The registry at ``address``, written to as ``account``."""

    def __init__(self, w3: Web3, address: str, account: str) -> None:
        self.w3 = w3
        self.account = account
        self.address = address
        self.contract = w3.eth.contract(
            address=w3.to_checksum_address(address), abi=federation_registry().abi
        )

    @classmethod
    def deploy(
        cls, w3: Web3, account: str, federation_id: str
    ) -> tuple[FederationRegistry, Transaction]:
        """A new registry whose coordinator is ``account`` (``federation_id``: hex digest)."""
        compiled = federation_registry()
        factory = w3.eth.contract(abi=compiled.abi, bytecode=compiled.bytecode)
        call = factory.constructor(_bytes32(federation_id))
        tx, receipt = _transact(w3, call, account, "deploy the registry")
        return cls(w3, receipt["contractAddress"], account), tx

    @classmethod
    def at(cls, w3: Web3, address: str, account: str) -> FederationRegistry:
        """The registry already deployed at ``address``; no code there is an AnchorError."""
        checksum = w3.to_checksum_address(address)
        if not w3.eth.get_code(checksum):
            raise AnchorError(f"no contract is deployed at {address}")
        return cls(w3, checksum, account)

    @property
    def coordinator(self) -> str:
        return str(self.contract.functions.coordinator().call())

    @property
    def round_count(self) -> int:
        return int(self.contract.functions.round_count().call())

    def register_institution(self, account: str, name: str) -> Transaction:
        call = self.contract.functions.register_institution(account, name)
        return _transact(self.w3, call, self.account, f"register {name!r}")[0]

    def institution(self, account: str) -> str | None:
        name = str(self.contract.functions.institution_name(account).call())
        return name or None

    def anchor_round(self, round_index: int, model_sha256: str, ledger_head: str) -> Transaction:
        call = self.contract.functions.anchor_round(
            round_index, _bytes32(model_sha256), _bytes32(ledger_head)
        )
        return _transact(self.w3, call, self.account, f"anchor round {round_index}")[0]

    def acknowledge_round(
        self, institution: str, round_index: int, model_sha256: str
    ) -> Transaction:
        """``institution`` confirms, from its own account, the model it received."""
        call = self.contract.functions.acknowledge_round(round_index, _bytes32(model_sha256))
        return _transact(self.w3, call, institution, f"acknowledge round {round_index}")[0]

    def acknowledged(self, round_index: int, institution: str) -> bool:
        return bool(self.contract.functions.acknowledged(round_index, institution).call())

    def anchored(self, round_index: int) -> AnchoredRound | None:
        """What the chain holds for ``round_index``; None before it is anchored."""
        if not 1 <= round_index <= self.round_count:
            return None
        functions = self.contract.functions
        model = bytes(functions.model_hash(round_index).call()).hex()
        head = bytes(functions.ledger_head(round_index).call()).hex()
        return AnchoredRound(round_index, model, head)
