"""The federation registry contract on an in-process Ethereum VM (eth-tester on py-evm)."""

from __future__ import annotations

import numpy as np
import pytest

from medsilo.anchor.chain import AnchorError, connect
from medsilo.anchor.compiled import federation_registry
from medsilo.anchor.config import IN_PROCESS
from medsilo.anchor.registry import FederationRegistry
from medsilo.anchor.run_anchor import in_process_institutions
from medsilo.anchor.site_check import AnchorMismatch, verify_received
from medsilo.ledger.digest import weights_sha256

FEDERATION = "ab" * 32
HEAD = "cd" * 32


@pytest.fixture
def chain() -> tuple[FederationRegistry, list[str]]:
    w3 = connect(IN_PROCESS)
    coordinator = w3.eth.accounts[0]
    registry, deployed = FederationRegistry.deploy(w3, coordinator, FEDERATION)
    assert deployed.gas_used > 0
    sites = in_process_institutions(w3, ["cleveland", "hungarian"], coordinator)
    for name, account in sites.items():
        registry.register_institution(account, name)
    return registry, list(sites.values())


def _weights(value: float) -> list[np.ndarray]:
    return [np.full((3, 2), value, dtype=np.float32), np.arange(2, dtype=np.float32)]


def test_the_contract_is_compiled_from_the_shipped_source() -> None:
    compiled = federation_registry()
    names = {item.get("name") for item in compiled.abi}
    assert {"anchor_round", "acknowledge_round", "register_institution"} <= names
    assert compiled.bytecode.startswith("0x") and len(compiled.bytecode) > 1000
    assert compiled.compiler == "vyper 0.4.3"


def test_rounds_are_anchored_in_order_once_each_by_the_coordinator_only(
    chain: tuple[FederationRegistry, list[str]],
) -> None:
    registry, sites = chain
    first = registry.anchor_round(1, weights_sha256(_weights(0.5)), HEAD)
    assert first.gas_used > 21_000
    with pytest.raises(AnchorError, match="in order"):
        registry.anchor_round(3, "00" * 32, HEAD)
    with pytest.raises(AnchorError, match="in order"):
        registry.anchor_round(1, "00" * 32, HEAD)  # a round is never rewritten
    intruder = FederationRegistry(registry.w3, registry.address, sites[0])
    with pytest.raises(AnchorError, match="only the coordinator anchors"):
        intruder.anchor_round(2, "00" * 32, HEAD)
    anchored = registry.anchored(1)
    assert anchored is not None
    assert anchored.model_sha256 == weights_sha256(_weights(0.5))
    assert anchored.ledger_head == HEAD
    assert registry.anchored(2) is None and registry.round_count == 1


def test_a_site_catches_a_model_whose_hash_differs_from_the_anchored_one(
    chain: tuple[FederationRegistry, list[str]],
) -> None:
    registry, sites = chain
    sent = _weights(0.5)
    registry.anchor_round(1, weights_sha256(sent), HEAD)
    assert verify_received(registry, 1, sent) == weights_sha256(sent)
    tampered = [w.copy() for w in sent]
    tampered[0][0, 0] = np.nextafter(np.float32(0.5), np.float32(1.0))  # one ulp
    with pytest.raises(AnchorMismatch, match="do not train on it"):
        verify_received(registry, 1, tampered)
    with pytest.raises(AnchorMismatch, match="not anchored"):
        verify_received(registry, 2, sent)
    # the contract itself refuses a site confirming a different model
    with pytest.raises(AnchorError, match="differs from the anchored one"):
        registry.acknowledge_round(sites[0], 1, weights_sha256(tampered))
    registry.acknowledge_round(sites[0], 1, weights_sha256(sent))
    assert registry.acknowledged(1, sites[0]) and not registry.acknowledged(1, sites[1])
    with pytest.raises(AnchorError, match="already acknowledged"):
        registry.acknowledge_round(sites[0], 1, weights_sha256(sent))


def test_only_the_coordinator_registers_and_only_institutions_acknowledge(
    chain: tuple[FederationRegistry, list[str]],
) -> None:
    registry, sites = chain
    assert registry.institution(sites[0]) == "cleveland"
    with pytest.raises(AnchorError, match="already registered"):
        registry.register_institution(sites[0], "cleveland again")
    outsider = registry.w3.eth.accounts[3]
    as_site = FederationRegistry(registry.w3, registry.address, sites[1])
    with pytest.raises(AnchorError, match="only the coordinator registers"):
        as_site.register_institution(outsider, "impostor")
    registry.anchor_round(1, weights_sha256(_weights(1.0)), HEAD)
    with pytest.raises(AnchorError, match="only a registered institution"):
        registry.acknowledge_round(outsider, 1, weights_sha256(_weights(1.0)))


def test_no_contract_at_an_address_is_refused() -> None:
    w3 = connect(IN_PROCESS)
    with pytest.raises(AnchorError, match="no contract is deployed"):
        FederationRegistry.at(w3, "0x" + "11" * 20, w3.eth.accounts[0])


def test_a_node_that_does_not_answer_is_refused() -> None:
    with pytest.raises(AnchorError, match="no Ethereum JSON-RPC node answers"):
        connect("http://127.0.0.1:9")
