"""Regenerate the README's sections that are read off the code, so they cannot drift.

Each section sits between `<!-- begin NAME -->` and `<!-- end NAME -->`:
  settings   every setting, its default and help (core/settings.py)
  commands   every command of every part with its one-line help (the click groups)
  make-help  what `make help` prints
  live-flows the live sidecar's flow, from live/fanout.py's docstring

    python scripts/update_readme.py          rewrite README.md
    python scripts/update_readme.py --check  exit 1 if README.md is out of date (a test runs this)
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.settings import settings_help  # noqa: E402

PARTS = ("collector", "sitegen", "live", "admin")


def settings() -> str:
    rows = ["| variable | default | what it does |", "| --- | --- | --- |"]
    rows += [f"| `{name}` | `{default}` | {text} |" for name, default, text in settings_help()]
    return "\n".join(rows)


def command_paths(group: click.Group, prefix: str):
    for name in sorted(group.commands):
        command = group.commands[name]
        if isinstance(command, click.Group):
            yield from command_paths(command, f"{prefix} {name}")
        else:
            yield f"{prefix} {name}", command


def parts() -> list[str]:
    return [p for p in PARTS if (ROOT / p / "cli.py").exists()]


def all_commands() -> list[tuple[str, click.Command]]:
    found = []
    for part in parts():
        group = importlib.import_module(f"{part}.cli").cli
        found += command_paths(group, f"python -m {part}")
    return found


def commands() -> str:
    rows = ["| command | what it does |", "| --- | --- |"]
    for path, command in all_commands():
        rows.append(f"| `{path}` | {command.get_short_help_str(limit=120)} |")
    return "\n".join(rows)


def make_help() -> str:
    out = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    return "```console\n$ make help\n" + out.rstrip() + "\n```"


def live_flows() -> str:
    doc = importlib.import_module("live.fanout").__doc__ or ""
    return "```text\n" + doc.strip() + "\n```"


SECTIONS = {"settings": settings, "commands": commands, "make-help": make_help,
            "live-flows": live_flows}  # fmt: skip


def render(readme: str) -> str:
    for name, make in SECTIONS.items():
        pattern = re.compile(rf"(<!-- begin {name} -->\n).*?(<!-- end {name} -->)", re.S)
        if not pattern.search(readme):
            raise SystemExit(
                f"README.md has no <!-- begin {name} --> … <!-- end {name} --> section"
            )
        body = make()
        readme = pattern.sub(lambda m, body=body: m.group(1) + body + "\n" + m.group(2), readme)
    return readme


def main(argv: list[str]) -> int:
    path = ROOT / "README.md"
    old = path.read_text()
    new = render(old)
    if "--check" in argv:
        if new != old:
            print(
                "README.md is out of date: run `python scripts/update_readme.py`", file=sys.stderr
            )
            return 1
        return 0
    path.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
