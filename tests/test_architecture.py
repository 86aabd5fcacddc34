"""The package's layers and which may import which (docs/architecture.md, "Layers"), read from the source with ast:

    Core       errors, types, sizes, dispatch, cache,     imports Core only
               limits, progress, _version, constant_plans
    Front end  msl.*                                      Core and the front end
    Backends   backends.*                                 Core, the backends, and of the front end msl.abi only
    Face       interface, buffer, library*, ops, ...      anything

Every import counts: at module level, inside functions, and under TYPE_CHECKING. Core and the backends also keep
out of other modules' private names: no ``from x import _name`` and no ``obj._name`` on an object whose class
the module does not define (such as ``buffer._allocation``). No module is over 600 lines.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import metalgpu

PACKAGE = Path(metalgpu.__file__).resolve().parent
CORE = frozenset({"errors", "types", "sizes", "dispatch", "constant_plans", "cache", "limits", "progress",
                  "_version"})
ALLOWED = {"core": {"core"}, "front end": {"core", "front end"}, "backends": {"core", "backends", "msl.abi"},
           "face": {"core", "front end", "backends", "face", "msl.abi"}}


def layer_of(module: str) -> str:
    if module in CORE:
        return "core"
    if module == "msl" or module.startswith("msl."):
        return "front end"
    if module == "backends" or module.startswith("backends."):
        return "backends"
    return "face"


def _modules() -> dict[str, Path]:
    """Every module of the package by its name inside it ("dispatch", "msl.abi", "backends")."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name or "__init__"] = path
    return found


MODULES = _modules()


def _in_package(dotted: str) -> str | None:
    """The package's module an absolute import names, or None for another package's."""
    if dotted == "metalgpu":
        return "__init__"
    return dotted.removeprefix("metalgpu.") if dotted.startswith("metalgpu.") else None


def _imports(name: str, path: Path) -> set[str]:
    """The package's modules that ``name`` imports, anywhere in it."""
    if path.name == "__init__.py":
        package = [] if name == "__init__" else name.split(".")
    else:
        package = name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(_in_package(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else [])) or "__init__"
            else:
                module = _in_package(node.module or "")
            if module is None:
                continue
            for alias in node.names:  # `from . import cuda_repeat` names a module; `from .x import y` names x
                submodule = f"{module}.{alias.name}" if module != "__init__" else alias.name
                found.add(submodule if submodule in MODULES else module)
    found.discard(None)
    found.discard(name)
    return found


# Private names of other packages that their documentation describes (ctypes' base of its fundamental types).
DOCUMENTED = frozenset({"_SimpleCData"})
GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _allowed(source: str, target: str) -> bool:
    layer = layer_of(target)
    allowed = ALLOWED[layer_of(source)]
    return layer in allowed or (target == "msl.abi" and "msl.abi" in allowed)


def test_the_graph_is_read():
    """The reader finds imports of every kind, each a module of the package (a test of the test)."""
    assert all(target in MODULES for targets in GRAPH.values() for target in targets)
    assert {"interface", "ops", "dispatch", "errors"} <= GRAPH["__init__"]
    assert {"errors", "types"} <= GRAPH["dispatch"]
    assert {"backends", "backends.base", "buffer", "dispatch", "library"} <= GRAPH["interface"]
    assert "backends.cuda_repeat" in GRAPH["backends.cuda"]  # `from . import cuda_repeat`
    assert "msl.abi" in GRAPH["backends.cpu_compiler"] and "cache" in GRAPH["backends.cpu_compiler"]
    assert "ops" in GRAPH["interface"]  # imported inside a method


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_follow_the_layers(module):
    wrong = sorted(target for target in GRAPH[module] if not _allowed(module, target))
    assert not wrong, f"{module} ({layer_of(module)}) may not import {wrong}"


def test_the_layers_form_no_cycle():
    edges = {(layer_of(source), layer_of(target)) for source, targets in GRAPH.items() for target in targets}
    layers = {"core", "front end", "backends", "face"}
    order = []
    while layers:  # peel off a layer that imports no other layer left
        free = {layer for layer in layers if not any(a == layer and b in layers - {layer} for a, b in edges)}
        assert free, f"the layers {sorted(layers)} import each other in a circle"
        order += sorted(free)
        layers -= free
    assert order == ["core", "front end", "backends", "face"]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_is_over_600_lines(module):
    lines = MODULES[module].read_text().count("\n")
    assert lines <= 600, f"{module} has {lines} lines: split it by responsibility"


def _defined_attributes(tree: ast.Module) -> set[str]:
    """Private names a module defines for its own classes: methods, class attributes and ``self._x = ...``."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name.startswith("_"):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and node.attr.startswith("_"):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and node.id.startswith("_"):
            names.add(node.id)
    return names


@pytest.mark.parametrize("module", sorted(m for m in MODULES if layer_of(m) in ("core", "backends")))
def test_no_other_modules_private_names(module):
    tree = ast.parse(MODULES[module].read_text())
    own = _defined_attributes(tree)
    wrong = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("metalgpu")):
            wrong += [f"from {node.module} import {a.name}" for a in node.names if a.name.startswith("_")]
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            on_self = isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")
            if not on_self and node.attr not in own | DOCUMENTED:
                wrong.append(f"line {node.lineno}: .{node.attr}")
    assert not wrong, f"{module} reaches into other modules' private names: {wrong}"
