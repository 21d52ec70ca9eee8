"""Benchmarks that print side-by-side measurements (``medsilo bench ...``)."""
