"""content/<event>/moderation.yaml: what an organizer keeps under version control, read with
every mistake located, and synced into the archive.

Content and archive agree this way: entries from moderation.yaml are stored with
origin=content. `sync_entries` (run by `Moderator.sync_content`: by `collector run` and
`collector replay` at start, and by `collector moderation-sync`) makes the content entries
exactly what the file says, adding, changing and removing them; entries an organizer made
(origin=organizer) are left alone; one the file also lists becomes origin=content. The CLI and
the dashboard refuse to remove a content entry: that is done in the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import ContentErrors
from ..yamlreader import YamlReader
from .queries import approve_first
from .rules import RULE_ACTIONS, RULE_KINDS, account_key, check_rule

CONTENT_FILE = "moderation.yaml"


@dataclass(frozen=True)
class ContentModeration:
    """What an event's moderation.yaml says. approve_first is None when the file leaves it out."""

    approve_first: bool | None = None
    rules: tuple[tuple[str, str, str, str], ...] = ()  # (kind, pattern, action, why)
    hidden: tuple[tuple[str, str], ...] = ()  # (uri, why)
    blocked: tuple[tuple[str, str], ...] = ()  # (account key, why)


KNOWN_KEYS = {"approve_first", "rules", "hidden", "blocked"}


def load_content_moderation(folder: Path) -> ContentModeration | None:
    """Read `folder/moderation.yaml` (None when there is none); ContentErrors lists every mistake."""
    path = Path(folder) / CONTENT_FILE
    if not path.exists():
        return None
    reader = YamlReader(path)
    data = reader.load()
    if data is None or not reader.mapping(data, data, None, CONTENT_FILE):
        if reader.errors:
            raise ContentErrors(reader.errors)
        return ContentModeration()
    for key in data:
        if key not in KNOWN_KEYS:
            reader.error(data, key, f"unknown key {key!r} (known: {', '.join(sorted(KNOWN_KEYS))})")
    first = reader.optional(data, "approve_first", bool, None)
    found = ContentModeration(first, tuple(_content_rules(reader, data)),
                              tuple(_content_list(reader, data, "hidden", "uri")),
                              tuple(_content_list(reader, data, "blocked", "account")))  # fmt: skip
    if reader.errors:
        raise ContentErrors(reader.errors)
    return found


def _content_rules(reader: YamlReader, data: dict) -> list[tuple[str, str, str, str]]:
    found = []
    for i, node in enumerate(reader.optional(data, "rules", list, []) or []):
        if not reader.mapping(node, data["rules"], i, "a rule"):
            continue
        kinds = [k for k in RULE_KINDS if k in node]
        if len(kinds) != 1:
            reader.error(node, None, "a rule needs exactly one of 'keyword' or 'pattern'")
            continue
        pattern = reader.require(node, kinds[0], str, "a rule")
        action = reader.optional(node, "action", str, "hide")
        why = reader.optional(node, "why", str, "") or ""
        if action not in RULE_ACTIONS:
            reader.error(node, "action", f"'action' must be hide or hold, not {action!r}")
        elif pattern is not None:
            try:
                check_rule(kinds[0], pattern)
            except ValueError as exc:
                reader.error(node, kinds[0], str(exc))
            else:
                found.append((kinds[0], pattern, action, why))
    return found


def _content_list(reader: YamlReader, data: dict, key: str, field: str) -> list[tuple[str, str]]:
    found = []
    for i, node in enumerate(reader.optional(data, key, list, []) or []):
        if isinstance(node, str):
            node_value, why = node, ""
        elif reader.mapping(node, data[key], i, f"an entry of {key!r}"):
            node_value = reader.require(node, field, str, f"an entry of {key!r}")
            why = reader.optional(node, "why", str, "") or ""
        else:
            continue
        if node_value and node_value.strip():
            value = account_key(node_value) if field == "account" else node_value.strip()
            found.append((value, why))
    return found


def sync_entries(
    db, event: str, found: ContentModeration, who: str, now: str
) -> list[tuple[str, str, str]]:
    """Apply the file's entries as origin=content; return (action, target, why) per difference."""
    differences: list[tuple[str, str, str]] = []
    if found.approve_first is not None and found.approve_first != approve_first(db, event):
        db.execute(
            "INSERT INTO moderation (event, approve_first, version) VALUES (?, ?, 0) "
            "ON CONFLICT (event) DO UPDATE SET approve_first = excluded.approve_first",
            [event, int(found.approve_first)],
        )
        differences.append((f"approve-first {'on' if found.approve_first else 'off'}", event, ""))
    for table, column, action, wanted in (
        ("moderation_hidden", "uri", "hide", found.hidden),
        ("moderation_blocks", "account", "block", found.blocked),
    ):
        differences += _sync_table(db, table, column, action, event, dict(wanted), who, now)
    differences += _sync_rules(db, event, found.rules, who, now)
    return differences


def _sync_table(db, table, column, action, event, wanted: dict[str, str], who, now):
    have = {v: (o, w) for v, o, w in db.execute(
        f"SELECT {column}, origin, why FROM {table} WHERE event = ?", [event])}  # fmt: skip
    out = []
    for value, (origin, _why) in have.items():
        if origin == "content" and value not in wanted:
            db.execute(f"DELETE FROM {table} WHERE event = ? AND {column} = ?", [event, value])
            out.append((f"un{action}", value, "removed from content"))
    for value, why in wanted.items():
        if have.get(value) != ("content", why):
            db.execute(
                f"INSERT INTO {table} (event, {column}, origin, who, at, why) "
                f"VALUES (?, ?, 'content', ?, ?, ?) ON CONFLICT (event, {column}) DO UPDATE SET "
                "origin = 'content', who = excluded.who, at = excluded.at, why = excluded.why",
                [event, value, who, now, why],
            )
            if value not in have:
                out.append((action, value, why))
    return out


def _sync_rules(db, event, wanted, who, now):
    have = {(k, p): (i, a, o, w) for i, k, p, a, o, w in db.execute(
        "SELECT id, kind, pattern, action, origin, why FROM moderation_rules WHERE event = ?",
        [event])}  # fmt: skip
    wanted_keys = {(k, p) for k, p, _a, _w in wanted}
    out = []
    for (kind, pattern), (rule_id, action, origin, _why) in have.items():
        if origin == "content" and (kind, pattern) not in wanted_keys:
            db.execute("DELETE FROM moderation_rules WHERE id = ?", [rule_id])
            out.append(
                ("rule remove", f"#{rule_id} {kind} {pattern!r} {action}", "removed from content")
            )
    for kind, pattern, action, why in wanted:
        old = have.get((kind, pattern))
        if old is None:
            db.execute(
                "INSERT INTO moderation_rules (event, kind, pattern, action, origin, who, at, why) "
                "VALUES (?, ?, ?, ?, 'content', ?, ?, ?)",
                [event, kind, pattern, action, who, now, why],
            )
            out.append(("rule add", f"{kind} {pattern!r} {action}", why))
        elif old[1:] != (action, "content", why):
            db.execute(
                "UPDATE moderation_rules SET action = ?, origin = 'content', who = ?, at = ?, "
                "why = ? WHERE id = ?",
                [action, who, now, why, old[0]],
            )
            out.append(("rule change", f"#{old[0]} {kind} {pattern!r} {action}", why))
    return out
