"""A deployed site keeps secure aggregation's protocol state in a file, not the context.

Flower pushes a ClientApp's reply before its ``context.state``; with a 100 MB encoded input
the next phase arrived first and the site answered it from stale state (seen on loopback
with a 25M-parameter model: every site dropped). The file is written before the reply.
"""

from __future__ import annotations

import stat
from pathlib import Path

import numpy as np
from flwr.app import ConfigRecord, RecordDict

from medsilo.runtime.flower.secure_site import (
    STATE_FILE,
    STATE_KEY,
    keep_protocol_state,
    protocol_state,
)
from medsilo.secure.protocol import SecAggParams
from medsilo.secure.site import SecAggSite


def _snapshot_record() -> ConfigRecord:
    params = SecAggParams(2, 32, 1000, b"run/1", 0, 3)
    site = SecAggSite(1, np.arange(1000, dtype=np.uint32), params)
    site.advertise()
    snap = {k: v for k, v in site.snapshot().items() if v != []}
    return ConfigRecord({"round": 1, **snap})  # type: ignore[arg-type]


def test_the_state_round_trips_through_an_owner_only_file(tmp_path: Path) -> None:
    context_state = RecordDict()
    state = protocol_state(context_state, tmp_path)
    assert STATE_KEY not in state.config_records  # nothing stored yet
    state.config_records[STATE_KEY] = record = _snapshot_record()
    keep_protocol_state(state, tmp_path)
    path = tmp_path / STATE_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = protocol_state(RecordDict(), tmp_path).config_records[STATE_KEY]
    assert dict(again) == dict(record)
    assert STATE_KEY not in context_state.config_records  # the context carries none of it
    del state.config_records[STATE_KEY]
    keep_protocol_state(state, tmp_path)  # after unmask: the secrets are gone
    assert not path.exists()


def test_without_a_directory_the_context_state_is_used() -> None:
    context_state = RecordDict()
    assert protocol_state(context_state, None) is context_state
    keep_protocol_state(context_state, None)  # a no-op
