"""``python -m medsilo.deploy.supernode_launcher [--poll-interval S] -- FLOWER-SUPERNODE-ARGS``.

Runs Flower 1.41's ``flower-supernode`` in this process, optionally with a shorter idle poll.
The SuperNode asks the SuperLink for work, and when there is none it sleeps a fixed 3 s
(``flwr.supernode.start_client_internal``: ``time.sleep(3)``); every message a coordinator
sends therefore waits up to 3 s before a site even sees it, and a round has at least two
such messages (train, evaluate). ``--poll-interval`` replaces exactly that idle sleep (and
the 0.5 s wait for a reply to push), leaving every other sleep alone, at the price of one
small HTTPS request per interval per site to the coordinator. This is a patch of Flower
internals, checked at start-up: if the module no longer has that shape the launcher refuses
to patch and says so (the SuperNode still runs, with Flower's own timing).
"""

from __future__ import annotations

import argparse
import sys
import time
import types
from typing import Any

FLOWER_IDLE_SLEEP_S = 3.0
FLOWER_REPLY_WAIT_S = 0.5


class _PollClock(types.SimpleNamespace):
    """Stands in for the ``time`` module inside ``start_client_internal`` only."""

    def __init__(self, interval_s: float) -> None:
        super().__init__()
        self._interval = interval_s

    def sleep(self, seconds: float) -> None:
        if seconds in (FLOWER_IDLE_SLEEP_S, FLOWER_REPLY_WAIT_S):
            seconds = min(seconds, self._interval)
        time.sleep(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def patch_poll_interval(interval_s: float) -> bool:
    """Shorten the SuperNode's idle poll; ``False`` if Flower's module changed shape."""
    from flwr.supernode import start_client_internal as internal

    if getattr(internal, "time", None) is not time:
        print(
            "medsilo: flwr.supernode.start_client_internal no longer imports `time` as "
            "expected; running with Flower's own poll interval",
            file=sys.stderr,
        )
        return False
    setattr(internal, "time", _PollClock(interval_s))  # noqa: B010 - patching a module global
    return True


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    rest: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, rest = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(prog="medsilo-supernode")
    parser.add_argument("--poll-interval", type=float, default=None)
    args = parser.parse_args(argv)
    if args.poll_interval is not None:
        if args.poll_interval <= 0:
            parser.error("--poll-interval must be positive")
        patch_poll_interval(args.poll_interval)
    from flwr.supernode.cli import flower_supernode

    sys.argv = ["flower-supernode", *rest]
    flower_supernode()
    return 0


if __name__ == "__main__":
    sys.exit(main())
