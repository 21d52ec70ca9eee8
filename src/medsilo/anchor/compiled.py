"""The federation registry contract, compiled from its Vyper source shipped with medsilo.

Compiling in the project (not shipping bytecode) means the bytecode on chain can be
re-derived by anyone from the reviewed source and the pinned compiler version.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from importlib import resources
from typing import Any

from medsilo.anchor.chain import AnchorError

SOURCE = "federation_registry.vy"


@dataclass(frozen=True)
class CompiledContract:
    abi: list[dict[str, Any]]
    bytecode: str
    source_sha256: str
    compiler: str


@functools.cache
def federation_registry() -> CompiledContract:
    source = resources.files("medsilo.anchor").joinpath(SOURCE).read_text()
    try:
        import vyper
    except ImportError as err:
        raise AnchorError(
            "compiling the registry contract needs vyper: pip install 'medsilo[anchor]'"
        ) from err
    out = vyper.compile_code(source, output_formats=["abi", "bytecode"])
    return CompiledContract(
        abi=out["abi"],
        bytecode=out["bytecode"],
        source_sha256=hashlib.sha256(source.encode()).hexdigest(),
        compiler=f"vyper {vyper.__version__}",
    )
