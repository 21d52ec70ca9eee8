"""Shared builders for the attestation tests: keys, policies, synthetic hardware reports."""

from __future__ import annotations

import hashlib
import struct

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from medsilo.attestation.hardware import nonce_report_data
from medsilo.attestation.policy import EnrolmentPolicy
from medsilo.confidential.vulnerabilities import Registry, Vulnerability

MEASUREMENT = hashlib.sha256(b"medsilo site code v1").hexdigest()
OTHER_MEASUREMENT = hashlib.sha256(b"something else").hexdigest()
SNP_MEASUREMENT = bytes(range(48))
TDX_MRTD = bytes(range(100, 148))

# one exploitable CVE fixed in SNP TCB 3.0.8.115 / TDX SVN 2.x, one non-exploitable
REGISTRY: Registry = {
    "CVE-2099-0001": Vulnerability(
        "CVE-2099-0001",
        "test exploitable",
        ("sev-snp", "tdx"),
        True,
        {"sev-snp": "3.0.8.115", "tdx": ".".join(["2"] + ["0"] * 15)},
    ),
    "CVE-2099-0002": Vulnerability(
        "CVE-2099-0002", "test info-only", ("sev-snp",), False, {"sev-snp": "9.0.0.0"}
    ),
}


def site_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def software_policy(**kw: object) -> EnrolmentPolicy:
    base: dict[str, object] = {
        "allowed_backends": ["software", "sev-snp", "tdx"],
        "allowed_measurements": [MEASUREMENT, SNP_MEASUREMENT.hex(), TDX_MRTD.hex()],
    }
    return EnrolmentPolicy.model_validate(base | kw)


def snp_report(nonce: str, tcb: tuple[int, int, int, int], version: int = 2) -> bytes:
    """A 0x4A0-byte ATTESTATION_REPORT with the fields the parser reads set."""
    raw = bytearray(0x4A0)
    bl, tee, snp, ucode = tcb
    tcb_u64 = int.from_bytes(bytes([bl, tee, 0, 0, 0, 0, snp, ucode]), "little")
    struct.pack_into("<IIQ", raw, 0x000, version, 7, 0x30000)
    struct.pack_into("<IIQ", raw, 0x030, 0, 1, tcb_u64)
    raw[0x050:0x070] = nonce_report_data(nonce)
    raw[0x090:0x0C0] = SNP_MEASUREMENT
    struct.pack_into("<Q", raw, 0x180, tcb_u64)
    raw[0x1A0:0x1E0] = b"\xab" * 64
    return bytes(raw)


def tdx_quote(nonce: str, tee_tcb_svn: bytes, version: int = 4, tee_type: int = 0x81) -> bytes:
    """A v4 quote header + TD quote body (+ empty signature data)."""
    header = struct.pack("<HHI", version, 2, tee_type) + b"\x00" * 4 + b"\x93" * 16 + b"\x00" * 20
    body = bytearray(584)
    body[0:16] = tee_tcb_svn
    body[136:184] = TDX_MRTD
    body[520:552] = nonce_report_data(nonce)
    return header + bytes(body) + struct.pack("<I", 0)
