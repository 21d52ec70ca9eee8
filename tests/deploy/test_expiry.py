"""Certificate expiry: warnings ahead of time, and renewing the coordinator's certificate.

Kits are provisioned with short lifetimes (``validity_days``) or given a coordinator
certificate made to end in a few days (``not_valid_after``), so the warnings must fire; the
renewed certificate must come from the same CA, cover the same names and complete a TLS
handshake with a site's unchanged ``ca.crt``.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from typer.testing import CliRunner

from medsilo.cli import app
from medsilo.deploy import pki
from medsilo.deploy.authority import load_authority
from medsilo.deploy.expiry import expiring, folder_certificates, kit_expiry_warnings
from medsilo.deploy.kits import provision
from medsilo.deploy.spec import parse_federation
from tests.deploy.conftest import RAW
from tests.deploy.test_pki import handshake
from tests.deploy.tree import tree_hashes

runner = CliRunner()


def provisioned(tmp_path: Path, days: int) -> Path:
    out = tmp_path / "kits"
    provision(parse_federation(RAW | {"validity_days": days}), out)
    return out


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env={"COLUMNS": "500"})
    return result.exit_code, " ".join(result.output.split())


def certificate(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_check_expiry_flags_certificates_within_the_window(tmp_path: Path) -> None:
    out = provisioned(tmp_path, days=10)
    code, output = invoke("provision", "check-expiry", str(out))
    assert code == 1
    assert "coordinator/server.crt (the coordinator's TLS certificate) expires on" in output
    assert "medsilo provision renew" in output
    assert "sites/site_a/ca.crt (the federation's CA) expires on" in output
    assert "re-provision" in output
    code, output = invoke("provision", "check-expiry", str(out), "--days", "5")
    assert code == 0 and "WARNING" not in output
    assert "coordinator/server.crt: the coordinator's TLS certificate, valid until" in output
    # Twenty days on, both have ended.
    later = datetime.now(UTC) + timedelta(days=20)
    lives = folder_certificates(out / "coordinator")
    assert [life.path.name for life in expiring(lives, 0, later)] == ["ca.crt", "server.crt"]
    assert all("EXPIRED on" in life.warning(later) for life in lives)
    code, output = invoke("provision", "check-expiry", str(tmp_path / "nowhere"))
    assert code == 2 and "is not a folder" in output


def test_start_commands_warn_when_their_kit_expires_soon(tmp_path: Path) -> None:
    soon = provisioned(tmp_path / "soon", days=10)
    fine = provisioned(tmp_path / "fine", days=365)
    assert kit_expiry_warnings(fine / "coordinator") == []
    assert len(kit_expiry_warnings(soon / "coordinator")) == 2  # CA and server certificate
    missing = str(tmp_path / "missing.yaml")
    code, output = invoke(
        "coordinator", "start", str(soon / "coordinator"), "--config", missing, "--out", "x"
    )
    assert code == 2 and "server.crt (the coordinator's TLS certificate) expires on" in output
    code, output = invoke("site", "start", str(soon / "sites" / "site_a"), "--data", missing)
    assert code == 2 and "site_a/ca.crt (the federation's CA) expires on" in output
    code, output = invoke("site", "start", str(fine / "sites" / "site_a"), "--data", missing)
    assert code == 2 and "WARNING" not in output


def test_renew_reissues_the_coordinator_certificate_from_the_same_ca(tmp_path: Path) -> None:
    out = provisioned(tmp_path, days=365)
    kit = out / "coordinator"
    ca = load_authority(out)
    # The coordinator's certificate ends in 3 days (the CA in a year).
    short = pki.make_server_certificate(ca, ["coord.example.org", "10.1.2.3"], 3)
    (kit / "server.crt").write_bytes(pki.certificate_pem(short.certificate))
    (kit / "server.key").write_bytes(pki.tls_key_pem(short.key))
    old_key = (kit / "server.key").read_bytes()
    code, output = invoke("provision", "check-expiry", str(kit))
    assert code == 1 and "server.crt" in output
    before = tree_hashes(out)
    code, output = invoke("provision", "renew", str(out))
    assert code == 0, output
    after = tree_hashes(out)
    assert {p for p in before if before[p] != after[p]} == {
        "coordinator/server.crt",
        "coordinator/server.key",
    }
    assert set(after) == set(before)
    renewed = certificate(kit / "server.crt")
    renewed.verify_directly_issued_by(ca.certificate)
    sans = renewed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(name.value) for name in sans] == ["coord.example.org", "10.1.2.3"]
    assert renewed.not_valid_after_utc > datetime.now(UTC) + timedelta(days=300)
    assert (kit / "server.key").read_bytes() != old_key
    assert os.stat(kit / "server.key").st_mode & 0o077 == 0
    # A site's unchanged ca.crt trusts the renewed certificate for both names.
    handshake(out, "coord.example.org")
    handshake(out, "10.1.2.3")
    assert invoke("provision", "check-expiry", str(kit))[0] == 0


def test_renew_refuses_without_the_ca_key_or_with_an_expired_ca(tmp_path: Path) -> None:
    out = provisioned(tmp_path, days=30)
    key = out / "authority" / "ca.key"
    kept = key.read_bytes()
    key.unlink()
    before = tree_hashes(out)
    code, output = invoke("provision", "renew", str(out))
    assert code == 2 and "ca.key is missing" in output
    assert tree_hashes(out) == before
    pki.write_private(key, kept)
    code, output = invoke("provision", "renew", str(out), "--days", "0")
    assert code == 2 and "--days 0" in output
    # A CA that has ended: nothing it signs is trusted, so renewing is pointless.
    expired = pki.make_ca("testfed", 0)  # valid until the moment it was made
    key.unlink()
    pki.write_private(key, pki.tls_key_pem(expired.key))
    for copy in (out / "authority" / "ca.crt", out / "coordinator" / "ca.crt"):
        copy.write_bytes(pki.certificate_pem(expired.certificate))
    before = tree_hashes(out)
    code, output = invoke("provision", "renew", str(out))
    assert code == 2 and "the federation's CA expired on" in output, output
    assert tree_hashes(out) == before


@pytest.mark.parametrize("folder", ["authority", "coordinator"])
def test_a_coordinator_kit_of_another_provisioning_is_refused(tmp_path: Path, folder: str) -> None:
    out = provisioned(tmp_path / "one", days=30)
    other = provisioned(tmp_path / "two", days=30)
    target = out / folder / "ca.crt"
    target.write_bytes((other / folder / "ca.crt").read_bytes())
    before = tree_hashes(out)
    code, output = invoke("provision", "renew", str(out))
    assert code == 2, output
    assert tree_hashes(out) == before
