"""Connecting to the chain a federation anchors on: an in-process VM or a JSON-RPC node."""

from __future__ import annotations

from typing import TYPE_CHECKING

from medsilo.anchor.config import IN_PROCESS

if TYPE_CHECKING:
    from web3 import Web3

MISSING = "anchoring needs web3, eth-tester and py-evm: pip install 'medsilo[anchor]'"


class AnchorError(RuntimeError):
    """Anchoring cannot go on: no node, a refused transaction, a model that differs."""


def connect(rpc: str) -> Web3:
    """A connected :class:`web3.Web3`; a node that does not answer is an :class:`AnchorError`."""
    try:
        from web3 import Web3
    except ImportError as err:
        raise AnchorError(MISSING) from err
    if rpc == IN_PROCESS:
        try:
            from web3 import EthereumTesterProvider

            return Web3(EthereumTesterProvider())
        except ImportError as err:  # web3 without eth-tester / py-evm
            raise AnchorError(MISSING) from err
    w3 = Web3(Web3.HTTPProvider(rpc, request_kwargs={"timeout": 10}))
    if not w3.is_connected():
        raise AnchorError(f"no Ethereum JSON-RPC node answers at {rpc}")
    return w3
