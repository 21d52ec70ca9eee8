"""``medsilo site start KIT --data PATH``: a hospital's SuperNode, dialling out only.

The command supervises ``flower-supernode`` (:func:`run_site`) started with the kit's files:

* ``--superlink`` from ``coordinator.txt``, ``--root-certificates ca.crt`` (the coordinator
  must present a certificate of the federation's CA), ``--auth-supernode-private-key
  node.key`` (the coordinator admits only registered keys);
* ``--node-config 'site="NAME" kit="KIT" data="PATH"'``: the deployed ClientApp
  (:mod:`medsilo.runtime.flower.deployed_site`) reads its data, its attestation key and keeps
  its per-round state through these;
* ``--port``: the SuperNode's local Runtime API, bound to 127.0.0.1 (a free port unless
  given, so several sites can share a test machine); nothing listens on other interfaces;
* ``--proxy``: the hospital's forward proxy, in the SuperNode's environment
  (:mod:`medsilo.deploy.site_proxy`).

A SuperNode whose key the coordinator has not registered *yet* (the coordinator registers
every site's key when it starts, so a site started first races it) stops with Flower's exit
code 305 ("failed to activate SuperNode"), and one whose coordinator came back without its
SuperLink database (a new run folder) stops after a 401 on its heartbeat (the new SuperLink
has registered the key under a new node). A coordinator resumed in the same run folder keeps
the node registered (:mod:`medsilo.deploy.superlink_state`): the SuperNode only reconnects.
The supervisor (:func:`run_site`) says which and starts it again after a growing pause, so
sites may start before or after the coordinator and survive its restarts; an unregistered
key keeps being refused, loudly, until the site is stopped.

``--insecure`` drops TLS and node authentication: anyone on the path can read and alter the
model updates and any process can join as a site. It exists for debugging on one machine
and prints a warning saying so.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from medsilo.config import ConfigError
from medsilo.deploy import processes as proc
from medsilo.deploy.kit_files import load_site_identity
from medsilo.deploy.site_proxy import parse_proxy

SUPEREXEC_DEFAULT_POLL_S = 1.0
INSECURE_WARNING = (
    "WARNING: --insecure: no TLS and no site authentication. Model updates travel in clear "
    "text and the coordinator cannot tell this site from an impostor. Never use this with "
    "patient data or outside one test machine."
)


@dataclass(frozen=True)
class SiteLaunch:
    argv: list[str]
    env: dict[str, str]
    site: str
    coordinator: str
    proxy: str | None = None  # the forward proxy as printed (no credentials), if any


def _quote(value: str) -> str:
    """A TOML string Flower's ``--node-config`` parser reads back as ``value``.

    That parser splits ``key="..."`` / ``key='...'`` pairs with a regular expression that
    knows no escaped quote, so a value holding ``"`` becomes a literal string ``'...'``
    (no escapes at all) and one holding both quote characters is refused."""
    if '"' not in value:
        return '"' + value.replace("\\", "\\\\") + '"'
    if "'" not in value:
        return "'" + value + "'"
    raise ConfigError(
        f"{value!r} holds both ' and \": Flower's --node-config cannot carry it; rename it"
    )


def site_launch(
    kit: Path,
    data: Path | None,
    *,
    insecure: bool = False,
    poll_interval_s: float | None = 0.2,
    runtime_port: int | None = None,
    platform: str | None = None,
    tcb_version: str | None = None,
    warm: bool = True,
    proxy: str | None = None,
) -> SiteLaunch:
    """The command line and environment of this site's SuperNode (nothing started)."""
    forward = parse_proxy(proxy) if proxy is not None else None
    if forward is not None and insecure:
        raise ConfigError(
            "--proxy with --insecure: without TLS the proxy would read and could alter the "
            "model updates; use one or the other"
        )
    kit = kit.resolve()
    identity = load_site_identity(kit)
    node_config = {"site": identity.name, "kit": str(kit)}
    if data is not None:
        data = data.expanduser().resolve()
        if not data.exists():
            raise FileNotFoundError(f"--data {data} does not exist")
        node_config["data"] = str(data)
    if platform:
        node_config["platform"] = platform
    if tcb_version:
        node_config["tcb-version"] = tcb_version
    security = (
        ["--insecure"]
        if insecure
        else [
            "--root-certificates",
            str(identity.ca_certificate),
            "--auth-supernode-private-key",
            str(identity.node_key),
        ]
    )
    launcher = [sys.executable, "-m", "medsilo.deploy.supernode_launcher"]
    if warm:  # ClientApp processes forked already imported (deploy/warm_superexec.py)
        launcher.append("--warm")
    if poll_interval_s is not None:
        launcher += ["--poll-interval", str(poll_interval_s)]
    argv = [
        *launcher,
        "--",
        "--superlink",
        identity.coordinator,
        *security,
        "--node-config",
        " ".join(f"{k}={_quote(v)}" for k, v in node_config.items()),
        "--port",
        str(runtime_port if runtime_port is not None else proc.free_port()),
    ]
    # The SuperNode's SuperExec looks for a ClientApp to start every second (Flower's
    # default, FLWR_SUPEREXEC_TASK_POLL_INTERVAL); a shorter site poll shortens that too.
    extra = {}
    if poll_interval_s is not None and poll_interval_s < SUPEREXEC_DEFAULT_POLL_S:
        extra["FLWR_SUPEREXEC_TASK_POLL_INTERVAL"] = str(max(poll_interval_s, 0.01))
    env = proc.flower_env(kit / "flower-home", extra)
    if forward is not None:
        env = forward.environment(env)
    shown = forward.shown if forward is not None else None
    return SiteLaunch(argv, env, identity.name, identity.coordinator, shown)


#: What Flower 1.41 and 1.42 print when the SuperLink refuses the node: at start-up, "failed to
#: activate" (its key is not registered, or not yet); later, 401 on the heartbeat (a
#: restarted coordinator that has not re-registered it yet, after which the SuperNode stops
#: itself). Its exit status is 1 or 0 either way, so the supervisor reads the output.
ACTIVATION_REFUSED = "Exit Code: 305"
UNAUTHORIZED = "401 Unauthorized"
REFUSALS = (ACTIVATION_REFUSED, UNAUTHORIZED)
#: The SuperNode's own runtime API, which its ClientApps call. A 401 there is not the
#: coordinator's: it answers a ClientApp whose task was stopped (a message of a run the
#: restarted coordinator stopped, say), and the SuperNode carries on.
LOCAL_RUNTIME_URL = "/v1/runtime/"


def refusals(output: str) -> list[str]:
    """The coordinator's refusals of this node in SuperNode ``output``, one per line."""
    return [
        marker
        for line in output.splitlines()
        for marker in REFUSALS
        if marker in line and LOCAL_RUNTIME_URL not in line
    ]


def _echo(stream: IO[bytes], seen: list[str]) -> None:
    """Copy the SuperNode's output to ours, noting an activation refusal."""
    for raw in iter(stream.readline, b""):
        sys.stdout.buffer.write(raw)
        sys.stdout.flush()
        seen += refusals(raw.decode(errors="replace"))


def run_site(
    launch: SiteLaunch,
    *,
    say: Callable[[str], None] = print,
    max_pause_s: float = 30.0,
    max_attempts: int | None = None,
    max_quick_failures: int = 5,
    initial_pause_s: float = 2.0,
) -> int:
    """Keep the SuperNode running until the operator stops it.

    A SuperNode the coordinator refuses (key not registered, or not yet) or that exits
    after losing the coordinator is started again after a growing pause (``initial_pause_s``,
    doubling, at most ``max_pause_s``); a long-running one resets the pause. Any other
    failure within 10 s of starting, ``max_quick_failures`` times in a row (a broken kit,
    say), ends the supervision with the SuperNode's exit code. Returns 0 after SIGTERM/SIGINT,
    which are passed on to the SuperNode.
    """
    pause, attempts, quick = initial_pause_s, 0, 0
    stopping = False
    child: subprocess.Popen[bytes] | None = None

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while True:
            attempts += 1
            child = subprocess.Popen(
                launch.argv,
                env=launch.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                preexec_fn=proc.die_with_parent if sys.platform.startswith("linux") else None,
            )
            assert child.stdout is not None
            refused: list[str] = []
            reader = threading.Thread(target=_echo, args=(child.stdout, refused), daemon=True)
            reader.start()
            started = time.monotonic()
            code = child.wait()
            uptime = time.monotonic() - started
            reader.join(5)
            if stopping:
                return 0
            if uptime > 60:
                pause = initial_pause_s  # it was up for a while: a fresh problem, not a loop
            quick = quick + 1 if uptime < 10 and not refused else 0
            if quick >= max_quick_failures or (
                max_attempts is not None and attempts >= max_attempts
            ):
                return code
            if refused:
                why = (
                    "the coordinator refused this site's node key (not registered, or not yet: "
                    "it registers every provisioned site when it starts, so a site that starts "
                    "first or outlives a coordinator restart sees this briefly). If it persists, "
                    "check that this kit's node.pub is the one registered at the coordinator"
                )
            else:
                why = f"the SuperNode exited with code {code} (coordinator gone?)"
            if launch.proxy:  # a proxy refusing the tunnel looks the same to Flower
                why += f"; or the proxy {launch.proxy} refused the tunnel to that port"
            say(f"site {launch.site} ({launch.coordinator}): {why}; restarting in {pause:.0f}s")
            deadline = time.monotonic() + pause
            while time.monotonic() < deadline and not stopping:
                time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
            if stopping:
                return 0
            pause = min(pause * 2, max_pause_s)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
