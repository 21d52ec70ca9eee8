"""Retry a Flower object pull after :data:`FIRST_RETRY_S`, not Flower's fixed 1 s.

Flower moves a message in two steps: the message (its object tree) and then its objects
(arrays, records). The receiver can see the message before the sender has pushed every
object; its pull of an object not there yet fails and is retried after a backoff that starts
at ``PULL_INITIAL_BACKOFF`` = 1 s (then 2 s, 4 s, ...; ``flwr.supercore.inflatable``). In a
deployed round that race happens at three hops, each costing a second or more when lost:

* the site's SuperNode pulls a train message the coordinator is still pushing the objects of;
* the site's ClientApp pulls it from the SuperNode, which created the task (so the SuperExec
  started the ClientApp) before it had pulled the objects from the SuperLink;
* the coordinator pulls a reply whose objects the SuperNode is still pushing.

:func:`shorten_first_retry` makes the first retry come after :data:`FIRST_RETRY_S` at one of
these call sites (the same doubling, cap, number of tries and deadline follow). It replaces a
module global of a Flower module, so, like the other speed-ups (:mod:`.flower_contract`), it
is applied only when that module and ``inflatable_utils`` (whose keyword it sets) are the
pinned sources, and otherwise leaves Flower's 1 s.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

from medsilo.deploy.flower_contract import INFLATABLE_MODULE, contract_problems

#: The first retry of an object that is not there yet (Flower's is 1 s); each further retry
#: doubles it, as Flower's do, so a slow sender costs a few more small local requests only.
FIRST_RETRY_S = 0.05

#: The call sites (module, the name of the pull function it calls) of the three hops.
SUPERNODE_PULLS = ("flwr.supernode.start_client_internal", "pull_objects")
CLIENTAPP_PULLS = ("flwr.supernode.runtime.run_clientapp", "pull_and_inflate_object_from_tree")
COORDINATOR_PULLS = ("flwr.superlink.grid.http_grid", "pull_objects")


def shorten_first_retry(site: tuple[str, str], first_retry_s: float = FIRST_RETRY_S) -> list[str]:
    """Make ``site``'s pulls retry first after ``first_retry_s``; the reasons it did not (a
    Flower whose modules differ from the pinned ones) otherwise. Idempotent."""
    module_name, function = site
    problems = contract_problems((module_name, INFLATABLE_MODULE))
    if problems:
        return problems
    module = importlib.import_module(module_name)
    flowers: Any = getattr(module, function)
    flowers = getattr(flowers, "medsilo_flowers", flowers)  # applied before: start again
    shortened = functools.partial(flowers, initial_backoff=first_retry_s)
    shortened.medsilo_flowers = flowers  # type: ignore[attr-defined]
    setattr(module, function, shortened)
    return []
