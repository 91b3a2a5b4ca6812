"""Pinned posts, read side: which posts organizers pinned, for the wall and the live page.

Pins are made by collector/pins.py (the CLI and the dashboard) and stored in the `pins` table
(core/archive.py m005). A pin is a row and a numbered `pin` change on the live tail (carrying the
post as it is), an unpin is an `unpin` change: a wall that reconnects resumes its pins exactly.
Moderation still applies: only visible posts are returned here, so a pinned post that is hidden
leaves the pages (its `retract` takes it off open pages at once) and comes back pinned if it is
shown again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import sqlite_utils

from .items import Item, item_from_dict


@dataclass(frozen=True)
class Pin:
    uri: str
    who: str
    at: str
    why: str


def pins(db: sqlite_utils.Database, event: str) -> list[Pin]:
    """Every pin of an event, whatever its post's status, newest first."""
    rows = db.execute(
        "SELECT uri, who, at, why FROM pins WHERE event = ? ORDER BY at DESC, rowid DESC", [event]
    )
    return [Pin(*row) for row in rows]


def pinned_items(db: sqlite_utils.Database, event: str) -> list[Item]:
    """The pinned posts pages may show (visible ones), newest pin first, each with its seq."""
    rows = db.execute(
        "SELECT i.data, i.seq FROM pins p JOIN items i ON i.event = p.event AND i.uri = p.uri "
        "WHERE p.event = ? AND i.status = 'visible' ORDER BY p.at DESC, p.rowid DESC",
        [event],
    )
    found = []
    for data, seq in rows:
        item = item_from_dict(json.loads(data))
        item.extra["seq"] = seq
        found.append(item)
    return found


def is_pinned(db: sqlite_utils.Database, event: str, uri: str) -> bool:
    return (
        db.execute("SELECT 1 FROM pins WHERE event = ? AND uri = ?", [event, uri]).fetchone()
        is not None
    )
