"""The test functions of the repository, found by parsing `tests/` (never by importing it).

The control map cites tests as ``tests/<file>.py::<function>``; :func:`missing_tests`
names every citation that does not exist, so the map can never cite a test that is gone.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

from paymig.errors import ConfigError


def find_tests_dir(start: Path | None = None) -> Path:
    """`tests/` in the working directory, else at the repository root."""
    for folder in (start or Path.cwd(), Path(__file__).resolve().parents[3]):
        candidate = folder / "tests"
        if candidate.is_dir():
            return candidate
    raise ConfigError("tests/: not found; the control map cites tests, run it from the repository")


def _functions(tree: ast.Module) -> Iterable[str]:
    """`test_*` functions at module level and in `Test*` classes, as node-id suffixes."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith(
            "test_"
        ):
            yield node.name
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    yield f"{node.name}::{item.name}"


def collect_node_ids(tests_dir: Path) -> set[str]:
    """Every test function's node id (`tests/x.py::test_y`) under `tests_dir`."""
    root = tests_dir.parent
    found: set[str] = set()
    for path in sorted(tests_dir.rglob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        relative = path.relative_to(root).as_posix()
        found.update(f"{relative}::{name}" for name in _functions(tree))
    return found


def missing_tests(cited: Iterable[str], tests_dir: Path) -> list[str]:
    """The cited node ids that no test function in `tests_dir` has."""
    known = collect_node_ids(tests_dir)
    return sorted({node for node in cited if node not in known})
