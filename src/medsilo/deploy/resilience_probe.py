"""How long a loopback federation takes to get over a coordinator restart and a dead site.

One scenario on a :class:`~medsilo.deploy.loopback.Loopback` (real processes), shared by
``tests/deploy/test_durable_coordinator_loopback.py`` (which checks what happened) and
``medsilo bench deployment`` (which reports the times):

1. the coordinator runs with ``--straggler-timeout S`` and every site is started;
2. once round 1's checkpoint exists the coordinator's whole process group (its SuperLink
   and ServerApp too) is killed with SIGKILL and started again with ``--resume``; the sites
   are left alone. Their SuperNodes, kept registered under the same node ids by the
   SuperLink's database (:mod:`medsilo.deploy.superlink_state`), retry until the port
   answers (Flower's backoff, at most 20 s between tries) and carry on.
   **resume_s**: from the restarted SuperLink accepting connections to every site's
   SuperNode having reconnected (a request that got through after a failed one:
   :func:`reconnected`); **reenrol_s**: from the same moment to the resumed run having
   re-enrolled every site (its ``enrolment.json`` rewritten: this adds ``flwr run``, the
   ServerApp's start and the enrolment exchange);
3. then ``victim``'s site process group (supervisor and SuperNode) is killed with SIGKILL,
   so it dies during the resumed run's first round. **drop_s**: from that kill to the
   coordinator's log saying it dropped the site (with ``S`` this is the straggler timeout
   after the others replied, plus their training, not Flower's minute of heartbeat expiry or
   the round timeout).

Also returned: each surviving site's log written after the coordinator was killed, so a
caller can check that no SuperNode was refused or restarted.
"""

from __future__ import annotations

import re
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from medsilo.deploy.loopback import Loopback, kill, wait_until

#: What Flower's retry logs at a SuperNode when a request gets through after failures.
RECONNECTED = "Connection successful after"
#: What a SuperNode logs for a failed request it will retry.
CONNECTION_FAILED = "Connection attempt failed"
#: Lines a SuperNode logs only after a request got through. Flower does not always log
#: :data:`RECONNECTED`: a site whose retried pull found the killed run stopped logs "Run ID
#: ... is not in `RUNNING` status. Ignoring message" instead, then receives the new run's
#: messages (seen in CI: the probe waited for a line that never came).
GOT_THROUGH = (RECONNECTED, "Ignoring message", "Receiving:")


def reconnected(site_log: str) -> bool:
    """Whether a SuperNode's log (from the coordinator's kill on) shows a request that got
    through after its first failed one."""
    failed = site_log.find(CONNECTION_FAILED)
    return failed >= 0 and any(line in site_log[failed:] for line in GOT_THROUGH)


@dataclass
class ResilienceTimes:
    relisten_s: float  # coordinator restarted -> its SuperLink accepts connections again
    resume_s: float  # SuperLink listening again -> every site's SuperNode reconnected
    reenrol_s: float  # SuperLink listening again -> every site re-enrolled in the resumed run
    drop_s: float  # victim's SuperNode killed -> the coordinator drops it from the round
    straggler_timeout_s: float
    exit_code: int  # the resumed coordinator's
    site_logs_after_restart: dict[str, str] = field(default_factory=dict)


def dropped_pattern(site: str) -> re.Pattern[str]:
    """The coordinator's log line dropping ``site`` from an exchange (``server_app``'s
    "round N (kind): <problem>; treated as dropped")."""
    name = re.escape(repr(site))
    return re.compile(
        rf"(site\(s\) \[[^\]]*{name}[^\]]*\] did not reply|site {name} failed"
        rf"|site {name} is not connected)[^\n]*; treated as dropped"
    )


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _while_running(
    coordinator: subprocess.Popen[bytes], condition: Callable[[], bool], lb: Loopback
) -> Callable[[], bool]:
    """``condition``, failing at once (with the logs) if the coordinator has exited: a resumed
    coordinator that stops early leaves the sites retrying until the wait times out."""

    def check() -> bool:
        if condition():
            return True
        if coordinator.poll() is not None:
            raise AssertionError(
                f"the resumed coordinator exited {coordinator.returncode}:\n{lb.all_logs()}"
            )
        return False

    return check


def restart_and_kill(
    lb: Loopback,
    *,
    victim: str = "va",
    straggler_timeout_s: float = 5.0,
    site_args: tuple[str, ...] = (),
    coordinator_args: tuple[str, ...] = (),
    timeout_s: float = 600.0,
) -> ResilienceTimes:
    """Run the scenario of the module docstring on ``lb`` (at least 2 rounds)."""
    if lb.experiment["training"]["rounds"] < 2:
        raise ValueError("the scenario needs at least 2 rounds (a restart after round 1)")
    straggler = ("--straggler-timeout", str(straggler_timeout_s), *coordinator_args)
    run = lb.root / "run"
    coordinator = lb.start_coordinator("run", *straggler)
    sites = {site: lb.start_site(site, None, *site_args) for site in lb.sites}
    wait_until((run / "checkpoints" / "round-0001.json").exists, timeout_s, "round 1")
    enrolled_at = (run / "enrolment.json").stat().st_mtime_ns
    offsets = {site: len(lb.log(f"site-{site}")) for site in lb.sites}
    kill(coordinator)
    restarted = time.monotonic()
    coordinator = lb.start_coordinator("run", "--resume", *straggler)
    wait_until(
        _while_running(coordinator, lambda: _listening(lb.port), lb),
        timeout_s,
        "the restarted SuperLink",
    )
    listening = time.monotonic()

    def every_site_reconnected() -> bool:
        return all(reconnected(lb.log(f"site-{site}")[offsets[site] :]) for site in lb.sites)

    wait_until(
        _while_running(coordinator, every_site_reconnected, lb),
        timeout_s,
        "every site's SuperNode to reconnect",
    )
    back = time.monotonic()
    wait_until(
        _while_running(
            coordinator, lambda: (run / "enrolment.json").stat().st_mtime_ns != enrolled_at, lb
        ),
        timeout_s,
        "the sites to re-enrol in the resumed run",
    )
    enrolled = time.monotonic()
    log_offset = len(lb.log("coordinator-run"))
    kill(sites[victim])
    killed = time.monotonic()
    pattern = dropped_pattern(victim)
    wait_until(
        _while_running(
            coordinator,
            lambda: pattern.search(lb.log("coordinator-run")[log_offset:]) is not None,
            lb,
        ),
        timeout_s,
        f"the coordinator to drop {victim}",
    )
    dropped = time.monotonic()
    code = lb.wait(coordinator, timeout_s)
    return ResilienceTimes(
        relisten_s=listening - restarted,
        resume_s=back - listening,
        reenrol_s=enrolled - listening,
        drop_s=dropped - killed,
        straggler_timeout_s=straggler_timeout_s,
        exit_code=code,
        site_logs_after_restart={
            site: lb.log(f"site-{site}")[offsets[site] :] for site in lb.sites if site != victim
        },
    )
