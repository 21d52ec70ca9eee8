"""A deployed round with a 25-million-parameter model (100 MB of float32) on 127.0.0.1.

Slow (about 3 to 5 minutes on the shared CI cores, most of it the processes' start-up): the
heart-disease MLP with ``hidden: 5000`` (25,015,002 parameters) is broadcast to three real
SuperNodes through a real SuperLink, trained for one step, and each site's whole update
(100 MB) comes back: Flower 1.42 splits arrays into 5 MiB chunks
(``FLWR_PRIVATE_MAX_ARRAY_CHUNK_SIZE``), so no single gRPC message nears its 2 GiB limit.

Secure aggregation is not run here at this size: its site keeps the encoded input in the
node's ``context.state``, which Flower stores after the reply has gone out, and with a
100 MB state the next phase's message arrives before it (docs/scale.md, "Large updates").
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
        "model": {"name": "mlp", "kwargs": {"hidden": HIDDEN}}
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
    # every site's update travelled whole (the wire format sends exact zeros as a bitmap)
    assert record.bytes_up_site and min(record.bytes_up_site.values()) > 25_000_000
    with np.load(tmp_path / "run" / "final_weights.npz") as npz:
        assert sum(npz[k].size for k in npz.files) > 25_000_000
