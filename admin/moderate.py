"""The dashboard's moderation: what an organizer sees (the queue, recent posts, decisions, the
audit log) and the decisions a form asks for, made through core.moderation.decisions.Moderator.

Blocking (SQLite, Redis); the app runs these in a worker thread. Posts are shown as plain text
(the template escapes it), never as HTML.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from core.archive import open_archive
from core.errors import AfaError
from core.moderation import queries as reading
from core.moderation.decisions import Moderator, Outcome
from core.settings import Settings

RECENT = 40
TEXT_CHARS = 280


@dataclass(frozen=True)
class Post:
    uri: str
    url: str
    author: str  # handle, else name, else id
    account: str  # what a block names: the author's id
    created_at: str
    text: str
    status: str
    reason: str = ""


def post_from(data: dict[str, Any], status: str, reason: str = "") -> Post:
    author = data.get("author") or {}
    text = " ".join(filter(None, [data.get("spoiler"), data.get("text")]))
    if len(text) > TEXT_CHARS:
        text = text[: TEXT_CHARS - 1] + "…"
    return Post(
        uri=data["uri"], url=data.get("url", ""),
        author=author.get("handle") or author.get("name") or author.get("id", "?"),
        account=author.get("id", ""), created_at=data.get("created_at", ""), text=text,
        status=status, reason=reason,
    )  # fmt: skip


def recent_posts(db: sqlite_utils.Database, event: str, limit: int = RECENT) -> list[Post]:
    """The newest posts collected, whatever their status, newest first."""
    rows = db.execute(
        "SELECT data, status FROM items WHERE event = ? ORDER BY id DESC LIMIT ?", [event, limit]
    ).fetchall()
    return [post_from(json.loads(data), status) for data, status in rows]


def queues(settings: Settings, events: list[str]) -> dict[str, list[Post]]:
    """Every event's approval queue, oldest first (the order approving delivers them in)."""
    try:
        db = open_archive(settings.archive_path, create=False)
    except AfaError:
        return {}
    try:
        return {
            e: [post_from(h.item, "held", h.reason) for h in reading.queue(db, e, limit=100)]
            for e in events
        }
    finally:
        db.close()


def event_view(settings: Settings, event: str) -> dict[str, Any]:
    db = open_archive(settings.archive_path)
    try:
        return {
            "event": event,
            "approve_first": reading.approve_first(db, event),
            "queue": [post_from(h.item, "held", h.reason) for h in reading.queue(db, event, 100)],
            "recent": recent_posts(db, event),
            "hidden": reading.hidden_posts(db, event),
            "blocked": reading.blocked_accounts(db, event),
            "rules": reading.rules(db, event),
            "audit": reading.audit_log(db, event, limit=30),
        }
    finally:
        db.close()


def _need(form: dict[str, str], name: str) -> str:
    value = form.get(name, "").strip()
    if not value:
        raise AfaError(f"{name} is missing")
    return value


class BadForm(AfaError):
    """A form field no page of ours sends (a rule number that is not one): the app answers 400."""


RULE_NUMBER = re.compile(r"[0-9]{1,18}")  # ASCII digits only, and within SQLite's INTEGER


def _rule_id(form: dict[str, str]) -> int:
    value = _need(form, "rule")
    if not RULE_NUMBER.fullmatch(value):
        shown = value if len(value) <= 24 else value[:24] + "…"
        raise BadForm(f"rule must be a rule's number (digits 0-9), not {shown!r}")
    return int(value)


DECISIONS: dict[str, Callable[[Moderator, str, dict[str, str], str, str], Outcome]] = {
    "hide": lambda m, e, f, who, why: m.hide(e, _need(f, "uri"), who=who, why=why),
    "unhide": lambda m, e, f, who, why: m.unhide(e, _need(f, "uri"), who=who, why=why),
    "block": lambda m, e, f, who, why: m.block(e, _need(f, "account"), who=who, why=why),
    "unblock": lambda m, e, f, who, why: m.unblock(e, _need(f, "account"), who=who, why=why),
    "approve": lambda m, e, f, who, why: m.approve(
        e, [f["uri"]] if f.get("uri") else None, who=who, why=why
    ),
    "reject": lambda m, e, f, who, why: m.reject(e, [_need(f, "uri")], who=who, why=why),
    "rule-add": lambda m, e, f, who, why: m.add_rule(
        e,
        _need(f, "kind"),
        _need(f, "pattern"),
        action=f.get("action") or "hide",
        who=who,
        why=why,
    ),  # fmt: skip
    "rule-remove": lambda m, e, f, who, why: m.remove_rule(e, _rule_id(f), who=who, why=why),
    "approve-first": lambda m, e, f, who, why: m.set_approve_first(
        e, f.get("on") == "1", who=who, why=why
    ),
}


def decide(settings: Settings, event: str, action: str, form: dict[str, str], who: str) -> str:
    """Make one decision; its summary, or AfaError with a message to show as it is."""
    if action not in DECISIONS:
        raise AfaError(f"unknown moderation action {action!r}")
    moderator = Moderator.open(settings)
    try:
        why = form.get("why", "").strip() or "from the dashboard"
        return DECISIONS[action](moderator, event, form, who, why).summary()
    finally:
        moderator.close()
