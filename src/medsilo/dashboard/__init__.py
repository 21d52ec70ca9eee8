"""Live dashboard of a running federation (``medsilo dashboard RUN``; docs/dashboard.md).

:mod:`~medsilo.dashboard.reader` tails the run directory, :mod:`~medsilo.dashboard.release`
adds differential-privacy noise to each site's health, :mod:`~medsilo.dashboard.drift` raises
alerts when a site moves away from its own history, :mod:`~medsilo.dashboard.state` puts them
together and :mod:`~medsilo.dashboard.app` serves the page and ``/api/state``.
"""
