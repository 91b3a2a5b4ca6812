"""collector, sitegen and live never import each other; core imports none of them; admin (the
organizers' side) imports core only; the live sidecar loads no archive code; no module imports
itself through a circle of others."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PARTS = ["collector", "sitegen", "live"]


def imported_packages(package: str) -> set[tuple[str, str]]:
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found |= {(a.name.split(".")[0], str(path)) for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add((node.module.split(".")[0], str(path)))
    return found


@pytest.mark.parametrize("package", PARTS)
def test_parts_import_only_core(package):
    others = set(PARTS) - {package}
    bad = sorted(
        f"{path} imports {name}" for name, path in imported_packages(package) if name in others
    )
    assert bad == []
    assert any(name == "core" for name, _ in imported_packages(package))


def test_core_imports_no_part():
    bad = sorted(f"{p} imports {n}" for n, p in imported_packages("core") if n in PARTS + ["admin"])
    assert bad == []


def imported_modules(package: str) -> set[tuple[str, str]]:
    """Full dotted names of the project modules a package imports."""
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                found |= {(a.name, str(path)) for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add((node.module, str(path)))
    return found


def test_admin_imports_core_only():
    """The dashboard's moderation calls core.moderation, as the collector's commands do."""
    bad = sorted(
        f"{path} imports {name}"
        for name, path in imported_modules("admin")
        if name.split(".")[0] in PARTS
    )
    assert bad == []
    assert any(name == "core.moderation.decisions" for name, _ in imported_modules("admin"))
    for part in PARTS:
        assert all(n != "admin" for n, _ in imported_packages(part)), part


def test_live_never_touches_the_archive():
    """The live sidecar reads Redis only (DESIGN.md)."""
    names = {n for n, _ in imported_packages("live")}
    assert "sqlite3" not in names and "sqlite_utils" not in names
    for path in (ROOT / "live").rglob("*.py"):
        assert "core.archive" not in path.read_text(), path


def test_the_live_sidecar_loads_neither_the_archive_nor_sqlite_utils():
    """Imported in a fresh interpreter: what actually loads, not what the source text says
    (a package __init__ that imports the archive eagerly would slip past the test above)."""
    code = "import sys, live.app; print(' '.join(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, check=True)  # fmt: skip
    loaded = set(result.stdout.split())
    assert "live.app" in loaded
    assert not {"core.archive", "sqlite_utils", "sqlite3"} & loaded


def project_modules() -> dict[str, Path]:
    """Every module of the project's packages (the folders beside tests/ with an __init__.py)."""
    found = {}
    for init in sorted(ROOT.glob("*/__init__.py")):
        if init.parent.name in ("tests", "scripts"):
            continue
        for path in init.parent.rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def ancestors(module: str) -> set[str]:
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def import_graph() -> dict[str, set[str]]:
    """module -> the project modules it imports at any point (a function-level import counts
    too: it is a cycle waiting for its caller), with each imported module's packages, whose
    __init__ runs first; a module's own packages are left out (they always run before it)."""
    modules = project_modules()
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([node.module] if node.module else []))
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    found.add(sub if sub in modules else base)
        found |= {a for f in found for a in ancestors(f)}
        graph[name] = {f for f in found if f in modules and f != name} - ancestors(name)
    return graph


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    assert {"core.events", "core.schedule", "collector.store", "admin.app"} <= set(graph)
    assert "core.schedule" in graph["core.events"]  # the graph sees relative imports
    state: dict[str, str] = {}
    cycles = []

    def visit(module: str, stack: list[str]) -> None:
        state[module] = "open"
        stack.append(module)
        for other in sorted(graph[module]):
            if state.get(other) == "open":
                cycles.append(" -> ".join(stack[stack.index(other) :] + [other]))
            elif other not in state:
                visit(other, stack)
        stack.pop()
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [])
    assert cycles == []
