"""The attestation part of the kits: the policy round-trips, a site's attest.key signs evidence
the coordinator kit's key accepts (and no other site's does), the roster keeps the federation's
order, and a missing or damaged kit file is reported by name with the fix."""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from medsilo.attestation.measurement import package_measurement
from medsilo.attestation.nonces import NonceBook
from medsilo.attestation.policy import EnrolmentPolicy, enrol, load_policy
from medsilo.attestation.software import sign_evidence
from medsilo.deploy.kit_files import (
    KitFileError,
    load_attestation_keys,
    load_enrolment_policy,
    load_roster,
    load_site_identity,
)
from medsilo.deploy.kits import Kit, provision
from medsilo.deploy.spec import parse_federation
from tests.deploy.conftest import RAW

SITES = ("site_a", "site-b")


def _provision(tmp_path: Path, **changes: Any) -> Path:
    raw = copy.deepcopy(RAW) | changes
    provision(parse_federation(raw), tmp_path)
    return tmp_path


def test_roster_keeps_the_federation_order(
    provisioned: tuple[Path, list[Kit]], tmp_path: Path
) -> None:
    out, _ = provisioned
    roster = load_roster(out / "coordinator")
    assert roster.sites == SITES
    assert (roster.federation, roster.address, roster.port) == (
        "testfed",
        "coord.example.org",
        8443,
    )
    order = ["zeta", "alpha", "mid"]  # not sorted: the file's order is kept
    other = _provision(tmp_path, sites=[{"name": name} for name in order])
    assert list(load_roster(other / "coordinator").sites) == order
    assert list(load_attestation_keys(other / "coordinator")) == order


def test_policy_defaults_to_the_package_measurement(tmp_path: Path) -> None:
    before = package_measurement()  # other edits to the package may land meanwhile
    out = _provision(tmp_path)
    policy = load_policy(out / "coordinator" / "enrolment-policy.yaml")
    measurement = policy.allowed_measurements
    assert measurement in ((before,), (package_measurement(),))
    assert policy == EnrolmentPolicy(allowed_measurements=measurement)
    assert "software" not in policy.allowed_backends
    assert load_enrolment_policy(out / "coordinator") == policy


def test_policy_keeps_explicit_values(tmp_path: Path) -> None:
    given = {
        "allowed_backends": ["software", "tdx"],
        "allowed_measurements": ["ab" * 32, "cd" * 48],
        "max_age_s": 42.5,
        "exploitable_tcb": "flag",
    }
    out = _provision(tmp_path, enrolment=given)
    text = (out / "coordinator" / "enrolment-policy.yaml").read_text()
    assert "NO hardware root of trust" in text
    assert load_policy(out / "coordinator" / "enrolment-policy.yaml") == (
        EnrolmentPolicy.model_validate(given)
    )


def test_site_evidence_enrols_with_its_own_key_only(tmp_path: Path) -> None:
    out = _provision(tmp_path, enrolment={"allowed_backends": ["software"]})
    coordinator = out / "coordinator"
    policy = load_enrolment_policy(coordinator)
    keys = load_attestation_keys(coordinator)
    assert list(keys) == list(SITES)
    identities = {site: load_site_identity(out / "sites" / site) for site in SITES}
    book = NonceBook()

    def evidence_for(site: str, signer: str) -> Any:
        return sign_evidence(
            identities[signer].attest_private_key(),
            site=site,
            measurement=policy.allowed_measurements[0],
            nonce=book.issue(site),
        )

    for site in SITES:
        decision = enrol(evidence_for(site, site), policy, book, keys)
        assert decision.accepted, decision.reason
        assert not decision.hardware_rooted and "software backend" in decision.reason
    # site-b's key cannot speak for site_a.
    forged = enrol(evidence_for("site_a", "site-b"), policy, book, keys)
    assert not forged.accepted and "signature does not verify" in forged.reason
    # The default policy (no `software` listed) refuses the same genuine evidence.
    strict = EnrolmentPolicy(allowed_measurements=policy.allowed_measurements)
    refused = enrol(evidence_for("site_a", "site_a"), strict, book, keys)
    assert not refused.accepted and "not allowed by policy" in refused.reason


def test_site_identity(provisioned: tuple[Path, list[Kit]]) -> None:
    out, _ = provisioned
    kit = out / "sites" / "site-b"
    identity = load_site_identity(kit)
    assert identity.name == "site-b" and identity.kit == kit
    assert (identity.attest_key, identity.node_key) == (kit / "attest.key", kit / "node.key")
    assert identity.ca_certificate == kit / "ca.crt"
    assert identity.coordinator == "coord.example.org:8443"
    public = load_attestation_keys(out / "coordinator")["site-b"]
    assert identity.attest_private_key().public_key() == public


def _remove(path: Path) -> None:
    path.unlink()


def _write(text: str) -> Any:
    return lambda path: path.write_text(text)


def _copy_from(name: str) -> Any:
    return lambda path: shutil.copyfile(path.parent / name, path)


COORDINATOR_DAMAGE = [
    ("federation.json", _remove, "missing"),
    ("federation.json", _write("{not json"), "not JSON"),
    ("federation.json", _write('{"federation": "f", "sites": ["a"], "address": "h"}'), "port"),
    (
        "federation.json",
        _write('{"federation": "f", "sites": ["../x"], "address": "h", "port": 1}'),
        "sites",
    ),
    ("site-keys/site-b.attest.pub", _remove, "missing"),
    ("site-keys/site-b.attest.pub", _copy_from("site-b.pub"), "not a PEM public key"),
    ("enrolment-policy.yaml", _remove, "missing"),
    ("enrolment-policy.yaml", _write("allowed_backends: [sgx]\n"), "allowed_measurements"),
    ("enrolment-policy.yaml", _write("a: [\n"), "malformed"),
]


@pytest.mark.parametrize(("name", "damage", "says"), COORDINATOR_DAMAGE)
def test_damaged_coordinator_kit_is_named(
    provisioned: tuple[Path, list[Kit]], tmp_path: Path, name: str, damage: Any, says: str
) -> None:
    kit = tmp_path / "coordinator"
    shutil.copytree(provisioned[0] / "coordinator", kit)
    damage(kit / name)
    with pytest.raises(KitFileError, match="re-run `medsilo provision`") as caught:
        load_attestation_keys(kit)
        load_enrolment_policy(kit)
    assert name in str(caught.value) and says in str(caught.value)


SITE_DAMAGE = [
    ("site.txt", _remove, "missing"),
    ("site.txt", _write("a\nb\n"), "one non-empty line"),
    ("site.txt", _write("../etc\n"), "not a valid site name"),
    ("coordinator.txt", _remove, "missing"),
    ("coordinator.txt", _write("coord.example.org\n"), "not host:port"),
    ("attest.key", _remove, "missing"),
    ("attest.key", _copy_from("node.key"), "not an unencrypted PEM private key"),
    ("attest.key", lambda path: os.chmod(path, 0o644), "chmod 600"),
    ("node.key", _remove, "missing"),
    ("ca.crt", _remove, "missing"),
]


@pytest.mark.parametrize(("name", "damage", "says"), SITE_DAMAGE)
def test_damaged_site_kit_is_named(
    provisioned: tuple[Path, list[Kit]], tmp_path: Path, name: str, damage: Any, says: str
) -> None:
    kit = tmp_path / "site_a"
    shutil.copytree(provisioned[0] / "sites" / "site_a", kit)
    load_site_identity(kit)  # intact copy loads
    damage(kit / name)
    with pytest.raises(KitFileError) as caught:
        load_site_identity(kit)
    assert name in str(caught.value) and says in str(caught.value)
