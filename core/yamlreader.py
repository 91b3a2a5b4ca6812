"""Reading an organizer's YAML file with every mistake located (file:line), collected rather
than stopping at the first. Shared by the event, schedule and moderation readers.

ruamel.yaml's round-trip loader keeps the line of every key and list item, so a semantic mistake
(an end before its start, an unknown room) is reported where it is written.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError

from .errors import ContentError

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
TIME_RE = re.compile(r"^(\d{1,2}):(\d{2})$")


class YamlReader:
    """Collects every error in one file instead of stopping at the first."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.errors: list[ContentError] = []

    def error(self, node: Any, key: Any, message: str) -> None:
        self.errors.append(ContentError(display_path(self.path), _line(node, key), message))

    def load(self) -> Any:
        try:
            return YAML(typ="rt").load(self.path.read_text(encoding="utf-8"))
        except MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark else None
            problem = exc.problem or exc.context or "invalid YAML"
            self.errors.append(
                ContentError(display_path(self.path), line, f"YAML syntax: {problem}")
            )
        except (OSError, UnicodeDecodeError) as exc:
            self.errors.append(ContentError(display_path(self.path), None, f"cannot read: {exc}"))
        return None

    def mapping(self, node: Any, where: Any, key: Any, what: str) -> dict | None:
        if not isinstance(node, dict):
            self.error(where, key, f"{what} must be a mapping of keys to values")
            return None
        return node

    def require(self, node: dict, key: str, kind: type | tuple, what: str) -> Any:
        if key not in node or node[key] is None:
            self.error(node, None, f"{what} is missing '{key}'")
            return None
        value = node[key]
        if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
            self.error(node, key, f"'{key}' must be {_kind_name(kind)}, not {value!r}")
            return None
        return value

    def optional(self, node: dict, key: str, kind: type | tuple, default: Any) -> Any:
        if node.get(key) is None:
            return default
        return self.require(node, key, kind, "")

    def slug(self, node: dict, key: str, what: str) -> str | None:
        value = self.require(node, key, str, what)
        if value is not None and not SLUG_RE.match(value):
            self.error(node, key, f"'{key}' must be lowercase letters, digits and '-': {value!r}")
            return None
        return value

    def day(self, node: dict, key: str, what: str) -> date | None:
        value = self.require(node, key, (str, date), what)
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, str):
            try:
                return date.fromisoformat(value)
            except ValueError:
                self.error(node, key, f"'{key}' is not a date (YYYY-MM-DD): {value!r}")
                return None
        return value

    def clock(self, node: dict, key: str, what: str) -> time | None:
        value = self.require(node, key, (str, int), what)
        if value is None:
            return None
        match = TIME_RE.match(str(value))
        if not match or int(match[1]) > 23 or int(match[2]) > 59:
            self.error(node, key, f"'{key}' is not a time of day (HH:MM): {value!r}")
            return None
        return time(int(match[1]), int(match[2]))


def _kind_name(kind: type | tuple) -> str:
    names = {str: "text", int: "a whole number", list: "a list", dict: "a mapping", date: "a date"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _line(node: Any, key: Any) -> int | None:
    lc = getattr(node, "lc", None)
    if lc is None:
        return None
    try:
        if key is not None and isinstance(node, dict) and key in node:
            return lc.key(key)[0] + 1
        if key is not None and isinstance(node, list):
            return lc.item(key)[0] + 1
    except (KeyError, TypeError, IndexError):
        pass
    return lc.line + 1


def display_path(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
