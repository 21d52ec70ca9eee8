"""The SuperLink's state on disk, and which site each registered SuperNode key belongs to.

``medsilo coordinator start`` runs ``flower-superlink --database RUN/flower/superlink.db``:
Flower 1.42's SQLite ``LinkState`` and ``ObjectStore`` keep the registered SuperNode keys,
their node ids and statuses, the runs and their messages in that file. A coordinator that
is killed and started again with ``--resume`` (same ``RUN``) therefore finds every site's
node still registered under the same node id: a running SuperNode's heartbeat and polls
carry on as soon as the port is back (no 401, no restart of the site's SuperNode), instead
of the in-memory SuperLink forgetting every node and each site's supervisor restarting its
SuperNode after a 401 or a 305.

Registering is therefore done once per database, and recorded here in
``RUN/flower/registered-nodes.json`` (``site -> {node_id, key_sha256}``) because Flower's
``flwr supernode list`` shows neither a node's key nor its name:

* a site already recorded with the same key is not registered again (Flower would refuse it:
  "Public key already in use");
* a site now on the CA-signed revocation list, or whose ``site-keys/<site>.pub`` changed, is
  unregistered (``flwr supernode unregister NODE_ID``) before anything runs, so a restarted
  coordinator also drops a key revoked since the database was made;
* the record tells the ServerApp which node id each site's key was registered under, so a
  node presenting one site's key while claiming another site is refused at enrolment
  (:mod:`medsilo.runtime.flower.deployed_server`).

The record is written after each change (atomically), so a coordinator killed between
registering and recording finds the key "already in use" with no node id: that is reported
with the remedy (start a new run folder) rather than guessed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from medsilo.config import ConfigError
from medsilo.deploy import processes as proc

log = logging.getLogger(__name__)

#: ``RUN/flower``: the coordinator's Flower files (logs, CLI home, app, database, record).
FLOWER_DIR = "flower"
DATABASE = "superlink.db"
REGISTRY = "registered-nodes.json"

#: Runs ``flwr COMMAND CONNECTION OPTIONS`` (the coordinator's Flower CLI connection goes
#: after the command and its positional arguments) and returns its stdout.
FlwrCli = Callable[[list[str], list[str]], str]
_JSON = ["--format", "json"]


@dataclass(frozen=True)
class Registration:
    node_id: int
    key_sha256: str


def key_sha256(public_key: Path) -> str:
    return hashlib.sha256(public_key.read_bytes()).hexdigest()


def load_registry(flower_dir: Path) -> dict[str, Registration]:
    """``site -> Registration`` as recorded in ``flower_dir``; empty when none yet."""
    path = flower_dir / REGISTRY
    if not path.exists():
        return {}
    try:
        raw = json.loads(path.read_text())
        return {
            site: Registration(int(entry["node_id"]), str(entry["key_sha256"]))
            for site, entry in raw.items()
        }
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise ConfigError(
            f"{path} is not a registration record ({err}); start a new --out"
        ) from None


def node_ids(run_dir: Path) -> dict[str, int]:
    """``site -> node id`` of the keys registered at the SuperLink of the run in ``run_dir``
    (empty for a run with no registration: ``--insecure``, or the apps driven in-process)."""
    return {site: r.node_id for site, r in load_registry(run_dir / FLOWER_DIR).items()}


def _save(flower_dir: Path, registry: Mapping[str, Registration]) -> None:
    path = flower_dir / REGISTRY
    tmp = path.with_suffix(".tmp")
    tmp.write_text(
        json.dumps(
            {s: {"node_id": r.node_id, "key_sha256": r.key_sha256} for s, r in registry.items()},
            indent=2,
        )
    )
    os.replace(tmp, path)


def _answer(stdout: str, what: str) -> dict[str, object]:
    """The JSON ``flwr ... --format json`` printed. Flower 1.42 exits 0 even on failure
    (``{"success": false, "error-message": ...}``), so success is read from the JSON."""
    start = stdout.find("{")
    try:
        answer = json.loads(stdout[start:]) if start >= 0 else None
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise proc.DeploymentError(f"{what}: no JSON answer from flwr:\n{stdout[-2000:]}")
    if not answer.get("success"):
        raise proc.DeploymentError(f"{what} failed: {answer.get('error-message', answer)}")
    return answer


def sync_registrations(
    kit: Path, allowed: list[str], flower_dir: Path, flwr: FlwrCli
) -> dict[str, int]:
    """Make the SuperLink's registered keys exactly ``allowed``'s ``site-keys/<site>.pub``;
    returns ``site -> node id``. Only what differs from the record is changed."""
    registry = load_registry(flower_dir)
    for site, old in list(registry.items()):
        key = kit / "site-keys" / f"{site}.pub"
        if site in allowed and key.is_file() and key_sha256(key) == old.key_sha256:
            continue
        why = "revoked or off the roster" if site not in allowed else "its node key changed"
        _answer(flwr(["supernode", "unregister", str(old.node_id)], _JSON), f"unregistering {site}")
        log.warning("unregistered the SuperNode key of %s (node %s): %s", site, old.node_id, why)
        del registry[site]
        _save(flower_dir, registry)
    for site in allowed:
        if site in registry:
            node = registry[site].node_id
            log.info("SuperNode key of site %s already registered (node %s)", site, node)
            continue
        key = kit / "site-keys" / f"{site}.pub"
        if not key.is_file():
            raise ConfigError(f"{key} is missing: re-run `medsilo provision`")
        try:
            register = ["supernode", "register", str(key.resolve())]
            answer = _answer(flwr(register, ["--name", site, *_JSON]), f"registering {site}")
        except proc.DeploymentError as err:
            if "already in use" in str(err):
                raise proc.DeploymentError(
                    f"{err}\nThe SuperLink database {flower_dir / DATABASE} holds {site}'s key "
                    f"but {flower_dir / REGISTRY} has no node id for it (a coordinator killed "
                    "while registering): start the run in a new --out folder"
                ) from None
            raise
        registry[site] = Registration(int(str(answer["node-id"])), key_sha256(key))
        _save(flower_dir, registry)
        log.info("registered SuperNode key of site %s (node %s)", site, registry[site].node_id)
    return {site: r.node_id for site, r in registry.items()}


#: Flower 1.42's public message for stopping a run that has finished (``ApiErrorCode.
#: RUN_ALREADY_FINISHED`` in ``flwr.supercore.error.catalog``).
RUN_ALREADY_FINISHED = "Run is already finished."


def stop_unfinished_runs(flwr: FlwrCli) -> list[int]:
    """Stop every run the database holds that has not finished; returns their ids.

    A run of a killed coordinator stays "running" until its ServerApp task misses its
    heartbeats (Flower then fails it), but one killed while still *starting* is put back to
    pending and would be started again beside the resumed run, in the same run folder.
    ``--resume`` calls this before ``flwr run``."""
    runs = _answer(flwr(["ls"], _JSON), "listing the runs").get("runs", [])
    if not isinstance(runs, list):
        raise proc.DeploymentError(f"flwr ls answered no list of runs: {runs!r}")
    unfinished = [
        int(run["run-id"]) for run in runs if not str(run.get("status", "")).startswith("finished")
    ]
    for run_id in unfinished:
        try:
            _answer(flwr(["stop", str(run_id)], _JSON), f"stopping run {run_id}")
        except proc.DeploymentError as err:
            if RUN_ALREADY_FINISHED not in str(err):
                raise
            # The SuperLink failed it itself (its ServerApp's heartbeats expired) between
            # our `flwr ls` and this stop: the run is stopped, which is all we wanted.
            log.info("run %s finished on its own while being stopped", run_id)
            continue
        log.warning("stopped run %s, left unfinished by the previous coordinator", run_id)
    return unfinished


def flwr_cli(connection: str, env: dict[str, str]) -> FlwrCli:
    """The :data:`FlwrCli` of the coordinator's private Flower CLI configuration."""

    def run(command: list[str], options: list[str]) -> str:
        argv = [proc.executable("flwr"), *command, connection, *options]
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise proc.DeploymentError(
                f"flwr {' '.join(command[:2])} exited {done.returncode}:\n"
                + (done.stdout + done.stderr)[-2000:]
            )
        return done.stdout

    return run
