"""The package's import structure: every module imports on its own, no import cycles (at
module level, under TYPE_CHECKING or inside functions), no private name imported across
modules."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import medsilo

PACKAGE = Path(medsilo.__file__).parent

#: Imports each module in a forked child of one interpreter that has loaded only the
#: third-party libraries the package imports (argv[2]; one not installed is skipped), so
#: every medsilo module starts from an empty medsilo import state without each child paying
#: for torch, Flower, MONAI... again (135 s -> a few seconds).
FRESH_IMPORTS = """
import importlib, json, os, sys, traceback
for library in json.loads(sys.argv[2]):
    try:
        importlib.import_module(library)
    except Exception:
        pass  # an optional extra: the child that needs it reports it
assert not any(m == "medsilo" or m.startswith("medsilo.") for m in sys.modules)
failed = {}
for name in json.loads(sys.argv[1]):
    pid = os.fork()
    if pid == 0:
        try:
            __import__(name)
        except BaseException:
            traceback.print_exc()
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        failed[name] = status
print(json.dumps(failed))
"""


def module_files() -> dict[str, Path]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def third_party_libraries() -> list[str]:
    """Every module outside medsilo and the standard library that a medsilo module imports at
    module level (not inside functions: those may be optional extras), by its full name."""
    found: set[str] = set()
    for path in module_files().values():
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
    ours = set(sys.stdlib_module_names) | {"medsilo", "__future__"}
    return sorted(name for name in found if name.partition(".")[0] not in ours)


def import_graph() -> tuple[dict[str, set[str]], list[tuple[str, str, str]]]:
    """Module -> medsilo modules it imports anywhere in its body; and every
    ``from medsilo.x import _y`` as ``(importer, module, name)``."""
    modules = module_files()

    def owner(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in modules}
    private: list[tuple[str, str, str]] = []
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str | None] = []
            if isinstance(node, ast.Import):
                targets = [owner(a.name) for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for a in node.names:
                    full = f"{node.module}.{a.name}"
                    targets.append(full if full in modules else owner(node.module))
                    dunder = a.name.startswith("__") and a.name.endswith("__")
                    if node.module.startswith("medsilo") and a.name.startswith("_") and not dunder:
                        private.append((module, node.module, a.name))
            graph[module].update(t for t in targets if t is not None and t != module)
    return graph, private


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_every_module_imports_in_a_fresh_interpreter() -> None:
    names = sorted(m for m in module_files() if not m.endswith("__main__"))  # runs the CLI
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            FRESH_IMPORTS,
            json.dumps(names),
            json.dumps(third_party_libraries()),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {}, out.stderr[-4000:]


def test_no_import_cycles() -> None:
    assert cycles(import_graph()[0]) == []


def test_no_private_name_is_imported_across_modules() -> None:
    assert import_graph()[1] == []
