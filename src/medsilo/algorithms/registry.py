"""Algorithm name -> class, so a run config's ``algorithm.name`` finds its capabilities.

The package's algorithms are listed once, here. An algorithm written elsewhere (a test
module, a study's own code) needs no entry: it is checked by its own
:attr:`~medsilo.algorithms.base.Algorithm.capabilities` when it is handed to a runtime
(:func:`medsilo.runtime.factory.refuse_incompatible`).
"""

from __future__ import annotations

from medsilo.algorithms.base import Algorithm
from medsilo.algorithms.capabilities import Capabilities
from medsilo.algorithms.ccpgd import CCPGD
from medsilo.algorithms.ditto import Ditto
from medsilo.algorithms.dp_fedavg import DPFedAvg
from medsilo.algorithms.fedavg import FedAvg
from medsilo.algorithms.fedbn import FedBN
from medsilo.algorithms.fednova import FedNova
from medsilo.algorithms.fedprox import FedProx
from medsilo.algorithms.scaffold import Scaffold

ALGORITHM_CLASSES: dict[str, type[Algorithm]] = {
    cls.name: cls for cls in (FedAvg, FedProx, Scaffold, FedNova, CCPGD, FedBN, Ditto, DPFedAvg)
}


def capabilities_of(name: str) -> Capabilities:
    """The capabilities the package's algorithm ``name`` declares."""
    if name not in ALGORITHM_CLASSES:
        raise ValueError(f"{name!r} is not a federated algorithm of medsilo")
    return ALGORITHM_CLASSES[name].capabilities


def algorithms_where(supported: str) -> list[str]:
    """Names of the package's algorithms whose capability field ``supported`` is true
    (for refusals that suggest alternatives)."""
    return [n for n, cls in ALGORITHM_CLASSES.items() if getattr(cls.capabilities, supported)]
