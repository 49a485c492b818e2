"""The shape of hub/ that the layers contracts (import-linter, pyproject.toml) do not cover: no import
cycle between modules (imports under TYPE_CHECKING counted), no module over MAX_LINES, no private
name (`_x`) used outside the module that defines it."""

from __future__ import annotations

import ast
from pathlib import Path

import grimp
import pytest

HUB = Path(__file__).resolve().parents[2] / "hub"
MAX_LINES = 450


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("hub", cache_dir=None)  # TYPE_CHECKING imports included by default


def modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(HUB.rglob("*.py")):
        parts = path.relative_to(HUB.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found.append((".".join(parts), path))
    return found


def is_package(name: str) -> bool:
    return (HUB.parent / name.replace(".", "/") / "__init__.py").exists()


def is_module(name: str) -> bool:
    return is_package(name) or (HUB.parent / (name.replace(".", "/") + ".py")).exists()


def test_no_import_cycle(graph: grimp.ImportGraph) -> None:
    edges: dict[str, set[str]] = {}
    for module in graph.modules:
        if not module.startswith("hub"):
            continue
        edges[module] = {
            imported
            for imported in graph.find_modules_directly_imported_by(module)
            if imported.startswith("hub")
            # a package's __init__ re-exporting its own children is not a cycle
            and not (is_package(module) and imported.startswith(module + "."))
        }
    cycles = strongly_connected(edges)
    assert cycles == [], "import cycles in hub/: " + "; ".join(" <-> ".join(sorted(c)) for c in cycles)


def strongly_connected(edges: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iterative: the components with more than one module or a self-import."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1 or node in edges.get(node, ()):
                    found.append(component)
    return found


def test_the_cycle_finder_finds_cycles() -> None:
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]
    assert strongly_connected({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize(("name", "path"), modules(), ids=[name for name, _ in modules()])
def test_module_size(name: str, path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines (at most {MAX_LINES}): split it by concept"


def private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_uses(path: Path, module: str) -> list[str]:
    """`from x import _y`, and `m._y` where m names a module imported here."""
    tree = ast.parse(path.read_text())
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    module_aliases: set[str] = set()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                if private(alias.name):
                    found.append(f"line {node.lineno}: from {base} import {alias.name}")
                elif is_module(f"{base}.{alias.name}"):
                    module_aliases.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    module_aliases.add(alias.asname)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in module_aliases
            and private(node.attr)
        ):
            found.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
    return found


def test_no_private_name_used_across_modules() -> None:
    found = {name: uses for name, path in modules() if (uses := private_uses(path, name))}
    assert found == {}


def test_the_private_name_check_sees_both_spellings(tmp_path: Path) -> None:
    source = tmp_path / "x.py"
    source.write_text("from .store import _hidden, shown\nfrom . import validation as v\nv._fast(1)\n")
    assert private_uses(source, "hub.streams.x") == ["line 1: from hub.streams.store import _hidden", "line 3: v._fast"]
