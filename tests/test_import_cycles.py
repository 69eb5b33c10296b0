"""No import cycles between the modules of src/paymig.

Every ``import`` and ``from ... import`` is read with :mod:`ast`, wherever it is written
(module level, inside a function, under ``if TYPE_CHECKING:``), so a lazy import that
closes a circle counts as much as a top-level one. A ``from pkg import name`` is an edge
to the submodule ``pkg.name`` when there is one, otherwise to ``pkg`` itself.
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterable, Mapping
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT_PACKAGE = "paymig"

Graph = Mapping[str, set[str]]


def _module_name(path: Path, src: Path) -> str:
    """`src/paymig/cli/__init__.py` -> `paymig.cli`; `src/paymig/naming.py` -> `paymig.naming`."""
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _owner(name: str, modules: set[str]) -> str | None:
    """The longest prefix of a dotted name that is one of our modules (None: external)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def _targets(node: ast.AST, module: str, is_package: bool, modules: set[str]) -> Iterable[str]:
    """The modules of ours that one import statement loads."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            owner = _owner(alias.name, modules)
            if owner is not None:
                yield owner
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            package = module.split(".") if is_package else module.split(".")[:-1]
            base_parts = package[: len(package) - (node.level - 1)]
            base = ".".join([*base_parts, *([node.module] if node.module else [])])
        else:
            base = node.module or ""
        for alias in node.names:
            submodule = f"{base}.{alias.name}"
            owner = submodule if submodule in modules else _owner(base, modules)
            if owner is not None:
                yield owner


def import_graph(src: Path, root: str = ROOT_PACKAGE) -> dict[str, set[str]]:
    """Module -> the modules of ours it imports, for every `.py` file under `src/root`."""
    files = {_module_name(p, src): p for p in sorted((src / root).rglob("*.py"))}
    modules = set(files)
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        graph[module] = {
            target
            for node in ast.walk(tree)
            for target in _targets(node, module, is_package, modules)
        }
    return graph


def strongly_connected(graph: Graph) -> list[list[str]]:
    """Tarjan's strongly connected components, each sorted, in a stable order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph.get(node, ())):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(components)


def _cycle_through(graph: Graph, start: str, members: set[str]) -> list[str]:
    """A shortest path start -> ... -> start inside one component (for the message)."""
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for succ in sorted(graph.get(node, ())):
            if succ not in members:
                continue
            if succ == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [*reversed(path), start]
            if succ not in came_from:
                came_from[succ] = node
                queue.append(succ)
    raise AssertionError(f"{start} is on no cycle of its component")  # pragma: no cover


def import_cycles(graph: Graph) -> list[list[str]]:
    """One concrete cycle per component of more than one module, or per self-import."""
    cycles = []
    for component in strongly_connected(graph):
        head = component[0]
        if len(component) > 1 or head in graph.get(head, ()):
            cycles.append(_cycle_through(graph, head, set(component)))
    return cycles


# --------------------------------------------------------------------------- tests


def test_cycle_finder_names_a_cycle_and_a_self_import() -> None:
    graph = {
        "a": {"b"},
        "b": {"c", "d"},
        "c": {"a"},
        "d": set(),
        "e": {"e"},
        "f": {"d"},
    }
    assert strongly_connected(graph) == [["a", "b", "c"], ["d"], ["e"], ["f"]]
    assert import_cycles(graph) == [["a", "b", "c", "a"], ["e", "e"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []


def test_graph_reads_lazy_relative_and_submodule_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from pkg import leaf\n")
    (pkg / "leaf.py").write_text("import os\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "one.py").write_text(
        "from . import two\nfrom ..leaf import x\n\ndef f():\n    from pkg.sub import attr\n"
    )
    (pkg / "sub" / "two.py").write_text("import pkg.sub.one\n")
    graph = import_graph(tmp_path, "pkg")
    assert graph == {
        "pkg": {"pkg.leaf"},
        "pkg.leaf": set(),
        "pkg.sub": set(),
        "pkg.sub.one": {"pkg.sub.two", "pkg.leaf", "pkg.sub"},
        "pkg.sub.two": {"pkg.sub.one"},
    }
    assert import_cycles(graph) == [["pkg.sub.one", "pkg.sub.two", "pkg.sub.one"]]


def test_src_has_no_import_cycle() -> None:
    graph = import_graph(SRC)
    assert "paymig.cli" in graph and "paymig.runbook.render" in graph
    cycles = import_cycles(graph)
    assert cycles == [], "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_runbook_does_not_import_the_cli() -> None:
    """The CLI renders the runbook and hands it a command checker; never the reverse."""
    graph = import_graph(SRC)
    offenders = {
        module: sorted(t for t in targets if t == "paymig.cli" or t.startswith("paymig.cli."))
        for module, targets in graph.items()
        if module == "paymig.runbook" or module.startswith("paymig.runbook.")
    }
    assert {m: t for m, t in offenders.items() if t} == {}
    assert "paymig.runbook.render" in offenders
