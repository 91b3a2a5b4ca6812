"""collector, sitegen and live never import each other; core imports none of them; admin (the
organizers' side) imports core and collector's moderation API only."""

import ast
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


def test_admin_imports_core_and_collector_moderation_only():
    allowed = {"collector.moderation"}
    bad = sorted(
        f"{path} imports {name}"
        for name, path in imported_modules("admin")
        if name.split(".")[0] in PARTS and name not in allowed
    )
    assert bad == []
    assert any(name == "collector.moderation" for name, _ in imported_modules("admin"))
    for part in PARTS:
        assert all(n != "admin" for n, _ in imported_packages(part)), part


def test_live_never_touches_the_archive():
    """The live sidecar reads Redis only (DESIGN.md)."""
    names = {n for n, _ in imported_packages("live")}
    assert "sqlite3" not in names and "sqlite_utils" not in names
    for path in (ROOT / "live").rglob("*.py"):
        assert "core.archive" not in path.read_text(), path
