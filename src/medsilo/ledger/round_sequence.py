"""The round records of a ledger must leave no round out.

A chain can be intact and still lack a round: the coordinator may have died after saving a
round's checkpoint but before ledgering the round, and a run resumed from that checkpoint
then starts after it. Verification therefore also follows the round numbers:

- inside a run, ``round`` records count up by one, from 1, or from the checkpoint round
  plus 1 when ``run_start`` says ``resumed_after_round``;
- a resumed ``run_start`` that follows an earlier run in the same ledger (a run resumed in
  place) needs that run to have ledgered every round up to the checkpoint round: the
  rounds after it are redone, the rounds up to it are not.

A run resumed into a new ledger (``medsilo unlearn``) has the earlier rounds in the
original run's ledger, which this ledger cannot see; only its own rounds are checked.
"""

from __future__ import annotations

from typing import Any


def _span(first: int, last: int) -> str:
    return f"round {first}" if first == last else f"rounds {first}..{last}"


class RoundSequence:
    """Feed it each verified record in order; :meth:`problem` names a missing round."""

    def __init__(self) -> None:
        self.next_round = 1
        self.previous_run_last: int | None = None  # last round of the run before, if any

    def problem(self, kind: str, payload: dict[str, Any]) -> str | None:
        if kind == "run_start":
            after = payload.get("resumed_after_round")
            start = after if isinstance(after, int) else 0
            last = self.previous_run_last
            self.next_round = start + 1
            if start and last is not None and last < start:
                return (
                    f"{_span(last + 1, start)} missing: this run resumes after round {start}, "
                    f"but the run before it in this ledger recorded rounds only up to {last}"
                )
        elif kind == "round":
            rnd = payload.get("round")
            expected = self.next_round
            if not isinstance(rnd, int) or rnd < expected:
                return f"round {rnd} out of order: round {expected} was expected next"
            if rnd > expected:
                return f"{_span(expected, rnd - 1)} missing: round {rnd} follows {expected - 1}"
            self.next_round = rnd + 1
        elif kind == "run_end":
            self.previous_run_last = self.next_round - 1
        return None
