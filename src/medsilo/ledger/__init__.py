"""Tamper-evident audit ledger: append-only, hash-chained, Ed25519-signed records in SQLite.

What a blockchain coordinator would give a federation (tamper-evidence, provenance,
transparency), without one: the coordinator appends one signed record per run start, round,
run end, site enrolment and attestation, and anyone holding a copy of the ledger and the
coordinator's public key can check the whole chain (``medsilo audit verify``). Format,
threat model and limits: docs/audit-ledger.md.

Modules: :mod:`~medsilo.ledger.canonical` (payload bytes), :mod:`~medsilo.ledger.chain`
(record hash), :mod:`~medsilo.ledger.keys` (coordinator key), :mod:`~medsilo.ledger.store`
(SQLite, append), :mod:`~medsilo.ledger.verify` (chain check), :mod:`~medsilo.ledger.events`
(typed record payloads), :mod:`~medsilo.ledger.digest` (model and config hashes),
:mod:`~medsilo.ledger.run_ledger` (a run directory's ledger), :mod:`~medsilo.ledger.command`
(CLI). This file imports nothing so that the runtimes can import the digest cheaply.
"""
