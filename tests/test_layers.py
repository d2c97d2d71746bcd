"""The package layers hold: a module imports only its own layer or those below it (at top level or inside a
function), and the modules' top-level imports form no circle."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
# lowest first; a top-level module (errors.py) or sub-package (data/) is one layer entry
LAYERS = [
    "errors",
    "validation",
    "files",
    "progress",
    "fields",
    "cluster",
    "manifest",
    "ontology",
    "data",
    "models",
    "training",
    "study",
    "advise",
    "analysis",
    "hear",
    "demo",
    "cli",
]


def _modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        name = ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        out[name] = path
    return out


def _imports(tree: ast.AST, modules: dict[str, Path], top_level: bool) -> set[str]:
    nodes = tree.body if top_level and isinstance(tree, ast.Module) else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("audiotransfer"):
            found |= {f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in modules}
            found |= {node.module} if node.module in modules else set()
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in modules}
    return found


def _layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else -1


def test_every_package_has_a_layer() -> None:
    names = {m.split(".")[1] for m in _modules() if "." in m}
    assert names <= set(LAYERS), names - set(LAYERS)


def test_no_upward_import() -> None:
    modules = _modules()
    upward = [
        f"{m} -> {t}"
        for m, path in modules.items()
        for t in _imports(ast.parse(path.read_text()), modules, top_level=False)
        if _layer(t) > _layer(m) >= 0
    ]
    assert upward == []


def test_no_import_circle() -> None:
    modules = _modules()
    graph = {m: _imports(ast.parse(p.read_text()), modules, top_level=True) - {m} for m, p in modules.items()}
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as exc:
        raise AssertionError(f"import circle: {' -> '.join(exc.args[1])}") from None
