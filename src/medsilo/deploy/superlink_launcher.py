"""``python -m medsilo.deploy.superlink_launcher SUPERLINK-ARGS``: Flower's ``flower-superlink``
with its link state on disk and message payloads in memory.

``--database FILE`` makes the SuperLink durable (registered node keys, node ids and runs
survive a coordinator restart, :mod:`.superlink_state`), but Flower 1.42 then keeps message
*payloads* in the same SQLite file too. A large model's update is one object of hundreds of
megabytes: writing it holds SQLite's write lock longer than Flower's 5 s ``busy_timeout``,
so the other sites' uploads, heartbeats and the SuperExec's task polls fail with
``database is locked`` (HTTP 500; a 100M-parameter secure-aggregation round lost every site
this way, and Flower's SuperExec exits on such a 500). Payloads need no durability here: a
restarted coordinator stops the Flower run it left unfinished and medsilo resumes from its
own checkpoint in a new run. So this launcher keeps the link state in ``--database`` and
the object store in memory, as ``flower-superlink`` without ``--database`` does.

It replaces ``get_objectstore_linkstate_factories`` as imported by ``flwr.superlink.main``;
that is a Flower internal, applied only when both modules are the pinned ones
(:mod:`.flower_contract`). Otherwise the launcher says why and runs Flower unchanged.
"""

from __future__ import annotations

import sys
from typing import Any

from medsilo.deploy.flower_contract import PAYLOADS_IN_MEMORY, contract_problems


def keep_payloads_in_memory() -> bool:
    """Patch the SuperLink's factories (for a SQLite file ``--database`` only; every other
    value goes to Flower's own); ``False`` (and a message) if Flower changed."""
    problems = contract_problems(PAYLOADS_IN_MEMORY)
    if problems:
        print(
            "medsilo: keeping the SuperLink's message payloads in its database ("
            + "; ".join(problems)
            + "); large updates may fail with 'database is locked'",
            file=sys.stderr,
        )
        return False
    from flwr.server.superlink.linkstate import LinkStateFactory
    from flwr.supercore.constant import FLWR_IN_MEMORY_DB_NAME
    from flwr.supercore.object_store import ObjectStoreFactory
    from flwr.superlink import config_loader, main

    flower_factories = config_loader.get_objectstore_linkstate_factories

    def factories(database: str, federation_manager: Any) -> tuple[Any, Any]:
        if database in (FLWR_IN_MEMORY_DB_NAME, ":memory:") or "://" in database:
            return flower_factories(database, federation_manager)  # not a SQLite file
        objects = ObjectStoreFactory(FLWR_IN_MEMORY_DB_NAME)
        return objects, LinkStateFactory(database, federation_manager, objects)

    setattr(main, "get_objectstore_linkstate_factories", factories)  # noqa: B010
    return True


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    keep_payloads_in_memory()
    from flwr.superlink.cli import flower_superlink

    sys.argv = ["flower-superlink", *args]
    flower_superlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
