"""The direction of dependencies and the public surface of every package (STYLE.md).

Imports are read with ``ast`` from the source, so an import inside a function or under
``if TYPE_CHECKING:`` counts too. Adjust the tables below, not the tests.
"""

from __future__ import annotations

import ast
import importlib
import re
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT

ALL = "*"

#: First-party packages (or single dotted modules) each top-level package may import,
#: besides itself. A top-level package missing here fails test_every_package_has_a_rule.
MAY_IMPORT: dict[str, set[str] | str] = {
    "protocol": set(),  # pure: wire models, codec, topics
    "routing": set(),  # shared routing core (DESIGN: never inside edge or cloud)
    "sync": {"protocol"},  # shared store + MQTT link, used by edge and cloud alike
    "edge": {"protocol", "routing", "sync"},  # never cloud
    "cloud": {"protocol", "routing", "sync"},  # never edge
    # drives real edge agents; wayline.serve is a leaf (uvicorn in a thread, no edge/cloud)
    "firmware_sim": {"protocol", "routing", "sync", "edge", "wayline.serve"},
    "wayline": ALL,  # the CLI: composes every deployable
    "bench": ALL,  # benchmarks compare everything
}

#: Third-party (non-stdlib) top-level modules a package may import; absent = any.
THIRD_PARTY_ONLY: dict[str, set[str]] = {
    "protocol": {"pydantic", "msgpack"},
}

#: The cloud's solvers and the demo's data and plotting libraries: never in an edge install.
CLOUD_ONLY = {"ortools", "pyvrp", "vroom", "pandas", "matplotlib"}

#: Third-party modules a package must never import.
NEVER_IMPORTS: dict[str, set[str]] = {
    "routing": {"paho"} | CLOUD_ONLY,
    "protocol": {"paho"} | CLOUD_ONLY,
    "sync": CLOUD_ONLY,
    # OR-Tools and PyVRP only in the optional sequencer modules (CONFINED), imported by
    # make_sequencer only when asked for or when the compiled search is not built
    # (tests/test_packaging.py runs the edge processes)
    "edge": CLOUD_ONLY - {"ortools", "pyvrp"},
}


@dataclass(frozen=True)
class Confined:
    """A third-party module only some modules may import."""

    module_pattern: str  # regex searched in the dotted module name, e.g. "edge.store"
    max_per_package: int | None  # modules per top-level package that may import it


#: Third-party modules kept behind one boundary module per package.
CONFINED: dict[str, Confined] = {
    "paho": Confined(r".", 1),
    "ortools": Confined(r"solver|planner", 1),
    "pyvrp": Confined(r"solver|planner", 1),
}
#: Packages exempt from CONFINED (benchmarks import every solver on purpose).
CONFINED_EXEMPT = {"bench"}

#: Directories at the top of the repository that are not importable code of ours.
NOT_PACKAGES = {"tests", "docs", "deploy", "build", "report", "var"}


def top_level_packages() -> list[str]:
    return sorted(
        path.name
        for path in REPO_ROOT.iterdir()
        if (path / "__init__.py").is_file()
        and not path.name.startswith(".")
        and path.name not in NOT_PACKAGES
    )


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> list[tuple[str, Path]]:
    found = []
    for package in top_level_packages():
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            found.append((module_name(path), path))
    return found


def imports_of(name: str, path: Path) -> set[str]:
    """Absolute dotted names imported by a module (relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    package_parts = name.split(".") if is_package else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
    return found


def top(name: str) -> str:
    return name.split(".")[0]


def is_stdlib(name: str) -> bool:
    return top(name) in sys.stdlib_module_names


MODULES = modules()
IMPORTS = {name: imports_of(name, path) for name, path in MODULES}


def test_every_package_has_a_rule() -> None:
    missing = [p for p in top_level_packages() if p not in MAY_IMPORT]
    assert not missing, f"add these packages to MAY_IMPORT in {__file__}: {missing}"


@pytest.mark.parametrize("name", [n for n, _ in MODULES])
def test_first_party_direction(name: str) -> None:
    package = top(name)
    allowed = MAY_IMPORT.get(package, set())
    if allowed == ALL:
        return
    first_party = set(top_level_packages())
    bad = sorted(
        imported
        for imported in IMPORTS[name]
        if top(imported) in first_party
        and top(imported) != package
        and not any(imported == a or imported.startswith(a + ".") for a in allowed)
    )
    assert not bad, f"{name} imports {bad}; {package} may import only {sorted(allowed)}"


@pytest.mark.parametrize("name", [n for n, _ in MODULES])
def test_third_party_allowed(name: str) -> None:
    package = top(name)
    first_party = set(top_level_packages())
    third_party = {top(i) for i in IMPORTS[name] if not is_stdlib(i) and top(i) not in first_party}
    if package in THIRD_PARTY_ONLY:
        extra = sorted(third_party - THIRD_PARTY_ONLY[package])
        assert not extra, (
            f"{name} imports {extra}; {package} may import only the standard library and "
            f"{sorted(THIRD_PARTY_ONLY[package])}"
        )
    forbidden = sorted(third_party & NEVER_IMPORTS.get(package, set()))
    assert not forbidden, f"{name} imports {forbidden}, which {package} must never import"


@pytest.mark.parametrize("library", sorted(CONFINED))
def test_confined_libraries(library: str) -> None:
    rule = CONFINED[library]
    importers: dict[str, list[str]] = {}
    for name, imported in IMPORTS.items():
        if top(name) in CONFINED_EXEMPT:
            continue
        if any(top(i) == library for i in imported):
            importers.setdefault(top(name), []).append(name)
    problems = []
    for package, names in sorted(importers.items()):
        wrong = [n for n in names if not re.search(rule.module_pattern, n)]
        if wrong:
            problems.append(
                f"{wrong} import {library}; only modules matching {rule.module_pattern!r} may"
            )
        if rule.max_per_package is not None and len(names) > rule.max_per_package:
            problems.append(
                f"{package}: {len(names)} modules import {library} ({names}); "
                f"at most {rule.max_per_package} per package may"
            )
    assert not problems, "\n".join(problems)


# --- the public surface: __all__ (httpx style) -----------------------------------------


def packages_with_init() -> list[tuple[str, Path]]:
    return [(n, p) for n, p in MODULES if p.name == "__init__.py" and top(n) != "bench"]


def public_names_bound(path: Path) -> set[str]:
    """Public names an ``__init__.py`` defines or re-exports from our own modules.

    Names imported from the standard library or third parties (``Any``, ``TYPE_CHECKING``)
    are not re-exports; neither are ``import x`` module bindings.
    """
    first_party = set(top_level_packages())
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            if node.level or top(node.module or "") in first_party:
                names.update(a.asname or a.name for a in node.names)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return {n for n in names if not n.startswith("_") and n != "*"}


@pytest.mark.parametrize(
    "name,path", packages_with_init(), ids=[n for n, _ in packages_with_init()]
)
def test_all_is_present_exact_and_complete(name: str, path: Path) -> None:
    module = importlib.import_module(name)
    bound = public_names_bound(path)
    exported = getattr(module, "__all__", None)
    if exported is None:
        assert not bound, f"{name}/__init__.py binds {sorted(bound)} but has no __all__"
        return
    assert len(exported) == len(set(exported)), f"{name}.__all__ has duplicates"
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names {missing}, which {name} does not define"
    not_listed = sorted(
        n
        for n in bound
        if n not in exported and not isinstance(getattr(module, n, None), types.ModuleType)
    )
    assert not not_listed, f"{name} re-exports {not_listed} without listing them in __all__"
