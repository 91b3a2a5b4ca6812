"""The moderation tables read: an event's rules, hidden posts, blocked accounts, approval queue
and audit log, and why one post is kept off pages (`reasons`). Read-only, for the dashboard, the
command line and the decisions' own checks."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from .rules import MATCH_COLUMNS_SQL, account_key, compile_rule, match_text, rule_hits


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
    for r in rules(db, event):
        hit = rule_hits(compile_rule(r.kind, r.pattern), text) if r.action == "hide" else False
        if hit is not False:
            slow = "" if hit else "; it took too long on this post, so it counts as a match"
            found.append(f"rule #{r.id} ({r.kind} {r.pattern!r}{slow})")
    held = db.execute(
        "SELECT reason FROM moderation_queue WHERE event = ? AND uri = ?", [event, uri]
    )
    if (reason := held.fetchone()) is not None:
        found.append(f"waiting for approval ({reason[0]})")
    return found
