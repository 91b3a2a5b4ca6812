"""Moderation's shared half: what a rule matches, the moderation tables' read queries, the
content file `content/<event>/moderation.yaml`, and the rebuild request file.

Decisions are made (and published) by `collector/moderation.py`; this module only reads, so the
dashboard and sitegen can use it too. The tables are created by `m003_moderation` in
core/archive.py.

Statuses of an item (`items.status`): `visible` (on pages and the live tail), `moderated` (hidden
by an organizer's decision, a blocked account or a hide rule), `held` (waiting in the approval
queue), `deleted` (retracted at the source) and `hidden` (the author's own choice, e.g. Bluesky's
"!no-unauthenticated": moderation never shows those). Only `visible` items reach
`core.archive.visible_items`, so sitegen needs nothing else.

What a rule sees: the post's plain text, its content warning, its author's display name and its
media's alt texts, joined by newlines (`match_text`). A `keyword` rule matches a whole word or
phrase, ignoring case; a `pattern` rule is a Python regular expression searched ignoring case.
A rule's action is `hide` (the post is moderated, now and later) or `hold` (a new post matching
it waits in the approval queue even when approve-first is off; posts already shown stay).

Accounts are blocked by author id (an account URI, a DID, a Flickr NSID) or by handle, compared
without a leading '@' and ignoring case (`account_key`).

Rebuild requests: a decision that changes what pages show writes
`<var_dir>/rebuild/<event>.json` ({"event", "at", "reason", "last_seq"}) with
`request_rebuild`; the site scheduler calls `take_rebuild_request` (an atomic rename, so a
request written during a build is never lost) and rebuilds when it returns a request.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from .errors import ContentErrors
from .items import Item, format_time
from .yamlreader import YamlReader

RULE_KINDS = ("keyword", "pattern")
RULE_ACTIONS = ("hide", "hold")
ORIGINS = ("organizer", "content")
CONTENT_FILE = "moderation.yaml"
Matcher = Callable[[str], bool]


# -- matching ----------------------------------------------------------------------------------


def match_text(text: str, spoiler: str, name: str, alts: str) -> str:
    """The text a rule is matched against (the same for a new Item and a stored row)."""
    return "\n".join((text or "", spoiler or "", name or "", alts or ""))


def item_match_text(item: Item) -> str:
    return match_text(
        item.text, item.spoiler, item.author.name, " ".join(m.alt for m in item.media)
    )


# The same four fields read from a stored item in SQL, for decisions that scan the archive.
MATCH_COLUMNS_SQL = (
    "json_extract(data, '$.text'), json_extract(data, '$.spoiler'), "
    "json_extract(data, '$.author.name'), "
    "(SELECT group_concat(json_extract(m.value, '$.alt'), ' ') FROM json_each(data, '$.media') m)"
)


def account_key(account: str | None) -> str:
    return (account or "").strip().lstrip("@").casefold()


def compile_rule(kind: str, pattern: str) -> re.Pattern[str]:
    """The compiled form of one rule; ValueError names what is wrong."""
    if kind not in RULE_KINDS:
        raise ValueError(f"rule kind must be keyword or pattern, not {kind!r}")
    if not pattern.strip():
        raise ValueError("a rule needs a non-empty keyword or pattern")
    if kind == "keyword":
        return re.compile(rf"(?<!\w)(?:{_keyword(pattern)})(?!\w)", re.IGNORECASE)
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise ValueError(f"not a regular expression: {pattern!r}: {exc}") from None


def _keyword(text: str) -> str:
    return r"\s+".join(re.escape(w) for w in text.split())


def compile_matcher(rules: list[tuple[str, str]]) -> Matcher | None:
    """One check for many (kind, pattern) rules: the keywords as one expression with the word
    boundaries outside the alternation (many times faster than a boundary per keyword), the
    patterns as one more when they combine safely (none has groups a back-reference could
    count, none has global flags); otherwise each pattern on its own."""
    if not rules:
        return None
    for kind, pattern in rules:
        if kind != "pattern":
            compile_rule(kind, pattern)  # each one valid on its own, or ValueError
    keywords = [_keyword(p) for kind, p in rules if kind == "keyword"]
    patterns = [p for kind, p in rules if kind == "pattern"]
    compiled = []
    if keywords:
        compiled.append(re.compile(rf"(?<!\w)(?:{'|'.join(keywords)})(?!\w)", re.IGNORECASE))
    alone = [compile_rule("pattern", p) for p in patterns]
    if len(alone) > 1 and all(c.groups == 0 for c in alone):  # no group numbers to shift
        try:
            alone = [re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)]
        except re.error:
            pass
    compiled += alone
    if len(compiled) == 1:
        search = compiled[0].search
        return lambda text: search(text) is not None
    return lambda text: any(p.search(text) for p in compiled)


@dataclass(frozen=True)
class Gate:
    """An event's moderation as one precompiled check, built by `load_gate`."""

    approve_first: bool = False
    hidden: frozenset[str] = frozenset()
    blocked: frozenset[str] = frozenset()
    hide: Matcher | None = None
    hold: Matcher | None = None

    def suppresses(self, uri: str, author_id: str, handle: str, text: str) -> bool:
        """True when a decision or a hide rule keeps this post off pages and the live tail."""
        return (
            uri in self.hidden
            or (bool(self.blocked) and (account_key(author_id) in self.blocked
                                        or account_key(handle) in self.blocked))
            or (self.hide is not None and self.hide(text))
        )  # fmt: skip

    def holds(self, text: str) -> str | None:
        """Why a new post waits for approval, or None."""
        if self.hold is not None and self.hold(text):
            return "rule"
        return "approve-first" if self.approve_first else None

    def status_of(self, uri: str, author_id: str, handle: str, text: str, *, queued: bool,
                  note: bool = False) -> str:  # fmt: skip
        """moderated, held or visible. Organizer notes answer only to an explicit hide."""
        if note:
            return "moderated" if uri in self.hidden else "visible"
        if self.suppresses(uri, author_id, handle, text):
            return "moderated"
        return "held" if queued else "visible"

    def edit_suppressed(self, item: Item) -> bool:
        """True when a new version of a visible post must be taken down (a hide rule, a block)."""
        if item.source == "note":
            return item.uri in self.hidden
        return self.suppresses(item.uri, item.author.id, item.author.handle, item_match_text(item))

    def admit(self, item: Item) -> tuple[str, str | None]:
        """(status, hold reason) for a newly collected item."""
        note = item.source == "note"
        text = "" if note else item_match_text(item)
        held = None if note else self.holds(text)
        status = self.status_of(item.uri, item.author.id, item.author.handle, text,
                                queued=held is not None, note=note)  # fmt: skip
        return status, held


def load_gate(db: sqlite_utils.Database, event: str) -> Gate | None:
    """The event's Gate, or None when it has no moderation at all (the save path skips it)."""
    row = db.execute("SELECT approve_first FROM moderation WHERE event = ?", [event]).fetchone()
    if row is None:
        return None
    hidden = {
        r[0] for r in db.execute("SELECT uri FROM moderation_hidden WHERE event = ?", [event])
    }
    blocked = {
        r[0] for r in db.execute("SELECT account FROM moderation_blocks WHERE event = ?", [event])
    }
    rules = {"hide": [], "hold": []}
    for kind, pattern, action in db.execute(
        "SELECT kind, pattern, action FROM moderation_rules WHERE event = ? ORDER BY id", [event]
    ):
        rules[action].append((kind, pattern))
    if not (row[0] or hidden or blocked or rules["hide"] or rules["hold"]):
        return None
    return Gate(bool(row[0]), frozenset(hidden), frozenset(blocked),
                compile_matcher(rules["hide"]), compile_matcher(rules["hold"]))  # fmt: skip


def moderation_version(db: sqlite_utils.Database, event: str) -> int | None:
    row = db.execute("SELECT version FROM moderation WHERE event = ?", [event]).fetchone()
    return row[0] if row else None


# -- read queries ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    id: int
    event: str
    kind: str
    pattern: str
    action: str
    origin: str
    who: str
    at: str
    why: str


@dataclass(frozen=True)
class Decision:
    """A hidden post (target = uri) or a blocked account (target = account key)."""

    event: str
    target: str
    origin: str
    who: str
    at: str
    why: str


@dataclass(frozen=True)
class Held:
    uri: str
    held_at: str
    reason: str
    item: dict[str, Any]


@dataclass(frozen=True)
class AuditEntry:
    id: int
    event: str
    at: str
    who: str
    action: str
    target: str
    why: str
    changes: int


def approve_first(db: sqlite_utils.Database, event: str) -> bool:
    row = db.execute("SELECT approve_first FROM moderation WHERE event = ?", [event]).fetchone()
    return bool(row and row[0])


def rules(db: sqlite_utils.Database, event: str) -> list[Rule]:
    sql = "SELECT id, event, kind, pattern, action, origin, who, at, why FROM moderation_rules"
    return [Rule(*r) for r in db.execute(sql + " WHERE event = ? ORDER BY id", [event])]


def hidden_posts(db: sqlite_utils.Database, event: str) -> list[Decision]:
    sql = (
        "SELECT event, uri, origin, who, at, why FROM moderation_hidden WHERE event = ? ORDER BY at"
    )
    return [Decision(*r) for r in db.execute(sql, [event])]


def blocked_accounts(db: sqlite_utils.Database, event: str) -> list[Decision]:
    sql = "SELECT event, account, origin, who, at, why FROM moderation_blocks WHERE event = ?"
    return [Decision(*r) for r in db.execute(sql + " ORDER BY at", [event])]


def queue(db: sqlite_utils.Database, event: str, limit: int | None = None) -> list[Held]:
    """Posts waiting for approval, oldest first (the order approval delivers them in)."""
    sql = (
        "SELECT q.uri, q.held_at, q.reason, i.data FROM moderation_queue q JOIN items i "
        "ON i.event = q.event AND i.uri = q.uri WHERE q.event = ? AND i.status = 'held' "
        "ORDER BY i.created_at, i.id"
    )
    params: list[Any] = [event]
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return [Held(u, h, r, json.loads(d)) for u, h, r, d in db.execute(sql, params)]


def queue_length(db: sqlite_utils.Database, event: str) -> int:
    return db.execute(
        "SELECT count(*) FROM moderation_queue q JOIN items i ON i.event = q.event AND "
        "i.uri = q.uri WHERE q.event = ? AND i.status = 'held'",
        [event],
    ).fetchone()[0]


def audit_log(
    db: sqlite_utils.Database, event: str | None = None, limit: int = 50
) -> list[AuditEntry]:
    """The newest decisions first."""
    sql = "SELECT id, event, at, who, action, target, why, changes FROM moderation_audit"
    params: list[Any] = []
    if event is not None:
        sql += " WHERE event = ?"
        params.append(event)
    params.append(limit)
    return [AuditEntry(*r) for r in db.execute(sql + " ORDER BY id DESC LIMIT ?", params)]


def reasons(db: sqlite_utils.Database, event: str, uri: str) -> list[str]:
    """Why a post is kept off pages and the live tail, in words (empty when nothing keeps it)."""
    row = db.execute(
        f"SELECT author_id, json_extract(data, '$.author.handle'), source, {MATCH_COLUMNS_SQL} "
        "FROM items WHERE event = ? AND uri = ?",
        [event, uri],
    ).fetchone()
    found = []
    if db.execute(
        "SELECT 1 FROM moderation_hidden WHERE event = ? AND uri = ?", [event, uri]
    ).fetchone():
        found.append("hidden post")
    if row is None or row[2] == "note":
        return found
    accounts = {account_key(row[0]), account_key(row[1])}
    found += [
        f"blocked account {d.target}" for d in blocked_accounts(db, event) if d.target in accounts
    ]
    text = match_text(*row[3:])
    found += [
        f"rule #{r.id} ({r.kind} {r.pattern!r})"
        for r in rules(db, event)
        if r.action == "hide" and compile_rule(r.kind, r.pattern).search(text)
    ]
    held = db.execute(
        "SELECT reason FROM moderation_queue WHERE event = ? AND uri = ?", [event, uri]
    )
    if (reason := held.fetchone()) is not None:
        found.append(f"waiting for approval ({reason[0]})")
    return found


# -- content/<event>/moderation.yaml -------------------------------------------------------------


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
                compile_rule(kinds[0], pattern)
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


# -- rebuild requests ------------------------------------------------------------------------------


def rebuild_request_path(var_dir: Path, event: str) -> Path:
    return Path(var_dir) / "rebuild" / f"{event}.json"


def request_rebuild(var_dir: Path, event: str, reason: str, last_seq: int = 0) -> Path:
    """Ask the site scheduler to rebuild `event` (written atomically; a newer request replaces)."""
    path = rebuild_request_path(var_dir, event)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"event": event, "at": format_time(datetime.now(UTC)), "reason": reason,
            "last_seq": last_seq}  # fmt: skip
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(body) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def take_rebuild_request(var_dir: Path, event: str) -> dict[str, Any] | None:
    """The pending rebuild request for `event`, removed as it is taken; None when there is none."""
    path = rebuild_request_path(var_dir, event)
    taken = path.with_suffix(f".taken.{os.getpid()}")
    try:
        os.replace(path, taken)
    except FileNotFoundError:
        return None
    try:
        return json.loads(taken.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"event": event, "reason": "unreadable request"}
    finally:
        taken.unlink(missing_ok=True)
