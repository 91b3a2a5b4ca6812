"""Rebuild requests, carried by the archive: a moderation decision that changes what pages show
asks the site scheduler to rebuild the event.

One row per event in `rebuild_requests` (migration m005): `request_rebuild` bumps its number
and records when, why and the sequence number the decision reached; a newer request replaces
the older. The scheduler only reads: it remembers the number it last acted on
(`rebuild_request(db, event).number` as it starts, before its first build) and rebuilds when the
row's number has moved past it. So a request made during a build is never lost (its number is
newer than the one read before the build began), two schedulers never take one another's
requests, and the site side needs no write access to the archive.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlite_utils

from .items import format_time


@dataclass(frozen=True)
class RebuildRequest:
    event: str
    number: int  # grows by one with each request for the event
    at: str
    reason: str
    last_seq: int


def request_rebuild(db: sqlite_utils.Database, event: str, reason: str, last_seq: int = 0) -> int:
    """Ask the site scheduler to rebuild `event`; the request's number."""
    return db.execute(
        "INSERT INTO rebuild_requests (event, number, at, reason, last_seq) VALUES (?, 1, ?, ?, ?) "
        "ON CONFLICT (event) DO UPDATE SET number = number + 1, at = excluded.at, "
        "reason = excluded.reason, last_seq = excluded.last_seq RETURNING number",
        [event, format_time(datetime.now(UTC)), reason, last_seq],
    ).fetchone()[0]


def rebuild_request(db: sqlite_utils.Database, event: str) -> RebuildRequest | None:
    """The event's latest rebuild request, or None when none was ever made."""
    row = db.execute(
        "SELECT event, number, at, reason, last_seq FROM rebuild_requests WHERE event = ?", [event]
    ).fetchone()
    return RebuildRequest(*row) if row else None


def newer_request(db: sqlite_utils.Database, event: str, seen: int) -> RebuildRequest | None:
    """The event's rebuild request when its number is past `seen`, else None."""
    request = rebuild_request(db, event)
    return request if request is not None and request.number > seen else None
