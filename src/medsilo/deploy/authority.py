"""The certificate authority of a provisioned federation folder, read back for later changes.

``medsilo provision`` writes ``OUT/authority/ca.crt`` and ``ca.key``; adding a site, revoking
one and renewing the coordinator's certificate (:mod:`medsilo.deploy.lifecycle_command`) sign
with that same key, so every kit already shipped keeps trusting what they produce. A missing
or damaged authority is a user error (wrong folder, ``ca.key`` kept elsewhere), reported as a
``ConfigError`` naming the file, before anything is written.
"""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from medsilo.config import ConfigError
from medsilo.deploy import pki
from medsilo.deploy.kit_files import Roster, load_roster
from medsilo.deploy.kits import AUTHORITY_DIR, COORDINATOR_DIR


class AuthorityError(ConfigError):
    """The federation folder lacks a usable CA (certificate and matching private key)."""


def load_certificate(path: Path) -> x509.Certificate:
    """A PEM certificate, or a ``ConfigError`` naming the file."""
    if not path.is_file():
        raise ConfigError(f"certificate not found: {path}")
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except ValueError as err:
        raise ConfigError(f"{path} is not a PEM certificate: {err}") from None


def load_authority(federation_dir: Path) -> pki.Issued:
    """``authority/ca.key`` and ``ca.crt`` of a folder ``medsilo provision`` wrote; the key
    must be the certificate's (a CA re-made elsewhere would sign what no kit trusts)."""
    folder = federation_dir / AUTHORITY_DIR
    key_path = folder / "ca.key"
    if not key_path.is_file():
        raise AuthorityError(
            f"the CA's private key {key_path} is missing: run this where the federation was "
            "provisioned (the folder `medsilo provision` wrote, with authority/ca.key)"
        )
    certificate = load_certificate(folder / "ca.crt")
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (ValueError, TypeError) as err:
        raise AuthorityError(f"{key_path} is not an unencrypted PEM private key: {err}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != (
        certificate.public_key()
    ):
        raise AuthorityError(f"{key_path} is not the private key of {folder / 'ca.crt'}")
    return pki.Issued(key=key, certificate=certificate)


def load_matching_authority(federation_dir: Path) -> pki.Issued:
    """The CA, which must be the one the coordinator kit trusts (``coordinator/ca.crt``):
    anything it signs for a kit of another provisioning would be refused there."""
    ca = load_authority(federation_dir)
    shipped = federation_dir / COORDINATOR_DIR / "ca.crt"
    if load_certificate(shipped) != ca.certificate:
        raise AuthorityError(
            f"{shipped} is not {federation_dir / AUTHORITY_DIR / 'ca.crt'}: the coordinator "
            "kit belongs to another provisioning"
        )
    return ca


def coordinator_roster(federation_dir: Path) -> Roster:
    """The coordinator kit's roster, which names the federation's sites."""
    kit = federation_dir / COORDINATOR_DIR
    if not kit.is_dir():
        raise ConfigError(
            f"{federation_dir} is not a provisioned federation folder (no {COORDINATOR_DIR}/); "
            "give the folder `medsilo provision` wrote (its --out)"
        )
    return load_roster(kit)
