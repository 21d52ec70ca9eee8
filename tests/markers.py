"""Markers shared by test modules."""

from __future__ import annotations

import pytest

#: Tests that start a federation's own processes (a SuperLink and SuperNodes, a Ray cluster,
#: a Docker daemon). ``scripts/test.sh`` runs the suite on two pytest-xdist workers with
#: ``--dist loadgroup``, which keeps every test of this group on one worker, one after
#: another: two such federations at once would double the load their straggler deadlines
#: and reconnect waits are measured under, and two Ray clusters would share a session folder.
FEDERATION_PROCESSES = pytest.mark.xdist_group("federation-processes")
