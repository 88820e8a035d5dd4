"""The layers' arrows, read from the code's imports so they stay true.

Every import counts: at module level, inside functions and under
``TYPE_CHECKING`` alike, since a cycle hidden in any of them is still a
missing seam.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: folder -> the package name it installs as (pyproject's package-dir)
FOLDERS = {"app": "gantry", "backends": "gantry.backends", "drivers": "gantry.drivers"}
#: What the API may import of the instrument side: the facade and its schemas.
API_MAY_USE = ("gantry.instruments.service", "gantry.instruments.schemas")
#: The public client knows the server only by its wire schemas.
CLIENT_MAY_USE = ("gantry.client", "gantry.schemas", "gantry.instruments.schemas")
#: ... and of the world beyond the standard library only these.
CLIENT_LIBRARIES = {"httpx", "anyio", "pydantic", "pydantic_core", "xarray", "netCDF4"}


def _module_name(path: Path) -> str:
    folder, *parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([FOLDERS[folder], *parts])


def _modules() -> dict[str, Path]:
    found = {}
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            found[_module_name(path)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> Iterator[tuple[str, int]]:
    """(module imported, line) for every import statement anywhere in the file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                # ``from gantry.jobs import engine`` imports the submodule.
                sub = f"{base}.{alias.name}"
                yield (sub if sub in MODULES else base), node.lineno


def _edges() -> dict[str, list[tuple[str, int]]]:
    return {name: list(_imports(name, path)) for name, path in MODULES.items()}


EDGES = _edges()


def _violations(source_prefix: str, allowed: tuple[str, ...]) -> list[str]:
    """Imports of gantry code by ``source_prefix`` modules outside ``allowed`` prefixes."""
    bad = []
    for name, imports in EDGES.items():
        if name != source_prefix and not name.startswith(source_prefix + "."):
            continue
        for target, line in imports:
            inside = target == "gantry" or target.startswith("gantry.")
            if inside and not any(target == a or target.startswith(a + ".") for a in allowed):
                bad.append(f"{MODULES[name].relative_to(ROOT)}:{line} imports {target}")
    return bad


def test_every_module_is_found() -> None:
    assert "gantry.jobs.engine" in MODULES
    assert "gantry.backends.base" in MODULES
    assert "gantry.drivers.interface_2_0" in MODULES


@pytest.mark.parametrize("plugins", ["gantry.backends", "gantry.drivers"])
def test_plugins_import_only_their_own_contracts(plugins: str) -> None:
    assert _violations(plugins, (plugins,)) == []


def test_the_engine_knows_no_http() -> None:
    bad = [
        f"{MODULES[name].relative_to(ROOT)}:{line} imports {target}"
        for name, imports in EDGES.items()
        if name.startswith("gantry.jobs")
        for target, line in imports
        if target.startswith(("gantry.api", "fastapi", "starlette"))
    ]
    assert bad == []


def test_the_api_talks_to_the_instrument_facade_only() -> None:
    bad = [
        f"{MODULES[name].relative_to(ROOT)}:{line} imports {target}"
        for name, imports in EDGES.items()
        if name.startswith("gantry.api")
        for target, line in imports
        if target.startswith("gantry.drivers")
        or (target.startswith("gantry.instruments") and not target.startswith(API_MAY_USE))
    ]
    assert bad == []


def test_the_client_imports_only_the_wire_schemas_and_its_libraries() -> None:
    assert _violations("gantry.client", CLIENT_MAY_USE) == []
    outside = [
        f"{MODULES[name].relative_to(ROOT)}:{line} imports {target}"
        for name, imports in EDGES.items()
        if name == "gantry.client" or name.startswith("gantry.client.")
        for target, line in imports
        if (top := target.split(".")[0]) != "gantry"
        and top not in sys.stdlib_module_names
        and top not in CLIENT_LIBRARIES
    ]
    assert outside == []


def test_the_cli_talks_http_through_the_client_only() -> None:
    bad = [
        f"{MODULES[name].relative_to(ROOT)}:{line} imports {target}"
        for name, imports in EDGES.items()
        if name == "gantry.cli" or name.startswith("gantry.cli.")
        for target, line in imports
        if target.split(".")[0] in ("httpx", "fastapi", "starlette")
        or target.startswith("gantry.api")
    ]
    assert bad == []


def test_no_module_imports_the_old_top_level_names() -> None:
    bad = [
        f"{MODULES[name].relative_to(ROOT)}:{line} imports {target}"
        for name, imports in EDGES.items()
        for target, line in imports
        if target.split(".")[0] in FOLDERS
    ]
    assert bad == []


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    graph = {
        name: sorted({t for t, _ in imports if t in MODULES and t != name})
        for name, imports in EDGES.items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_anywhere() -> None:
    assert _cycles() == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The check above can fail: a planted cycle is found."""
    EDGES["gantry.settings"].append(("gantry.models", 0))
    EDGES["gantry.models"].append(("gantry.settings", 0))
    try:
        assert ["gantry.models", "gantry.settings"] in _cycles()
    finally:
        EDGES["gantry.settings"].pop()
        EDGES["gantry.models"].pop()


def test_no_module_over_400_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for path in MODULES.values()
        if (n := len(path.read_text().splitlines())) > 400
    }
    assert long == {}
