"""``intra_op_threads``: pinned inside, restored after, even when the work fails."""

from __future__ import annotations

import pytest
import torch

from medsilo.training.threads import intra_op_threads


def test_threads_are_pinned_inside_and_restored_after_even_on_failure() -> None:
    before = torch.get_num_threads()
    other = 2 if before != 2 else 1
    with intra_op_threads(other):
        assert torch.get_num_threads() == other
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError, match="boom"), intra_op_threads(other):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before
    with intra_op_threads(None):  # None: left as it is
        assert torch.get_num_threads() == before
