"""``python -m medsilo.deploy.supernode_launcher [--poll-interval S] [--warm] -- SUPERNODE-ARGS``.

Runs Flower's ``flower-supernode`` in this process, optionally with a shorter idle poll and
warm ClientApp processes.
The SuperNode asks the SuperLink for work, and when there is none it sleeps a fixed 3 s
(``flwr.supernode.start_client_internal``: ``time.sleep(3)``); every message a coordinator
sends therefore waits up to 3 s before a site even sees it, and a round has at least two
such messages (train, evaluate). ``--poll-interval`` replaces exactly that idle sleep, at the
price of one small HTTPS request per interval per site to the coordinator, and the 0.5 s
between the SuperNode's checks for the ClientApp's reply (a look at its own in-memory state,
no request: every :data:`REPLY_CHECK_S`), leaving every other sleep alone. This is a patch of Flower
internals, checked at start-up: unless the module's source is exactly the pinned one
(:mod:`.flower_contract`, SHA-256 of ``inspect.getsource``) the launcher refuses to patch and
says so (the SuperNode still runs, with Flower's own timing).

``--warm`` runs the SuperNode with ``--isolation process`` and starts, beside it,
:mod:`.warm_superexec` (Flower's SuperExec whose ClientApp processes are forked from one
that imported torch, Flower and medsilo once) on the SuperNode's local Runtime API (the
``--port`` among the SuperNode's arguments, on 127.0.0.1). It dies with this process; if it
stops, this process stops too, so ``medsilo site start`` starts both again.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
import types
from typing import Any

from medsilo.deploy import processes as proc
from medsilo.deploy.flower_contract import POLL_PATCH, contract_problems
from medsilo.deploy.object_pulls import SUPERNODE_PULLS, shorten_first_retry
from medsilo.deploy.warm_superexec import preload_environment

FLOWER_IDLE_SLEEP_S = 3.0
FLOWER_REPLY_WAIT_S = 0.5
#: How often the SuperNode looks for the ClientApp's reply (in its own state, no request).
REPLY_CHECK_S = 0.02


class _PollClock(types.SimpleNamespace):
    """Stands in for the ``time`` module inside ``start_client_internal`` only."""

    def __init__(self, interval_s: float) -> None:
        super().__init__()
        self._interval = interval_s

    def sleep(self, seconds: float) -> None:
        if seconds == FLOWER_IDLE_SLEEP_S:
            seconds = min(seconds, self._interval)
        elif seconds == FLOWER_REPLY_WAIT_S:
            seconds = min(seconds, self._interval, REPLY_CHECK_S)
        time.sleep(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def patch_poll_interval(interval_s: float) -> bool:
    """Shorten the SuperNode's idle poll; ``False`` if Flower's module changed shape."""
    from flwr.supernode import start_client_internal as internal

    problems = contract_problems(POLL_PATCH)
    if getattr(internal, "time", None) is not time:
        problems.append("its `time` global is not the time module")
    if problems:
        print(
            "medsilo: not shortening the SuperNode's poll (" + "; ".join(problems) + "); "
            "running with Flower's own poll interval",
            file=sys.stderr,
        )
        return False
    setattr(internal, "time", _PollClock(interval_s))  # noqa: B010 - patching a module global
    return True


def runtime_port(supernode_args: list[str]) -> int:
    """The SuperNode's Runtime API port among its arguments (``--port N``)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--port", type=int, required=True)
    known, _ = parser.parse_known_args(supernode_args)
    return int(known.port)


def start_warm_superexec(port: int) -> subprocess.Popen[bytes]:
    """:mod:`.warm_superexec` on the SuperNode's Runtime API; if it ever stops, this
    process is sent SIGTERM (the site's supervisor then restarts the pair)."""
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "medsilo.deploy.warm_superexec",
            "--runtime-api-address",
            f"127.0.0.1:{port}",
            "--insecure",  # plain HTTP on loopback, as Flower's own subprocess mode uses
            "--parent-pid",
            str(os.getpid()),
        ],
        preexec_fn=proc.die_with_parent if sys.platform.startswith("linux") else None,
        env=preload_environment(os.environ),
    )

    def watch() -> None:
        code = child.wait()
        print(f"medsilo: the warm SuperExec stopped (exit {code}); stopping", file=sys.stderr)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="medsilo-warm-superexec", daemon=True).start()
    return child


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    rest: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, rest = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(prog="medsilo-supernode")
    parser.add_argument("--poll-interval", type=float, default=None)
    parser.add_argument("--warm", action="store_true")
    args = parser.parse_args(argv)
    if args.poll_interval is not None:
        if args.poll_interval <= 0:
            parser.error("--poll-interval must be positive")
        patch_poll_interval(args.poll_interval)
    problems = shorten_first_retry(SUPERNODE_PULLS)
    if problems:
        print(
            "medsilo: the SuperNode retries object pulls after Flower's 1 s ("
            + "; ".join(problems)
            + ")",
            file=sys.stderr,
        )
    if args.warm:
        start_warm_superexec(runtime_port(rest))
        rest = [*rest, "--isolation", "process"]
    from flwr.supernode.cli import flower_supernode

    sys.argv = ["flower-supernode", *rest]
    flower_supernode()
    return 0


if __name__ == "__main__":
    sys.exit(main())
