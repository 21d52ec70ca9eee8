"""The coordinator's certificate chains to the CA and is a TLS server certificate for its names."""

from __future__ import annotations

import argparse
import ipaddress
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from flwr.common.args import try_obtain_server_certificates

from medsilo.deploy.kits import Kit


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_server_certificate_is_signed_by_the_ca(provisioned: tuple[Path, list[Kit]]) -> None:
    out, _ = provisioned
    ca = _cert(out / "coordinator" / "ca.crt")
    server = _cert(out / "coordinator" / "server.crt")
    assert server.issuer == ca.subject
    public = ca.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert isinstance(public.curve, ec.SECP384R1)
    assert server.signature_hash_algorithm is not None
    public.verify(
        server.signature, server.tbs_certificate_bytes, ec.ECDSA(server.signature_hash_algorithm)
    )
    server.verify_directly_issued_by(ca)
    # The CA is self-signed and a CA; the server certificate is not.
    ca.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_server_certificate_names_and_usage(provisioned: tuple[Path, list[Kit]]) -> None:
    out, _ = provisioned
    server = _cert(out / "coordinator" / "server.crt")
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["coord.example.org"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.1.2.3")]
    eku = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    usage = server.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign
    days = (server.not_valid_after_utc - server.not_valid_before_utc).days
    assert 29 <= days <= 30


def test_a_different_ca_does_not_verify_the_server(tmp_path: Path) -> None:
    from medsilo.deploy import pki

    ca, other = pki.make_ca("one", 1), pki.make_ca("two", 1)
    server = pki.make_server_certificate(ca, ["x.example.org"], 1)
    server.certificate.verify_directly_issued_by(ca.certificate)
    with pytest.raises(ValueError):
        server.certificate.verify_directly_issued_by(other.certificate)
    assert isinstance(server.certificate.signature_hash_algorithm, hashes.SHA384)


def handshake(out: Path, server_hostname: str) -> None:
    """A TLS 1.3 handshake in memory: site (CA only) against coordinator (cert + key)."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(
        out / "coordinator" / "server.crt", out / "coordinator" / "server.key"
    )
    client_ctx = ssl.create_default_context(cafile=str(out / "sites" / "site_a" / "ca.crt"))
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=server_hostname)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(10):
        for name, end in (("client", client), ("server", server)):
            if not done[name]:
                try:
                    end.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            return
    raise AssertionError("handshake did not finish")


def test_site_verifies_coordinator_over_tls(provisioned: tuple[Path, list[Kit]]) -> None:
    out, _ = provisioned
    handshake(out, "coord.example.org")
    handshake(out, "10.1.2.3")
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(out, "wrong.example.org")


def test_flower_reads_the_coordinator_tls_files(provisioned: tuple[Path, list[Kit]]) -> None:
    out, _ = provisioned
    kit = out / "coordinator"
    args = argparse.Namespace(
        ssl_ca_certfile=str(kit / "ca.crt"),
        ssl_certfile=str(kit / "server.crt"),
        ssl_keyfile=str(kit / "server.key"),
    )
    certificates = try_obtain_server_certificates(args)
    assert certificates is not None
    assert certificates[1] == (kit / "server.crt").read_bytes()
