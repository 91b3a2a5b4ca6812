"""The README is the manual: every setting and every command is documented and has help."""

import importlib
import subprocess
import sys
from pathlib import Path

import click
import pytest

from core.settings import settings_help

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


@pytest.mark.parametrize("name", [row[0] for row in settings_help()])
def test_setting_is_documented(name):
    assert f"`{name}`" in README


def commands(group: click.Group, prefix: str):
    for name, command in group.commands.items():
        yield f"{prefix} {name}", command
        if isinstance(command, click.Group):
            yield from commands(command, f"{prefix} {name}")


ALL = [
    (path, command)
    for part in ("collector", "sitegen", "live", "admin")
    if (ROOT / part / "cli.py").exists()
    for path, command in commands(importlib.import_module(f"{part}.cli").cli, f"python -m {part}")
]


@pytest.mark.parametrize("path,command", ALL, ids=[p for p, _ in ALL])
def test_command_has_help(path, command):
    assert command.help and command.help.strip(), path


@pytest.mark.parametrize("path", [p for p, _ in ALL])
def test_command_is_in_readme(path):
    assert path in README


def test_makefile_targets_have_readme_sections():
    for target in ("help", "demo", "run", "collect", "site", "live", "test", "bench"):
        assert f"### `make {target}`" in README, target


def test_readme_starts_with_the_two_commands():
    head = README[:1500]
    assert "make demo" in head and "make test" in head


def test_readme_generated_sections_are_current():
    """Settings, commands, `make help` and the live flow are read off the code."""
    result = subprocess.run([sys.executable, "scripts/update_readme.py", "--check"], cwd=ROOT,
                            capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stderr
