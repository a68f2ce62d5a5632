"""Only one module of the re-sequencer imports OR-Tools, only one imports PyVRP."""

from __future__ import annotations

import ast
from pathlib import Path

import edge.sequencer

PKG = Path(edge.sequencer.__file__).parent


def _importers(top: str) -> list[str]:
    found = []
    for path in sorted(PKG.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            if any(n == top or n.startswith(top + ".") for n in names):
                found.append(path.name)
                break
    return found


def test_one_module_per_solver_library() -> None:
    assert _importers("ortools") == ["ortools_solver.py"]
    assert _importers("pyvrp") == ["pyvrp_solver.py"]


def test_public_surface_is_complete() -> None:
    for name in edge.sequencer.__all__:
        assert getattr(edge.sequencer, name) is not None
