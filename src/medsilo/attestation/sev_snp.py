"""AMD SEV-SNP ATTESTATION_REPORT parser and verifier (chain check supplied by deployment).

Offsets (AMD SEV-SNP Firmware ABI specification, table "ATTESTATION_REPORT Structure";
little-endian; report is 0x4A0 = 1184 bytes, the signature at 0x2A0 covers 0x000-0x29F):

    0x000 VERSION u32        0x004 GUEST_SVN u32      0x008 POLICY u64
    0x030 VMPL u32           0x034 SIGNATURE_ALGO u32 0x038 CURRENT_TCB u64
    0x050 REPORT_DATA 64 B   0x090 MEASUREMENT 48 B   0x180 REPORTED_TCB u64
    0x1A0 CHIP_ID 64 B       0x2A0 SIGNATURE 512 B

TCB_VERSION (Milan/Genoa layout): byte 0 BOOT_LOADER SVN, byte 1 TEE SVN, bytes 2-5
reserved, byte 6 SNP SVN, byte 7 MICROCODE SVN. The recorded TCB version is REPORTED_TCB as
``"bootloader.tee.snp.microcode"`` (e.g. ``"3.0.8.115"``), the string the vulnerability
registry's ``fixed_tcb`` for ``sev-snp`` is compared with. (Turin's TCB layout adds an FMC
SVN and moves fields; not handled here.)
"""

from __future__ import annotations

import struct

from medsilo.attestation.errors import AttestationError
from medsilo.attestation.hardware import HardwareVerifier, ParsedReport

REPORT_SIZE = 0x4A0


def tcb_fields(raw_tcb: int) -> dict[str, int]:
    b = raw_tcb.to_bytes(8, "little")
    return {"bootloader": b[0], "tee": b[1], "snp": b[6], "microcode": b[7]}


def tcb_string(raw_tcb: int) -> str:
    f = tcb_fields(raw_tcb)
    return f"{f['bootloader']}.{f['tee']}.{f['snp']}.{f['microcode']}"


def parse_snp_report(raw: bytes) -> ParsedReport:
    if len(raw) < REPORT_SIZE:
        raise AttestationError(
            f"SEV-SNP report is {len(raw)} bytes, ATTESTATION_REPORT needs {REPORT_SIZE}"
        )
    version, guest_svn, policy = struct.unpack_from("<IIQ", raw, 0x000)
    vmpl, sig_algo, current_tcb = struct.unpack_from("<IIQ", raw, 0x030)
    (reported_tcb,) = struct.unpack_from("<Q", raw, 0x180)
    if version < 2:
        raise AttestationError(f"SEV-SNP report version {version} is not supported (need >= 2)")
    return ParsedReport(
        tcb_version=tcb_string(reported_tcb),
        measurement=raw[0x090:0x0C0].hex(),
        report_data=raw[0x050:0x090],
        fields={
            "report_version": version,
            "guest_svn": guest_svn,
            "policy": policy,
            "vmpl": vmpl,
            "signature_algo": sig_algo,
            "current_tcb": tcb_fields(current_tcb),
            "reported_tcb": tcb_fields(reported_tcb),
            "chip_id": raw[0x1A0:0x1E0].hex(),
        },
    )


class SevSnpVerifier(HardwareVerifier):
    backend = "sev-snp"
    chain = "VCEK -> ASK -> ARK"

    def parse(self, raw: bytes) -> ParsedReport:
        return parse_snp_report(raw)
