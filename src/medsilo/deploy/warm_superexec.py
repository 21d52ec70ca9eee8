"""``python -m medsilo.deploy.warm_superexec FLOWER-SUPEREXEC-ARGS``: warm ClientApp processes.

Flower runs every message a site receives in a fresh ``flwr-clientapp`` process, which
imports torch, Flower and medsilo (about 1.5 s of CPU) before it does any work. Under the
SuperNode's ``--isolation process`` the process that starts them is ours to run: this one is
Flower's own ``flower-superexec`` (same arguments, same task loop, same Runtime API and
tokens) with one change: its executor, instead of ``subprocess.Popen(["flwr-clientapp",
...])``, *forks* this process, which imported medsilo's deployed ClientApp once at start,
and the child runs Flower's own ``flwr-clientapp`` entry point with the very arguments
Flower would have passed (:func:`clientapp_argv`, checked against Flower's executor by
``tests/deploy/test_warm_superexec.py``). Each message still gets its own process, with its
own memory, exactly as before; it just starts already imported, and its pull of the message
retries after 0.05 s rather than Flower's 1 s (:mod:`.object_pulls`: the SuperNode starts
the task before it has fetched the message's objects).

Fork safety: nothing here runs a torch operation before forking, so no OpenMP/intra-op
thread pool exists to be copied half-initialised (the preload starts no thread at all,
numpy's OpenBLAS included, :data:`PRELOAD_ENVIRONMENT`; a test checks it; each child creates
its pools, with the site's thread settings); the child resets SIGTERM/SIGINT to their
defaults, empties the exit-handler list it inherited (the parent's HTTP client and executor
are not its to close) and leaves through ``os._exit``. Children are reaped on every poll
of the task loop.

The replaced ``get_executor`` and the inherited internals are pinned to Flower's exact
source (:mod:`.flower_contract`); on any other Flower this process says so and runs Flower's
own SuperExec unchanged (a cold process per message).
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import traceback
from collections.abc import Mapping
from typing import Any

from medsilo.deploy.flower_contract import (
    CLIENTAPP_MODULE,
    EXIT_HANDLER_MODULE,
    SUPEREXEC_CLI_MODULE,
    SUPEREXEC_MODULE,
    WARM_CLIENTAPPS,
    contract_problems,
)
from medsilo.deploy.object_pulls import CLIENTAPP_PULLS, shorten_first_retry

#: Imported once here, before any fork, so every ClientApp process starts with them.
#: ``torch._dynamo``: torch imports it lazily when the first optimizer is made (its
#: ``Optimizer.__init__`` is wrapped in ``torch._disable_dynamo``): seconds of imports (4 to
#: 6 s measured on a loaded 2-core machine) that every ClientApp process paid again in its
#: first training step; importing it starts no thread (the preload test checks).
PRELOAD = (
    "medsilo.runtime.flower.deployed_site",
    "flwr.supernode.runtime.run_clientapp",
    "torch._dynamo",
)

#: numpy's OpenBLAS starts a thread pool (one thread per further core) as soon as numpy is
#: imported, unless told to use one thread; this process is started with it, so that at a fork
#: the main thread is the only one (each ClientApp's numpy then runs its BLAS on one thread;
#: its torch work keeps torch's own pools, created in the child).
PRELOAD_ENVIRONMENT = {"OPENBLAS_NUM_THREADS": "1"}


def preload_environment(base: Mapping[str, str]) -> dict[str, str]:
    """``base`` (the site's environment) with :data:`PRELOAD_ENVIRONMENT` applied."""
    return {**base, **PRELOAD_ENVIRONMENT}


def clientapp_argv(spec: Any) -> list[str]:
    """The ``flwr-clientapp`` arguments Flower's ``SubprocessExecutor.launch`` builds from an
    ``ExecutionSpec`` (without the command name)."""
    args = ["--runtime-api-address", spec.runtime_api_address, "--token", spec.token]
    if spec.insecure:
        args.append("--insecure")
    elif spec.root_certificates_path is not None:
        args += ["--root-certificates", spec.root_certificates_path]
    if spec.parent_pid is not None:
        args += ["--parent-pid", str(spec.parent_pid)]
    if spec.runtime_dependency_install:
        args.append("--allow-runtime-dependency-installation")
    return args


def _run_clientapp_child(argv: list[str], quiet: bool) -> None:
    """In the forked child: Flower's ``flwr-clientapp`` main, then ``os._exit``."""
    code = 1
    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)
        importlib.import_module(EXIT_HANDLER_MODULE).registered_exit_handlers.clear()
        if quiet:  # as Flower's executor does for output it suppresses
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
        sys.argv = ["flwr-clientapp", *argv]
        importlib.import_module(CLIENTAPP_MODULE).flwr_clientapp()
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def fork_executor() -> Any:
    """Flower's ``SubprocessExecutor`` whose ClientApp launches fork this process."""
    from flwr.supercore.constant import TaskType
    from flwr.supercore.superexec.executor import LaunchResult
    from flwr.supercore.superexec.executor.subprocess_executor import SubprocessExecutor

    class ForkExecutor(SubprocessExecutor):
        def __init__(self) -> None:
            self.owner = os.getpid()
            self.children: set[int] = set()

        def launch(self, spec: Any) -> Any:
            if spec.task_type != TaskType.CLIENT_APP:  # not a site's work: Flower's way
                return super().launch(spec)
            argv = clientapp_argv(spec)
            pid = os.fork()
            if pid == 0:
                _run_clientapp_child(argv, bool(spec.suppress_output))
            self.children.add(pid)
            return LaunchResult.accepted()

        def reconcile(self) -> None:
            """Reap the children that finished (no zombies)."""
            for pid in list(self.children):
                try:
                    done, _ = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:  # reaped already
                    done = pid
                if done:
                    self.children.discard(pid)

        def close(self) -> None:
            if os.getpid() == self.owner:
                self.reconcile()

    return ForkExecutor()


def install_fork_executor() -> list[str]:
    """Make Flower's SuperExec loop use :func:`fork_executor`; the reasons it did not (a
    Flower whose modules differ from the pinned ones) otherwise."""
    problems = contract_problems(WARM_CLIENTAPPS)
    if problems:
        return problems
    from flwr.supercore.constant import ExecutorType

    module = importlib.import_module(SUPEREXEC_MODULE)
    flowers = module.get_executor

    def get_executor(executor_type: Any, *args: Any, **kwargs: Any) -> Any:
        if executor_type != ExecutorType.SUBPROCESS:
            return flowers(executor_type, *args, **kwargs)
        return fork_executor()

    setattr(module, "get_executor", get_executor)  # noqa: B010 - a pinned module global
    return []


def preload() -> None:
    """Import what every ClientApp process needs; no torch operation runs, so no thread
    pool exists to be inherited half-made by a forked child."""
    for name in PRELOAD:
        importlib.import_module(name)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    problems = install_fork_executor()
    if problems:
        print(
            "medsilo: not forking warm ClientApp processes (Flower internals differ from the "
            "pinned ones: " + "; ".join(problems) + "); running Flower's own SuperExec",
            file=sys.stderr,
        )
    else:
        preload()
        # inherited by every child: its pull of a message the SuperNode is still fetching
        problems = shorten_first_retry(CLIENTAPP_PULLS)
        if problems:
            print(
                "medsilo: ClientApps retry object pulls after Flower's 1 s ("
                + "; ".join(problems)
                + ")",
                file=sys.stderr,
            )
    sys.argv = ["flower-superexec", *args]
    importlib.import_module(SUPEREXEC_CLI_MODULE).flower_superexec()
    return 0


if __name__ == "__main__":
    sys.exit(main())
