"""Keys and certificates for a Flower 1.42 deployment, made with ``cryptography``.

Choices (all keys are EC on NIST P-384, ECDSA with SHA-384 signatures):

* Certificate authority: self-signed, ``BasicConstraints(ca=True, path_length=0)``,
  ``KeyUsage(key_cert_sign, crl_sign)``. It signs only the coordinator's TLS certificate; the
  sites receive it as ``--root-certificates`` to verify the coordinator. P-384 gives ~192-bit
  security, more than RSA 3072 (~128-bit), with much smaller keys and signatures.
* Coordinator TLS certificate: signed by the CA, ``ca=False``, ``KeyUsage(digital_signature)``,
  ``ExtendedKeyUsage(serverAuth)`` and a SubjectAlternativeName listing every DNS name / IP the
  sites may dial (TLS clients check the SAN, not the CN).
* Site node keys (SuperNode authentication): Flower's ``flower-supernode
  --auth-supernode-private-key`` reads the private key with ``load_ssh_private_key`` and insists
  on an EC key; ``flwr supernode register`` reads the public key with ``load_ssh_public_key`` and
  accepts NIST curves only. So both are written in OpenSSH format, EC P-384.

Private keys are written unencrypted (the services start unattended) with mode 0600.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from medsilo.deploy.spec import is_ip_address

CURVE = ec.SECP384R1
SIGNATURE_HASH = hashes.SHA384


@dataclass(frozen=True)
class Issued:
    """A private key and its certificate."""

    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(CURVE())


def _validity(days: int) -> tuple[dt.datetime, dt.datetime]:
    # Backdate by 5 minutes so small clock skew between machines does not reject a fresh cert.
    now = dt.datetime.now(dt.UTC)
    return now - dt.timedelta(minutes=5), now + dt.timedelta(days=days)


def make_ca(federation: str, days: int) -> Issued:
    key = new_key()
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"medsilo federation {federation}"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{federation} root CA"),
        ]
    )
    start, end = _validity(days)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, SIGNATURE_HASH())
    )
    return Issued(key=key, certificate=cert)


def _general_name(name: str) -> x509.GeneralName:
    if is_ip_address(name):
        return x509.IPAddress(ipaddress.ip_address(name))
    return x509.DNSName(name)


def make_server_certificate(ca: Issued, names: list[str], days: int) -> Issued:
    """The coordinator's TLS certificate; ``names[0]`` is also the subject CN."""
    key = new_key()
    start, end = _validity(days)
    ca_ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(min(end, ca.certificate.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([_general_name(name) for name in names]), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca.key, SIGNATURE_HASH())
    )
    return Issued(key=key, certificate=cert)


# --- writing -----------------------------------------------------------------------------


def write_private(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 from the start (no window where others can read it)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o600)  # the umask may have removed bits, never added; make it exact


def write_public(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    os.chmod(path, 0o644)


def certificate_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def tls_key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def node_private_openssh(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )


def node_public_openssh(key: ec.EllipticCurvePrivateKey, comment: str) -> bytes:
    body = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return body + b" " + comment.encode() + b"\n"
