"""The Flower internals medsilo's launchers rely on, pinned to their exact source.

Three speed-ups reach inside Flower: the SuperNode's idle poll (:mod:`.supernode_launcher`
replaces the ``time`` global of ``flwr.supernode.start_client_internal``), warm ClientApp
processes (:mod:`.warm_superexec` replaces ``get_executor`` in Flower's SuperExec loop, runs
Flower's own ``flwr-clientapp`` entry point in a forked child and empties the exit-handler
list that child inherits) and a short first retry of an object pull (:mod:`.object_pulls`
replaces the pull function global of the SuperNode's loop, of the ClientApp's
``run_clientapp`` and of the coordinator's HTTP grid, with ``inflatable_utils``' own pull).
One fix does too: the durable SuperLink keeps message payloads in memory
(:mod:`.superlink_launcher` replaces ``get_objectstore_linkstate_factories`` as
``flwr.superlink.main`` imported it). None is a Flower API, so each is applied only when the
module it touches is byte for byte the one it was written against: the SHA-256 of the
module's source (``inspect.getsource``) and Flower's version must match :data:`PINS`.
Anything else (a Flower upgrade, a patched installation) makes the launcher refuse the
change, say so, and run Flower's own behaviour; ``tests/deploy/test_flower_contract.py``
fails loudly, naming the module, so an upgrade re-reads each one before re-pinning it.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
from collections.abc import Iterable

#: The Flower release the pins below were read from.
FLOWER_VERSION = "1.42.0"

POLL_MODULE = "flwr.supernode.start_client_internal"
SUPEREXEC_MODULE = "flwr.supercore.superexec.run_superexec"
SUBPROCESS_EXECUTOR_MODULE = "flwr.supercore.superexec.executor.subprocess_executor"
CLIENTAPP_MODULE = "flwr.supernode.cli.flwr_clientapp"
EXIT_HANDLER_MODULE = "flwr.supercore.exit.exit_handler"
SUPEREXEC_CLI_MODULE = "flwr.supercore.cli.flower_superexec"
SUPERLINK_MAIN_MODULE = "flwr.superlink.main"
SUPERLINK_CONFIG_MODULE = "flwr.superlink.config_loader"
INFLATABLE_MODULE = "flwr.supercore.inflatable.inflatable_utils"
RUN_CLIENTAPP_MODULE = "flwr.supernode.runtime.run_clientapp"
HTTP_GRID_MODULE = "flwr.superlink.grid.http_grid"

#: Module -> SHA-256 of its source in Flower :data:`FLOWER_VERSION`.
PINS = {
    POLL_MODULE: "d6342f743fdf768f63305b88414ae2654e9a21bda153739da19c608e8d375067",
    SUPEREXEC_MODULE: "51cb82facb912f41320d002e1c862b3e5c712cbdf06736f527ede43cf4d207ea",
    SUBPROCESS_EXECUTOR_MODULE: "8fca14d06c1531f0895952719e9194a3f62e9cd0de4148a6d2cdd5cdaf051f39",
    CLIENTAPP_MODULE: "e87dccf7a82b0447c6dac323c6bbfc1ffd2e70e7837d7f5c39b18b86b7b39c98",
    EXIT_HANDLER_MODULE: "a13675bf2473258601192f9d9ed3480c44e5e57a41512f2050e81de0c1d51ab0",
    SUPEREXEC_CLI_MODULE: "1fae6c298bca26a7a8b478a48a33f6125c15c08503bd609cdf2075a0e298cbbd",
    SUPERLINK_MAIN_MODULE: "500f01979e167243df1121d556fbc925b033b725dce58adb0c9f07b7c0f8642e",
    SUPERLINK_CONFIG_MODULE: "7a26551ee895cd85c951221f98b2fca1a66c84bf5d79eff621ad0f0492ef30fd",
    INFLATABLE_MODULE: "077b26d921aa86389f0a9e16bab761bd10525ec66d6f175b56fdf4bac7872d40",
    RUN_CLIENTAPP_MODULE: "fa6612aaeda9cd398de69199b0cf264a38f72c1b9cfdc53644c8d6dab0b70eb6",
    HTTP_GRID_MODULE: "0c33918af5016310ba84ad42643944d498bbf5ebdb55d62f4655ee00e94d72db",
}

#: What each speed-up touches.
POLL_PATCH = (POLL_MODULE,)
WARM_CLIENTAPPS = (
    SUPEREXEC_MODULE,
    SUBPROCESS_EXECUTOR_MODULE,
    CLIENTAPP_MODULE,
    EXIT_HANDLER_MODULE,
    SUPEREXEC_CLI_MODULE,
)
PAYLOADS_IN_MEMORY = (SUPERLINK_MAIN_MODULE, SUPERLINK_CONFIG_MODULE)
OBJECT_PULLS = (POLL_MODULE, RUN_CLIENTAPP_MODULE, HTTP_GRID_MODULE, INFLATABLE_MODULE)


def installed_flower_version() -> str:
    from flwr.supercore.version import package_version

    return str(package_version)


def source_sha256(module_name: str) -> str:
    """SHA-256 of an importable module's source (by its dotted name: some Flower packages
    re-export a function under the name of the module that defines it)."""
    module = importlib.import_module(module_name)
    return hashlib.sha256(inspect.getsource(module).encode()).hexdigest()


def contract_problems(modules: Iterable[str], pins: dict[str, str] | None = None) -> list[str]:
    """Why ``modules`` are not the pinned ones (empty when every one matches)."""
    pinned = PINS if pins is None else pins
    problems = []
    version = installed_flower_version()
    if version != FLOWER_VERSION:
        problems.append(f"Flower is {version}, medsilo's patches were checked on {FLOWER_VERSION}")
    for name in modules:
        try:
            digest = source_sha256(name)
        except (ImportError, OSError, TypeError) as err:
            problems.append(f"{name} cannot be read: {err}")
            continue
        if digest != pinned[name]:
            problems.append(
                f"{name} changed (source SHA-256 {digest[:16]}..., pinned {pinned[name][:16]}...)"
            )
    return problems
