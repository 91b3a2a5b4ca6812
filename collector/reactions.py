"""Who answered a post, kept as the collector saves a batch (a hook in store.save_batch).

- **Replies.** Mastodon names the post a status answers only by an instance-local id
  (`in_reply_to_id`, kept in `extra`). When the archive, or the same batch, holds that id for
  the origin the reply came through, the reply's `reply_to` is set to the parent's identity, so
  pages, live pages and the meet-ups board know what it answers. Bluesky sends the parent's
  at-uri itself.
- **Boosts.** A boost arrives as the boosted post wrapped with who boosted it (the Mastodon
  parser keeps the wrapper's account in `extra["boosted_by"]`). The post is saved as usual; the
  boost becomes a row in `boosts` (core/archive.py m005) and a numbered `boost` change
  {"uri", "by": author} on the live tail, once per account and post. The meet-ups board counts
  boosters as going. A blocked account's boost is kept off the tail like its posts.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

import sqlite_utils

from core.items import Item, format_time, parse_time
from core.moderation.rules import account_key

from .normalise import Delete

BOOST_KEYS = ("boosted_by", "boosted_at")

# CROSS JOIN keeps json_each the outer loop, each parent then found by the primary key: with a
# plain JOIN SQLite walked every local id of the event for each batch, a cost that grew with the
# archive (a third of the collector's CPU at 20,000 posts).
PARENTS_SQL = (
    "SELECT l.origin, l.local_id, l.uri FROM json_each(?) j CROSS JOIN local_ids l "
    "ON l.event = ? AND l.origin = json_extract(j.value, '$[0]') "
    "AND l.local_id = json_extract(j.value, '$[1]')"
)


@dataclasses.dataclass(frozen=True)
class Boost:
    uri: str  # the boosted post
    by: dict[str, Any]  # the booster's Author as a dict
    at: str


def prepare(
    db: sqlite_utils.Database, event: str, changes: Sequence[Item | Delete]
) -> tuple[list[Item | Delete], list[Boost]]:
    """The batch with replies resolved and boost wrappers taken off the posts, and the boosts."""
    parents = _parents(db, event, changes)
    out: list[Item | Delete] = []
    boosts: list[Boost] = []
    for change in changes:
        if isinstance(change, Item):
            change, boost = _unwrap(change)
            if boost is not None:
                boosts.append(boost)
            parent = _parent_key(change)
            if parent is not None and parent in parents:
                change = dataclasses.replace(change, reply_to=parents[parent])
        out.append(change)
    return out, boosts


def _parent_key(item: Item) -> tuple[str, str] | None:
    local = item.extra.get("in_reply_to_id")
    if item.reply_to or not local:
        return None
    return item.origin, str(local)


def _parents(
    db: sqlite_utils.Database, event: str, changes: Sequence[Item | Delete]
) -> dict[tuple[str, str], str]:
    """(origin, local id) → identity, for every parent this batch's replies name."""
    wanted = {k for c in changes if isinstance(c, Item) and (k := _parent_key(c)) is not None}
    if not wanted:
        return {}
    found = {(c.origin, c.local_id): c.uri for c in changes if isinstance(c, Item)}
    missing = [k for k in wanted if k not in found]
    if missing:
        rows = db.execute(PARENTS_SQL, [json.dumps(missing), event])
        found.update({(o, i): u for o, i, u in rows})
    return {k: found[k] for k in wanted if k in found}


def _unwrap(item: Item) -> tuple[Item, Boost | None]:
    if not any(k in item.extra for k in BOOST_KEYS):
        return item, None
    extra = {k: v for k, v in item.extra.items() if k not in BOOST_KEYS}
    by, when = item.extra.get("boosted_by"), item.extra.get("boosted_at")
    item = dataclasses.replace(item, extra=extra)
    if not isinstance(by, dict) or not by.get("id") or by.get("id") == item.author.id:
        return item, None  # no booster we can name, or the author boosting their own post
    try:
        at = parse_time(str(when or "")) or item.created_at
    except ValueError:
        at = item.created_at
    return item, Boost(item.uri, dict(by), format_time(at))


def save_boosts(batch, boosts: list[Boost]) -> None:
    """A row per (post, booster) and a `boost` change for each new one whose post is shown."""
    db, event = batch.db, batch.event
    blocked = batch.gate.blocked if batch.gate is not None else frozenset()
    for boost in boosts:
        if {account_key(boost.by["id"]), account_key(boost.by.get("handle"))} & blocked:
            continue
        added = db.execute(
            "INSERT OR IGNORE INTO boosts (event, uri, author_id, author, at) "
            "VALUES (?, ?, ?, ?, ?)",
            [event, boost.uri, boost.by["id"], json.dumps(boost.by, ensure_ascii=False),
             boost.at],
        ).rowcount  # fmt: skip
        status = db.execute(
            "SELECT status FROM items WHERE event = ? AND uri = ?", [event, boost.uri]
        ).fetchone()
        if added and status is not None and status[0] == "visible":
            batch.record("boost", boost.uri, None, {"by": boost.by, "at": boost.at})
