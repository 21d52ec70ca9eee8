"""Pluggable clinical metrics with mergeable states (docs/metrics.md).

Sites reduce predictions to small additive states; the coordinator merges them and reads
pooled, per-site, leave-one-hospital-out and per-subgroup values without seeing a single
prediction. Entry points: :class:`medsilo.metrics.suite.MetricSuite` and
:func:`medsilo.metrics.evaluation.evaluate_states`.
"""
