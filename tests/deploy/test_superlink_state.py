"""Registering site keys once per SuperLink database, against a fake ``flwr`` that behaves
as Flower 1.42's does (a second registration of a key is refused; ``--format json`` exits 0
and says ``"success": false`` on failure)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medsilo.deploy.processes import DeploymentError
from medsilo.deploy.superlink_state import (
    load_registry,
    node_ids,
    stop_unfinished_runs,
    sync_registrations,
)


class FakeFlwr:
    """The SuperLink's registered keys and runs, behind Flower CLI-shaped calls."""

    def __init__(
        self, runs: dict[int, str] | None = None, finish_on_ls: tuple[int, ...] = ()
    ) -> None:
        self.keys: dict[int, bytes] = {}  # node id -> public key
        self.runs = dict(runs or {})
        self.finish_on_ls = finish_on_ls  # runs the SuperLink fails itself right after `ls`
        self.calls: list[list[str]] = []
        self.next_id = 1000

    def __call__(self, command: list[str], options: list[str]) -> str:
        self.calls.append(command)
        if command[:2] == ["supernode", "register"]:
            key = Path(command[2]).read_bytes()
            if key in self.keys.values():
                return _fail("[code: 23] Public key already in use.")
            self.next_id += 1
            self.keys[self.next_id] = key
            return json.dumps({"success": True, "node-id": self.next_id})
        if command[:2] == ["supernode", "unregister"]:
            del self.keys[int(command[2])]
            return json.dumps({"success": True, "node-id": int(command[2])})
        if command == ["ls"]:
            runs = [{"run-id": str(r), "status": s} for r, s in self.runs.items()]
            for run in self.finish_on_ls:
                self.runs[run] = "finished:failed"
            return json.dumps({"success": True, "runs": runs})
        if command[0] == "stop":
            if self.runs[int(command[1])].startswith("finished"):
                return _fail("[code: 10] Run is already finished.")
            self.runs[int(command[1])] = "finished:stopped"
            return json.dumps({"success": True, "run-id": command[1]})
        raise AssertionError(command)


def _fail(message: str) -> str:
    return json.dumps({"success": False, "error-message": message})


def _kit(tmp_path: Path, sites: list[str]) -> Path:
    kit = tmp_path / "coordinator"
    (kit / "site-keys").mkdir(parents=True)
    for site in sites:
        (kit / "site-keys" / f"{site}.pub").write_bytes(f"key of {site}".encode())
    return kit


def test_keys_are_registered_once_and_revoked_or_changed_ones_unregistered(
    tmp_path: Path,
) -> None:
    kit, flower = _kit(tmp_path, ["a", "b", "c"]), tmp_path / "run" / "flower"
    flower.mkdir(parents=True)
    flwr = FakeFlwr()
    first = sync_registrations(kit, ["a", "b", "c"], flower, flwr)
    assert sorted(first) == ["a", "b", "c"] and len(flwr.keys) == 3
    assert node_ids(tmp_path / "run") == first

    flwr.calls.clear()  # a restart with the same database: nothing to do
    assert sync_registrations(kit, ["a", "b", "c"], flower, flwr) == first
    assert flwr.calls == []

    (kit / "site-keys" / "b.pub").write_bytes(b"b's new key")  # re-issued
    again = sync_registrations(kit, ["a", "b"], flower, flwr)  # c revoked since
    assert sorted(again) == ["a", "b"] and again["a"] == first["a"]
    assert again["b"] != first["b"]
    assert sorted(flwr.keys.values()) == [b"b's new key", b"key of a"]
    assert [c[:2] for c in flwr.calls].count(["supernode", "unregister"]) == 2
    assert sorted(load_registry(flower)) == ["a", "b"]


def test_a_key_registered_without_a_record_is_reported_with_the_remedy(tmp_path: Path) -> None:
    kit, flower = _kit(tmp_path, ["a"]), tmp_path / "flower"
    flower.mkdir()
    flwr = FakeFlwr()
    flwr.keys[1] = b"key of a"  # registered, then the coordinator died before recording it
    with pytest.raises(DeploymentError, match="start the run in a new --out folder"):
        sync_registrations(kit, ["a"], flower, flwr)


def test_a_failed_registration_is_an_error_though_flwr_exits_0(tmp_path: Path) -> None:
    kit, flower = _kit(tmp_path, ["a"]), tmp_path / "flower"
    flower.mkdir()

    def refusing(command: list[str], options: list[str]) -> str:
        return _fail("[code: 7] not allowed")

    with pytest.raises(DeploymentError, match=r"registering a failed: .*not allowed"):
        sync_registrations(kit, ["a"], flower, refusing)
    assert load_registry(flower) == {}


def test_resume_stops_the_runs_left_unfinished(tmp_path: Path) -> None:
    flwr = FakeFlwr({1: "finished:completed", 2: "running", 3: "starting", 4: "finished:failed"})
    assert stop_unfinished_runs(flwr) == [2, 3]
    assert flwr.runs == {
        1: "finished:completed",
        2: "finished:stopped",
        3: "finished:stopped",
        4: "finished:failed",
    }


def test_a_run_that_finishes_on_its_own_while_being_stopped_is_not_an_error(
    tmp_path: Path,
) -> None:
    """The SuperLink fails a dead ServerApp's run when its heartbeats expire, which can fall
    between ``flwr ls`` and ``flwr stop`` (seen in CI: the resumed coordinator exited 2)."""
    flwr = FakeFlwr({1: "running", 2: "running"}, finish_on_ls=(1,))
    assert stop_unfinished_runs(flwr) == [1, 2]
    assert flwr.runs == {1: "finished:failed", 2: "finished:stopped"}


def test_any_other_refusal_to_stop_a_run_is_an_error(tmp_path: Path) -> None:
    def refusing(command: list[str], options: list[str]) -> str:
        if command == ["ls"]:
            return json.dumps({"success": True, "runs": [{"run-id": "5", "status": "running"}]})
        return _fail("[code: 3] Run ID not found.")

    with pytest.raises(DeploymentError, match=r"stopping run 5 failed: .*not found"):
        stop_unfinished_runs(refusing)
