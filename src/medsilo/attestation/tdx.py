"""Intel TDX DCAP quote (version 4) parser and verifier (chain check supplied by deployment).

Layout (Intel TDX DCAP Quote Generation Library and Quote Verification Library, quote v4;
little-endian). Header, 48 bytes:

    0 version u16 (4)   2 attestation key type u16 (2 = ECDSA-256-with-P-256)
    4 TEE type u32 (0x81 = TDX)   8 reserved 4 B   12 QE vendor id 16 B   28 user data 20 B

TD quote body (TD report, 584 bytes) at offset 48, offsets relative to the body:

    0 TEE_TCB_SVN 16 B  16 MRSEAM 48 B   64 MRSIGNERSEAM 48 B  112 SEAMATTRIBUTES 8 B
    120 TDATTRIBUTES 8 B  128 XFAM 8 B   136 MRTD 48 B   184 MRCONFIGID 48 B
    232 MROWNER 48 B  280 MROWNERCONFIG 48 B  328 RTMR0-3 4 x 48 B  520 REPORTDATA 64 B

then the signature data length u32 at 632 and the ECDSA signature data (quote signature,
attestation key, QE report and PCK certification data), which the chain check consumes.
The recorded TCB version is TEE_TCB_SVN as 16 dot-separated byte values.
"""

from __future__ import annotations

import struct

from medsilo.attestation.errors import AttestationError
from medsilo.attestation.hardware import HardwareVerifier, ParsedReport

HEADER_SIZE = 48
BODY_SIZE = 584
TEE_TYPE_TDX = 0x81


def parse_tdx_quote(raw: bytes) -> ParsedReport:
    if len(raw) < HEADER_SIZE + BODY_SIZE:
        raise AttestationError(
            f"TDX quote is {len(raw)} bytes, header + TD quote body need {HEADER_SIZE + BODY_SIZE}"
        )
    version, key_type, tee_type = struct.unpack_from("<HHI", raw, 0)
    if version != 4:
        raise AttestationError(f"TDX quote version {version} is not supported (need 4)")
    if tee_type != TEE_TYPE_TDX:
        raise AttestationError(f"quote TEE type {tee_type:#x} is not TDX ({TEE_TYPE_TDX:#x})")
    body = raw[HEADER_SIZE : HEADER_SIZE + BODY_SIZE]
    tee_tcb_svn = body[0:16]
    return ParsedReport(
        tcb_version=".".join(str(b) for b in tee_tcb_svn),
        measurement=body[136:184].hex(),
        report_data=body[520:584],
        fields={
            "quote_version": version,
            "attestation_key_type": key_type,
            "tee_type": tee_type,
            "qe_vendor_id": raw[12:28].hex(),
            "tee_tcb_svn": tee_tcb_svn.hex(),
            "mrseam": body[16:64].hex(),
            "td_attributes": body[120:128].hex(),
            "mrtd": body[136:184].hex(),
        },
    )


class TdxVerifier(HardwareVerifier):
    backend = "tdx"
    chain = "PCK certificate chain to the Intel SGX root CA, TCB info and QE identity"

    def parse(self, raw: bytes) -> ParsedReport:
        return parse_tdx_quote(raw)
