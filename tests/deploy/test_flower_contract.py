"""The Flower internals medsilo patches are exactly the pinned ones (fails loudly, naming the
module, when Flower changes: re-read it, then re-pin it in medsilo.deploy.flower_contract)."""

from __future__ import annotations

import pytest

from medsilo.deploy import flower_contract as contract


def test_the_installed_flower_is_the_one_the_patches_were_checked_on() -> None:
    assert contract.installed_flower_version() == contract.FLOWER_VERSION
    assert set(
        contract.POLL_PATCH
        + contract.WARM_CLIENTAPPS
        + contract.OBJECT_PULLS
        + contract.PAYLOADS_IN_MEMORY
    ) == set(contract.PINS)
    assert contract.contract_problems(contract.PINS) == []


def test_a_changed_module_or_version_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    module = contract.SUPEREXEC_MODULE
    (problem,) = contract.contract_problems([module], {module: "0" * 64})
    assert module in problem and "changed" in problem
    monkeypatch.setattr(contract, "FLOWER_VERSION", "0.0.0")
    problems = contract.contract_problems([module])
    version = contract.installed_flower_version()
    assert problems == [f"Flower is {version}, medsilo's patches were checked on 0.0.0"]
