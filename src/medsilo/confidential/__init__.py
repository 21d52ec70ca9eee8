"""Confidential computing: platform records, the TEE vulnerability registry, leakage risk."""
