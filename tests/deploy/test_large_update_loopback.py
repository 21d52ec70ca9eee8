"""A deployed secure-aggregation round with a 5-million-parameter model on 127.0.0.1.

Slow (a few minutes on the shared CI cores, most of it the processes' start-up): the
heart-disease MLP with ``hidden: 2240`` (5,053,441 parameters, 20 MB of float32, several of
Flower 1.42's 5 MiB array chunks) is broadcast to three real SuperNodes through a real
SuperLink, each site trains one step and sends its 20 MB masked input as one ``bytes``
value, and the coordinator unmasks the sum of all three. CI uses this size to stay within
its time; ``medsilo bench large --params 25M`` runs the 25M round (docs/scale.md, "Large
updates"). Before the sites kept their protocol state in a file, sites of such a round were
dropped: Flower stored the large ``context.state`` after the next phase's message had arrived
(at 5M one site of three, at 25M all three).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medsilo.deploy.loopback import Loopback, heart_experiment

from ..markers import FEDERATION_PROCESSES

pytestmark = [pytest.mark.slow, FEDERATION_PROCESSES]

HIDDEN = 2240
PARAMETERS = 5_000_000  # a lower bound of the MLP's size with this hidden width


def test_a_5m_parameter_round_completes_deployed(tmp_path: Path) -> None:
    experiment = heart_experiment(1, local_steps=1, batch_size=8) | {
        "model": {"name": "mlp", "kwargs": {"hidden": HIDDEN}},
        "secure_aggregation": {"enabled": True},
    }
    lb = Loopback(tmp_path, experiment)
    try:
        coordinator = lb.start_coordinator(round_timeout=900)
        for site in lb.sites:
            lb.start_site(site)
        assert lb.wait(coordinator, 1500) == 0, lb.all_logs()  # a ceiling: shared CI cores
    finally:
        lb.stop_all()
    (record,) = lb.rounds()
    assert not record.skipped and record.sites == lb.sites and not record.dropped
    assert record.secure_aggregation is not None
    assert record.secure_aggregation["survivors"] == lb.sites  # nobody dropped
    assert record.bytes_up_site and min(record.bytes_up_site.values()) > 4 * PARAMETERS
    with np.load(tmp_path / "run" / "final_weights.npz") as npz:
        assert sum(npz[k].size for k in npz.files) > PARAMETERS
