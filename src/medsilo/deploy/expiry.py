"""Certificate lifetimes: warn before a kit's certificates expire, renew the coordinator's.

A federation has two certificates with an end date (``validity_days`` at provisioning):

* the CA (``ca.crt`` in every kit): when it expires, no site trusts any coordinator
  certificate; renewing it means a new CA, so every kit is re-issued (``medsilo provision
  --force``);
* the coordinator's TLS certificate (``coordinator/server.crt``, at most as long as the CA):
  ``medsilo provision renew OUT`` issues a new key and certificate for the same names from the
  same CA, so the sites, which trust the CA and not that certificate, keep connecting and
  need nothing new.

``medsilo coordinator start`` and ``medsilo site start`` print a warning for each certificate
of their kit that expires within 30 days (or has expired); ``medsilo provision check-expiry``
lists every certificate of a folder with its end date and exits 1 when one of them is within
the window, for a cron job or a monitoring probe.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509

from medsilo.config import ConfigError
from medsilo.deploy import pki
from medsilo.deploy.authority import load_certificate, load_matching_authority
from medsilo.deploy.kits import COORDINATOR_DIR

WARN_DAYS = 30
SERVER_CERTIFICATE = "server.crt"
SERVER_KEY = "server.key"


@dataclass(frozen=True)
class CertificateLife:
    """One certificate file and when it stops being valid."""

    path: Path
    is_ca: bool
    not_after: datetime

    def days_left(self, now: datetime) -> float:
        return (self.not_after - now).total_seconds() / 86400

    def what(self) -> str:
        return "the federation's CA" if self.is_ca else "the coordinator's TLS certificate"

    def remedy(self) -> str:
        if self.is_ca:
            return (
                "a new CA means new kits for everyone: re-provision (`medsilo provision "
                "FEDERATION.yaml --force`) and ship every kit again"
            )
        return "renew it with `medsilo provision renew FEDERATION_DIR` (same CA, sites unchanged)"

    def warning(self, now: datetime) -> str:
        when = self.not_after.strftime("%Y-%m-%d %H:%M UTC")
        left = self.days_left(now)
        state = f"EXPIRED on {when}" if left <= 0 else f"expires on {when}, in {left:.0f} days"
        return f"WARNING: {self.path} ({self.what()}) {state}; {self.remedy()}"


def certificate_life(path: Path) -> CertificateLife:
    certificate = load_certificate(path)
    try:
        is_ca = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    return CertificateLife(path, is_ca, certificate.not_valid_after_utc)


def folder_certificates(folder: Path) -> list[CertificateLife]:
    """Every ``*.crt`` under ``folder`` (a kit or a whole provisioning folder), by path."""
    if not folder.is_dir():
        raise ConfigError(f"{folder} is not a folder (give a kit or the provisioning folder)")
    return [certificate_life(path) for path in sorted(folder.rglob("*.crt"))]


def expiring(
    lives: list[CertificateLife], within_days: float, now: datetime | None = None
) -> list[CertificateLife]:
    """Those that end within ``within_days`` of ``now`` (or have ended)."""
    now = now or datetime.now(UTC)
    return [life for life in lives if life.days_left(now) < within_days]


def kit_expiry_warnings(kit: Path, within_days: float = WARN_DAYS) -> list[str]:
    """The warnings a start command prints for its kit's certificates; none for a kit
    without certificates (``--insecure`` runs) or a folder that is not there (reported
    later, by the command's own checks)."""
    if not kit.is_dir():
        return []
    now = datetime.now(UTC)
    return [life.warning(now) for life in expiring(folder_certificates(kit), within_days, now)]


def _names(certificate: x509.Certificate) -> list[str]:
    """The DNS names and IPs the certificate covers, in its order."""
    sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(entry.value) for entry in sans]


def renew_server_certificate(federation_dir: Path, days: int) -> x509.Certificate:
    """Issue the coordinator a new TLS key and certificate for the same names from the same
    CA (at most until the CA expires) and replace ``server.crt`` / ``server.key``.

    Refused, with nothing written, when the CA's key is not at hand or the CA has expired."""
    if not 1 <= days <= 3650:
        raise ConfigError(f"--days {days}: give 1 to 3650")
    kit = federation_dir / COORDINATOR_DIR
    current = load_certificate(kit / SERVER_CERTIFICATE)
    ca = load_matching_authority(federation_dir)
    if ca.certificate.not_valid_after_utc <= datetime.now(UTC):
        raise ConfigError(
            f"the federation's CA expired on {ca.certificate.not_valid_after_utc:%Y-%m-%d}: a "
            "certificate it signs is trusted by no site; re-provision the federation"
        )
    issued = pki.make_server_certificate(ca, _names(current), days)
    # Both files are written beside their final names first, then moved in: a coordinator
    # never finds a new certificate next to the old key.
    staged_key = kit / f".{SERVER_KEY}.new"
    staged_key.unlink(missing_ok=True)
    pki.write_private(staged_key, pki.tls_key_pem(issued.key))
    staged_cert = kit / f".{SERVER_CERTIFICATE}.new"
    pki.write_public(staged_cert, pki.certificate_pem(issued.certificate))
    os.replace(staged_key, kit / SERVER_KEY)
    os.replace(staged_cert, kit / SERVER_CERTIFICATE)
    return issued.certificate
