"""Attestation-gated enrolment: sites present platform evidence, the coordinator's policy
admits or rejects them and records the platform/TCB that drive CC-PGD's exploit indicator.

Modules: :mod:`.evidence` (what a site sends), :mod:`.verifier` (the verifier contract),
:mod:`.software` (Ed25519 software backend, no hardware root of trust), :mod:`.sev_snp` and
:mod:`.tdx` (hardware report parsers; chain verification must be supplied),
:mod:`.nonces` (replay protection), :mod:`.tcb` (TCB versions vs. the vulnerability
registry), :mod:`.policy` (the enrolment decision), :mod:`.registry_update` (updating the
registry), :mod:`.command` (CLI). See docs/attestation.md.
"""
