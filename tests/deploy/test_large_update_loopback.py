"""A deployed secure-aggregation round with a 25-million-parameter model on 127.0.0.1.

Slow (about 4 to 6 minutes on the shared CI cores, most of it the processes' start-up): the
heart-disease MLP with ``hidden: 5000`` (25,080,001 parameters, 100 MB of float32) is
broadcast to three real SuperNodes through a real SuperLink (Flower 1.42 sends arrays in
5 MiB chunks), each site trains one step and sends its 100 MB masked input as one
``bytes`` value (one object, under gRPC's 2 GiB limit), and the coordinator unmasks the sum
of all three. Before the sites kept their protocol state in a file, every site of this
round was dropped: Flower stored the 100 MB ``context.state`` after the next phase's message
had arrived (docs/scale.md, "Large updates").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medsilo.deploy.loopback import Loopback, heart_experiment

pytestmark = pytest.mark.slow

HIDDEN = 5000


def test_a_25m_parameter_round_completes_deployed(tmp_path: Path) -> None:
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
    assert record.bytes_up_site and min(record.bytes_up_site.values()) > 4 * 25_000_000
    with np.load(tmp_path / "run" / "final_weights.npz") as npz:
        assert sum(npz[k].size for k in npz.files) > 25_000_000
