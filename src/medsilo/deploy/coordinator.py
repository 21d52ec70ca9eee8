"""``medsilo coordinator start KIT --config EXP.yaml --out RUN``: one deployed run, end to end.

What it does, in order (each Flower process logs to ``RUN/flower/*.log``):

0. with a kit provisioned with a council (and not ``--resume``), check that the council
   approved a ``start_run`` of this config (docs/governance.md, "Quorum decisions"): refused
   before any Flower process starts, and nothing is written. The proposal is *not* consumed
   here: starting the SuperLink, registering the sites, starting the ServerApp (its own
   checks of the config, the run folder, anchoring) and waiting for the sites to connect
   can all fail before the run really begins. The ServerApp consumes it once the sites have
   connected, right before it sends them the decision with the enrolment request
   (``enrol_sites`` in :mod:`medsilo.runtime.flower.deployed_server`); a failure before
   that point leaves the approval for the next attempt;
1. start ``flower-superlink`` with the kit's TLS certificate and key and SuperNode
   authentication on (``--insecure`` turns both off, with a loud warning), its state in
   ``RUN/flower/superlink.db`` (:mod:`medsilo.deploy.superlink_state`), so that a
   restarted coordinator (``--resume``) keeps every site's registration and node id and
   the running sites carry on without reconnecting; message payloads stay in memory
   (:mod:`medsilo.deploy.superlink_launcher`: a large update written to SQLite would lock
   it for every other site);
2. write a private Flower CLI configuration (``RUN/flower/home/config.toml``) with one
   connection to that SuperLink, verified against the kit's CA;
3. register every site's SuperNode key from ``site-keys/`` (``flwr supernode register``)
   except those of sites on the CA-signed revocation list (``revoked.json``,
   :mod:`medsilo.deploy.revocation`), once per database (a revoked or changed key
   registered earlier is unregistered): only those nodes can connect; any other node is
   refused by the SuperLink;
4. ``flwr run`` the medsilo Flower App with the experiment, the kit and the run folder as
   run config, and follow its log until the run ends;
5. stop the SuperLink and report: success only if the ServerApp wrote ``summary.json`` with
   every round (a Flower run can end "successfully" after a failure inside the app).

Sites dial in whenever they start (before or after the coordinator), and keep retrying if
the coordinator restarts. The coordinator never connects to a site.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from medsilo.config import ConfigError, load_config
from medsilo.deploy import processes as proc
from medsilo.deploy import superlink_state
from medsilo.deploy.kit_files import load_roster
from medsilo.deploy.revocation import load_revocations
from medsilo.governance.run_gate import kit_run_approval
from medsilo.runtime.flower.deployed_server import DeployedRunConfig, resumable_checkpoint
from medsilo.runtime.flower.straggler import straggler_problem

log = logging.getLogger(__name__)
CONNECTION = "medsilo"


@dataclass(frozen=True)
class CoordinatorResult:
    ok: bool
    message: str
    run_dir: Path
    wall_s: float
    startup_s: float


def _check_kit(kit: Path, insecure: bool) -> None:
    needed = ["federation.json", "enrolment-policy.yaml", "site-keys"]
    if not insecure:
        needed += ["ca.crt", "server.crt", "server.key"]
    missing = [n for n in needed if not (kit / n).exists()]
    if missing:
        raise ConfigError(
            f"{kit} is not a coordinator kit (missing {', '.join(missing)}); make one with "
            "`medsilo provision FEDERATION.yaml` and use its coordinator/ folder"
        )


def _flwr_config(home: Path, address: str, port: int, kit: Path, insecure: bool) -> None:
    home.mkdir(parents=True, exist_ok=True)
    security = (
        "insecure = true" if insecure else f'root-certificates = "{(kit / "ca.crt").resolve()}"'
    )
    (home / "config.toml").write_text(
        f"""[superlink]
default = "{CONNECTION}"

[superlink.{CONNECTION}]
address = "{address}:{port}"
{security}
"""
    )


def sites_to_register(kit: Path) -> list[str]:
    """The roster's sites whose SuperNode keys the SuperLink may accept: all but those on
    the kit's revocation list (checked against the kit's CA; each skip is logged)."""
    revoked = load_revocations(kit)
    for site, revocation in revoked.items():
        log.warning("not registering %s: %s", site, revocation.explain(site))
    return [site for site in load_roster(kit).sites if site not in revoked]


def superlink_program() -> list[str]:
    """The SuperLink's program: Flower's ``flower-superlink`` run by
    :mod:`medsilo.deploy.superlink_launcher` (message payloads in memory beside the durable
    database), in this interpreter."""
    return [sys.executable, "-m", "medsilo.deploy.superlink_launcher"]


def start_coordinator(
    kit: Path,
    experiment: Path,
    run_dir: Path,
    *,
    resume: bool = False,
    insecure: bool = False,
    round_timeout_s: float = 600.0,
    connect_timeout_s: float = 300.0,
    poll_interval_s: float = 0.1,
    min_sites: int = 0,
    echo: bool = True,
    train_with_evaluation: bool = True,
    straggler_timeout_s: float | None = None,
) -> CoordinatorResult:
    """Run one deployed federation as the coordinator and return how it ended."""
    t0 = time.perf_counter()
    kit, experiment, run_dir = kit.resolve(), experiment.resolve(), run_dir.resolve()
    _check_kit(kit, insecure)
    cfg = load_config(experiment)  # fail here, not inside the ServerApp
    problem = straggler_problem(cfg, straggler_timeout_s)
    if problem is not None:
        raise ConfigError(problem)
    roster = load_roster(kit)
    resumable_checkpoint(run_dir, cfg, list(roster.sites), resume)  # refuse bad ones early
    registered = sites_to_register(kit)  # a revocation list not signed by the CA stops here
    if not resume:  # a kit with a council: its quorum gates a new run (step 0 above)
        kit_run_approval(kit, cfg)  # checked only: the ServerApp consumes it
    flower_dir = run_dir / superlink_state.FLOWER_DIR
    home = flower_dir / "home"
    env = proc.flower_env(home)
    _flwr_config(home, roster.address, roster.port, kit, insecure)
    link_log = flower_dir / "superlink.log"
    bind_host = roster.bind_host
    security = (
        ["--insecure"]
        if insecure
        else [
            "--ssl-ca-certfile",
            str(kit / "ca.crt"),
            "--ssl-certfile",
            str(kit / "server.crt"),
            "--ssl-keyfile",
            str(kit / "server.key"),
            "--enable-supernode-auth",
        ]
    )
    superlink = proc.start(
        [
            # flower-superlink, with message payloads in memory beside the durable database
            *superlink_program(),
            *security,
            "--host",
            bind_host,
            "--port",
            str(roster.port),
            "--disable-runtime-dependency-installation",
            # registered keys, node ids and runs survive a restart (--resume)
            "--database",
            str(flower_dir / superlink_state.DATABASE),
        ],
        env,
        link_log,
    )
    try:
        probe = "127.0.0.1" if bind_host in ("0.0.0.0", "::") else bind_host
        proc.wait_for_port(probe, roster.port, 60.0, superlink, link_log)
        flwr = superlink_state.flwr_cli(CONNECTION, env)
        if not insecure:  # once per database: a resumed run finds its keys registered
            superlink_state.sync_registrations(kit, registered, flower_dir, flwr)
        if resume:  # the killed coordinator's run must not be started again beside ours
            superlink_state.stop_unfinished_runs(flwr)
        settings = DeployedRunConfig(
            experiment=experiment,
            kit=kit,
            run_dir=run_dir,
            resume=resume,
            round_timeout_s=round_timeout_s,
            connect_timeout_s=connect_timeout_s,
            poll_interval_s=poll_interval_s,
            min_sites=min_sites,
            train_with_evaluation=train_with_evaluation,
            straggler_timeout_s=straggler_timeout_s,
        )
        app = proc.write_app(flower_dir / "app", settings.as_run_config())
        startup_s = time.perf_counter() - t0
        run_log = flower_dir / "run.log"
        # appended to: a resumed coordinator echoes its own run's lines, not the killed one's
        echo_from = run_log.stat().st_size if run_log.exists() else 0
        runner = proc.start(
            [proc.executable("flwr"), "run", str(app), CONNECTION, "--stream"],
            env,
            run_log,
        )
        _follow(runner, run_log, echo, echo_from)
    finally:
        proc.stop(superlink)
    wall_s = time.perf_counter() - t0
    ok, message = _outcome(run_dir, cfg.training.rounds, run_log)
    return CoordinatorResult(ok, message, run_dir, wall_s, startup_s)


def _follow(runner: subprocess.Popen[bytes], run_log: Path, echo: bool, offset: int = 0) -> None:
    """Wait for ``flwr run --stream`` to end, echoing the run's log from byte ``offset`` as it
    grows (only the bytes written since the last look are read)."""
    while True:
        finished = runner.poll() is not None
        if echo and run_log.exists():
            with run_log.open("rb") as log_file:
                log_file.seek(offset)
                new = log_file.read()
            cut = len(new) if finished else new.rfind(b"\n") + 1  # whole lines only
            if cut:
                sys.stderr.write(new[:cut].decode(errors="replace"))
                sys.stderr.flush()
                offset += cut
        if finished:
            return
        time.sleep(0.5)


def _outcome(run_dir: Path, rounds: int, run_log: Path) -> tuple[bool, str]:
    summary_path = run_dir / "summary.json"
    if not summary_path.exists():
        return False, (
            f"the run did not finish: no {summary_path}. Last lines of the run log "
            f"({run_log}):\n{proc.tail(run_log)}"
        )
    summary = json.loads(summary_path.read_text())
    done = int(summary.get("rounds_completed", 0))
    if done < rounds and summary.get("final", {}).get("test") is None:
        return False, f"the run ended after {done} of {rounds} rounds (see {run_log})"
    test = (summary.get("final") or {}).get("test") or {}
    accuracy = test.get("accuracy")
    what = f"accuracy {accuracy:.4f}" if isinstance(accuracy, float) else "no test metrics"
    return True, f"{done} rounds, {what}; sites admitted: {', '.join(summary['admitted'])}"
