"""Warm ClientApp processes: Flower's SuperExec loop with an executor that forks a process
which imported medsilo once, and runs Flower's own ``flwr-clientapp`` entry point with the
arguments Flower's executor would have used (end to end: tests/deploy/test_loopback.py,
whose sites run this way)."""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from flwr.supercore.constant import ExecutorType, TaskType
from flwr.supercore.superexec.executor import ExecutionSpec

from medsilo.deploy import flower_contract as contract
from medsilo.deploy import warm_superexec as warm
from medsilo.deploy.object_pulls import CLIENTAPP_PULLS, FIRST_RETRY_S


def spec(**changes: Any) -> ExecutionSpec:
    fields: dict[str, Any] = {
        "task_type": TaskType.CLIENT_APP,
        "runtime_api_address": "127.0.0.1:9094",
        "token": "tok",
        "insecure": True,
        "root_certificates_path": None,
        "runtime_dependency_install": False,
        "parent_pid": 4242,
        "suppress_output": False,
        "task_id": 7,
    }
    return ExecutionSpec(**(fields | changes))


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"insecure": False, "root_certificates_path": "/ca dir/ca.crt", "parent_pid": None},
        {"insecure": False, "runtime_dependency_install": True},
    ],
)
def test_the_child_gets_the_arguments_flowers_executor_would_start_it_with(
    changes: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[list[str]] = []
    module = importlib.import_module(contract.SUBPROCESS_EXECUTOR_MODULE)
    monkeypatch.setattr(module.subprocess, "Popen", lambda args, **_: started.append(args))
    one = spec(**changes)
    module.SubprocessExecutor().launch(one)
    assert started == [["flwr-clientapp", *warm.clientapp_argv(one)]]


def test_a_forked_child_runs_flowers_clientapp_entry_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The child runs ``flwr_clientapp`` with Flower's arguments, default signal handling
    and none of the parent's exit handlers, and is reaped."""
    seen = tmp_path / "child.json"
    exit_handlers = importlib.import_module(contract.EXIT_HANDLER_MODULE)
    monkeypatch.setattr(exit_handlers, "registered_exit_handlers", [object()])

    def clientapp() -> None:
        seen.write_text(
            json.dumps(
                {
                    "argv": sys.argv,
                    "exit_handlers": len(exit_handlers.registered_exit_handlers),
                    "sigterm_default": signal.getsignal(signal.SIGTERM) == signal.SIG_DFL,
                    "parent": os.getppid(),
                }
            )
        )
        raise SystemExit(0)

    monkeypatch.setattr(
        importlib.import_module(contract.CLIENTAPP_MODULE), "flwr_clientapp", clientapp
    )
    monkeypatch.setattr(signal, "SIGTERM", signal.SIGTERM)
    previous = signal.signal(signal.SIGTERM, lambda *_: None)  # the parent's own handler
    try:
        executor = warm.fork_executor()
        one = spec()
        assert executor.launch(one).status == "accepted"
    finally:
        signal.signal(signal.SIGTERM, previous)
    deadline = time.monotonic() + 60
    while executor.children and time.monotonic() < deadline:
        executor.reconcile()
        time.sleep(0.05)
    assert not executor.children  # reaped
    got = json.loads(seen.read_text())
    assert got == {
        "argv": ["flwr-clientapp", *warm.clientapp_argv(one)],
        "exit_handlers": 0,
        "sigterm_default": True,
        "parent": os.getpid(),
    }


def test_flowers_superexec_loop_gets_the_fork_executor_only_when_pinned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = importlib.import_module(contract.SUPEREXEC_MODULE)
    flowers = module.get_executor
    monkeypatch.setattr(module, "get_executor", flowers)  # restored afterwards
    monkeypatch.setitem(contract.PINS, contract.SUPEREXEC_MODULE, "0" * 64)
    (problem,) = warm.install_fork_executor()
    assert contract.SUPEREXEC_MODULE in problem and module.get_executor is flowers
    monkeypatch.undo()
    monkeypatch.setattr(module, "get_executor", flowers)
    assert warm.install_fork_executor() == []
    executor = module.get_executor(ExecutorType.SUBPROCESS)
    assert type(executor).__name__ == "ForkExecutor" and executor.children == set()


def test_the_preload_imports_the_clientapp_and_starts_no_thread() -> None:
    """Nothing half-initialised (a torch thread pool, say) can be copied into a child."""
    script = (
        "import sys; from medsilo.deploy.warm_superexec import PRELOAD, preload; preload(); "
        "threads = [l for l in open('/proc/self/status') if l.startswith('Threads:')]; "
        "print(threads[0].split()[1], all(m in sys.modules for m in PRELOAD))"
    )
    # The launcher's environment, without the test runner's thread settings (CI sets none).
    site_env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    out = subprocess.run(
        [sys.executable, "-c", script],
        check=True,
        capture_output=True,
        text=True,
        env=warm.preload_environment(site_env),
    ).stdout.split()
    assert out == ["1", "True"]


def test_the_children_inherit_a_short_first_retry_of_their_message_pull(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A ClientApp may ask for its message before the SuperNode has all of it."""
    module_name, function = CLIENTAPP_PULLS
    run_clientapp = importlib.import_module(module_name)
    flowers = getattr(run_clientapp, function)
    monkeypatch.setattr(run_clientapp, function, flowers)  # restored afterwards
    superexec = importlib.import_module(contract.SUPEREXEC_MODULE)
    monkeypatch.setattr(superexec, "get_executor", superexec.get_executor)
    cli = importlib.import_module(contract.SUPEREXEC_CLI_MODULE)
    monkeypatch.setattr(cli, "flower_superexec", lambda: None)
    monkeypatch.setattr(sys, "argv", ["warm_superexec"])
    assert warm.main(["--insecure"]) == 0
    pull = getattr(run_clientapp, function)
    assert pull.func is flowers and pull.keywords == {"initial_backoff": FIRST_RETRY_S}
