"""The built-in metrics, one per module; :mod:`medsilo.metrics.registry` finds every
:class:`~medsilo.metrics.base.Metric` defined here, so adding a metric is adding a file."""
