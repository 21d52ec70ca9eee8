"""The vulnerability registry can be updated: validation names the bad entry, a valid file
is installed to the user data dir and preferred over the bundled seed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from medsilo.attestation.registry_update import RegistryError, install_registry, validate_registry
from medsilo.attestation.tcb import tcb_affected
from medsilo.confidential.vulnerabilities import default_registry, user_registry_path


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("MEDSILO_DATA_DIR", str(tmp_path / "data"))
    default_registry.cache_clear()
    yield tmp_path / "data"
    default_registry.cache_clear()


def _entry(**kw: Any) -> dict[str, Any]:
    base = {
        "cve": "CVE-2099-1234",
        "name": "test attack",
        "platforms": ["sev-snp"],
        "exploitable": True,
        "source": "https://example.org/advisory",
        "fixed_tcb": {"sev-snp": "3.0.8.115"},
    }
    return base | kw


def test_bundled_registry_passes_the_update_schema() -> None:
    text = resources.files("medsilo.confidential").joinpath("tee_vulnerabilities.json")
    assert len(validate_registry(json.loads(text.read_text(encoding="utf-8")))) >= 7


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (_entry(cve="CVE-99"), "entry 1 (CVE-99): cve"),
        (_entry(platforms=["z80"]), "entry 1 (CVE-2099-1234): platforms.0"),
        (_entry(source="not a url"), "source"),
        (_entry(fixed_tcb={"tdx": "1.2"}), "fixed_tcb names 'tdx' not in platforms"),
        (_entry(fixed_tcb={"sev-snp": "v3"}), "fixed_tcb.sev-snp"),
        (_entry(cve="CVE-2099-0001"), "duplicate CVE id"),
        (_entry(extra=1), "extra"),
    ],
)
def test_bad_entries_are_named(bad: dict[str, Any], message: str) -> None:
    raw = {"entries": [_entry(cve="CVE-2099-0001"), bad]}
    with pytest.raises(RegistryError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate_registry(raw)


def test_install_prefers_user_copy(tmp_path: Path, data_dir: Path) -> None:
    bundled = default_registry()
    assert "CVE-2099-1234" not in bundled
    source = tmp_path / "new.json"
    source.write_text(json.dumps({"entries": [_entry()]}), encoding="utf-8")
    target, count = install_registry(source)
    assert target == user_registry_path() and target.parent == data_dir and count == 1
    updated = default_registry()
    assert set(updated) == {"CVE-2099-1234"}
    assert updated["CVE-2099-1234"].fixed_tcb == {"sev-snp": "3.0.8.115"}


def test_bad_file_installs_nothing(tmp_path: Path, data_dir: Path) -> None:
    source = tmp_path / "bad.json"
    source.write_text(json.dumps({"entries": [_entry(exploitable="maybe")]}), encoding="utf-8")
    with pytest.raises(RegistryError, match="exploitable"):
        install_registry(source)
    assert not user_registry_path().exists()


def test_tcb_comparison_is_componentwise() -> None:
    assert tcb_affected("3.0.8.93", "3.0.8.115")
    assert tcb_affected("9.0.7.200", "3.0.8.115")  # one component below the fix
    assert not tcb_affected("3.0.8.115", "3.0.8.115")
    with pytest.raises(ValueError, match="differ in shape"):
        tcb_affected("3.0", "3.0.8.115")
