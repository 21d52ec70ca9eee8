"""Experiment tracking: a run also logged to an outside tracker (MLflow; docs/tracking.md).

:func:`medsilo.tracking.sinks.start_tracking` is called by
:func:`medsilo.experiment.run_experiment` next to the run directory's own files; the
directory stays the record of the run, a tracker only mirrors it, so a tracker that fails
is dropped with a warning and never stops the run. This package imports no tracker at
import time (MLflow takes about a second to import): only a run that is tracked pays it.
"""
