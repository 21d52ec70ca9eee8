"""SEV-SNP and TDX parsers read the documented offsets of synthetic reports; the verifiers
refuse without a chain check and enforce nonce binding and measurement with one."""

from __future__ import annotations

import pytest

from medsilo.attestation.errors import AttestationError
from medsilo.attestation.evidence import Evidence
from medsilo.attestation.hardware import ParsedReport
from medsilo.attestation.nonces import NonceBook
from medsilo.attestation.policy import enrol
from medsilo.attestation.sev_snp import SevSnpVerifier, parse_snp_report
from medsilo.attestation.software import SoftwareVerifier
from medsilo.attestation.tdx import TdxVerifier, parse_tdx_quote
from medsilo.attestation.verifier import Verifier

from .helpers import (
    REGISTRY,
    SNP_MEASUREMENT,
    TDX_MRTD,
    snp_report,
    software_policy,
    tdx_quote,
)

NONCE = "ab" * 32
SVN = bytes([3, 1] + [0] * 14)


def _trusting(raw: bytes, parsed: ParsedReport) -> None:
    """A stand-in chain check that accepts everything (the deployment supplies a real one)."""


def _snp_evidence(raw: bytes, measurement: bytes = SNP_MEASUREMENT) -> Evidence:
    return Evidence(
        site="hungary",
        backend="sev-snp",
        platform="sev-snp",
        measurement=measurement.hex(),
        nonce=NONCE,
        timestamp="2026-01-01T00:00:00+00:00",
        report=raw.hex(),
    )


def test_snp_parser_reads_documented_fields() -> None:
    parsed = parse_snp_report(snp_report(NONCE, (3, 0, 8, 115), version=3))
    assert parsed.tcb_version == "3.0.8.115"
    assert parsed.measurement == SNP_MEASUREMENT.hex()
    assert parsed.fields["report_version"] == 3
    assert parsed.fields["guest_svn"] == 7
    assert parsed.fields["reported_tcb"] == {"bootloader": 3, "tee": 0, "snp": 8, "microcode": 115}
    assert parsed.fields["chip_id"] == "ab" * 64


def test_snp_parser_refuses_short_or_old_reports() -> None:
    with pytest.raises(AttestationError, match="needs 1184"):
        parse_snp_report(b"\x00" * 100)
    with pytest.raises(AttestationError, match="version 1"):
        parse_snp_report(snp_report(NONCE, (3, 0, 8, 115), version=1))


def test_tdx_parser_reads_documented_fields() -> None:
    parsed = parse_tdx_quote(tdx_quote(NONCE, SVN))
    assert parsed.tcb_version == "3.1." + ".".join(["0"] * 14)
    assert parsed.measurement == TDX_MRTD.hex()
    assert parsed.fields["quote_version"] == 4
    assert parsed.fields["tee_type"] == 0x81
    assert parsed.fields["qe_vendor_id"] == "93" * 16
    with pytest.raises(AttestationError, match="version 3"):
        parse_tdx_quote(tdx_quote(NONCE, SVN, version=3))
    with pytest.raises(AttestationError, match="not TDX"):
        parse_tdx_quote(tdx_quote(NONCE, SVN, tee_type=0))


def test_hardware_verifiers_refuse_without_a_chain_check() -> None:
    evidence = _snp_evidence(snp_report(NONCE, (3, 0, 8, 115)))
    with pytest.raises(AttestationError, match="hardware chain verification not available"):
        SevSnpVerifier().verify(evidence, NONCE, {})
    tdx = evidence.model_copy(
        update={"backend": "tdx", "platform": "tdx", "report": tdx_quote(NONCE, SVN).hex()}
    )
    with pytest.raises(AttestationError, match="hardware chain verification not available"):
        TdxVerifier().verify(tdx, NONCE, {})


def test_default_policy_rejects_hardware_evidence_offline() -> None:
    book = NonceBook()
    book.expect("hungary", NONCE)
    d = enrol(_snp_evidence(snp_report(NONCE, (3, 0, 8, 115))), software_policy(), book, {})
    assert not d.accepted
    assert "chain verification not available" in d.reason


def test_chain_check_failure_is_a_rejection() -> None:
    def failing(raw: bytes, parsed: ParsedReport) -> None:
        raise AttestationError("VCEK signature invalid")

    with pytest.raises(AttestationError, match="VCEK"):
        SevSnpVerifier(failing).verify(_snp_evidence(snp_report(NONCE, (3, 0, 8, 115))), NONCE, {})


def test_with_chain_check_nonce_and_measurement_are_enforced() -> None:
    v = SevSnpVerifier(_trusting)
    with pytest.raises(AttestationError, match="report_data does not bind"):
        v.verify(_snp_evidence(snp_report("cd" * 32, (3, 0, 8, 115))), NONCE, {})
    with pytest.raises(AttestationError, match="differs from the report"):
        v.verify(_snp_evidence(snp_report(NONCE, (3, 0, 8, 115)), TDX_MRTD), NONCE, {})
    ok = v.verify(_snp_evidence(snp_report(NONCE, (3, 0, 8, 115))), NONCE, {})
    assert ok.hardware_rooted and ok.tcb_version == "3.0.8.115"


def test_attested_snp_tcb_drives_indicator() -> None:
    verifiers: dict[str, Verifier] = {
        "software": SoftwareVerifier(),
        "sev-snp": SevSnpVerifier(_trusting),
        "tdx": TdxVerifier(_trusting),
    }
    for tcb, indicator in (((3, 0, 8, 93), 1), ((9, 0, 9, 200), 0)):
        book = NonceBook()
        book.expect("hungary", NONCE)
        evidence = _snp_evidence(snp_report(NONCE, tcb))
        policy = software_policy(exploitable_tcb="flag")
        d = enrol(evidence, policy, book, {}, verifiers=verifiers, registry=REGISTRY)
        assert d.accepted, d.reason
        assert d.platform == "sev-snp" and d.exploit_indicator == indicator
        assert d.tcb_version == ".".join(map(str, tcb))


def test_malformed_report_hex_is_a_rejection_not_a_crash() -> None:
    evidence = _snp_evidence(b"").model_copy(update={"report": "abc"})
    with pytest.raises(AttestationError, match="not valid hex"):
        SevSnpVerifier(_trusting).verify(evidence, NONCE, {})
