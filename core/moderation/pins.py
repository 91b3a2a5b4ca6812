"""Pinned posts: organizers pin a post and the walls and live pages keep it on top until it is
unpinned. Beside moderation because it is an organizer's decision like the others: audited,
one transaction, then published; the dashboard (admin/room.py) and the command line
(`python -m collector pin`/`unpin`, in `commands`) both call it.

    pinner = Pinner.open(settings)              # the archive and Redis (None without REDIS_URL)
    pinner.pin(event, uri, who=, why=)          # -> PinOutcome; AfaError names what is wrong
    pinner.unpin(event, uri, who=, why=)
    pins(db, event), pinned_items(db, event)    # reading: every pin; the posts pages may show

A pin is a row in `pins` (core/archive.py m006) and a numbered `pin` change carrying the post as
it is now (a wall that never saw an older post can show it); an unpin is an `unpin` change. So
open walls and live pages get it within a second, and one that reconnects resumes it exactly by
Last-Event-ID. Moderation still applies, and wins: only a visible post can be pinned; a pinned
post that is hidden (or blocked, or deleted at its source) leaves every page through its
`retract`, while its pin stays, so showing it again brings it back pinned. A pin changes the
wall's static page, so it asks for a rebuild (core.rebuild) as a moderation decision does.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import redis as redis_lib
import sqlite_utils

from ..archive import Change, last_seq, open_archive, write_transaction
from ..errors import AfaError
from ..items import Item, format_time, item_from_dict
from ..rebuild import request_rebuild
from ..redisconn import connect
from ..settings import Settings
from ..stream import publish_pending
from ..tail import live_payload

log = logging.getLogger("core.moderation.pins")


# -- reading ---------------------------------------------------------------------------------------


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


# CROSS JOIN keeps pins outside: with a plain JOIN SQLite chose to walk every visible post of
# the event (items_event_status) and look each up in pins, so every build's read of the pins
# grew with the archive (0.06 s at 100,000 posts) for the few posts ever pinned.
PINNED_SQL = (
    "SELECT i.data, i.seq FROM pins p CROSS JOIN items i ON i.event = p.event AND i.uri = p.uri "
    "WHERE p.event = ? AND i.status = 'visible' ORDER BY p.at DESC, p.rowid DESC"
)


def pinned_items(db: sqlite_utils.Database, event: str) -> list[Item]:
    """The pinned posts pages may show (visible ones), newest pin first, each with its seq."""
    rows = db.execute(PINNED_SQL, [event])
    found = []
    for data, seq in rows:
        item = item_from_dict(json.loads(data))
        item.extra["seq"] = seq
        found.append(item)
    return found


# -- deciding --------------------------------------------------------------------------------------


@dataclass
class PinOutcome:
    action: str  # pin, unpin
    event: str
    uri: str
    change: Change
    published: int = 0
    rebuild: int | None = None  # the rebuild request's number
    redis_error: str | None = None

    def summary(self) -> str:
        text = f"{self.action} {self.uri}: seq {self.change.seq}"
        if self.published:
            text += ", published"
        if self.redis_error:
            text += f"; not live yet (Redis: {self.redis_error}), the collector will re-seed it"
        if self.rebuild:
            text += "; rebuild requested"
        return text


class Pinner:
    """Pins and unpins posts of one archive (and its live tail, when Redis is given)."""

    def __init__(
        self, db: sqlite_utils.Database, redis: redis_lib.Redis | None = None, *,
        tail_length: int = 10_000,
    ) -> None:  # fmt: skip
        self.db, self.redis, self.tail_length = db, redis, tail_length
        self._owned = False

    @classmethod
    def open(cls, settings: Settings) -> Pinner:
        redis = None
        if settings.redis_url:
            redis = connect(settings.redis_url, socket_timeout=5, socket_connect_timeout=3)
        pinner = cls(open_archive(settings.archive_path), redis, tail_length=settings.tail_length)
        pinner._owned = True
        return pinner

    def close(self) -> None:
        if self._owned:
            if self.redis is not None:
                self.redis.close()
            self.db.close()

    def pin(self, event: str, uri: str, *, who: str, why: str = "") -> PinOutcome:
        """Pin a visible post; its `pin` change carries the post."""
        uri, who = _need(uri, "a post's uri"), _need(who, "who pins it")
        with write_transaction(self.db):
            status, data = _post(self.db, event, uri)
            if status != "visible":
                raise AfaError(f"{uri} is {status}: only a post the pages show can be pinned")
            if _pinned(self.db, event, uri):
                raise AfaError(f"{uri} is pinned already")
            now = _now()
            self.db.execute(
                "INSERT INTO pins (event, uri, who, at, why) VALUES (?, ?, ?, ?, ?)",
                [event, uri, who, now, why or ""],
            )
            change = _record(self.db, event, "pin", uri, json.loads(data), now)
            _audit(self.db, event, now, who, "pin", uri, why)
            rebuild = request_rebuild(self.db, event, f"pin {uri}", change.seq)
        return self._publish(PinOutcome("pin", event, uri, change, rebuild=rebuild))

    def unpin(self, event: str, uri: str, *, who: str, why: str = "") -> PinOutcome:
        """Unpin a post (whatever its status now): open pages drop it from the pinned posts."""
        uri, who = _need(uri, "a post's uri"), _need(who, "who unpins it")
        with write_transaction(self.db):
            if not _pinned(self.db, event, uri):
                raise AfaError(f"{event} has no pinned post {uri}")
            now = _now()
            self.db.execute("DELETE FROM pins WHERE event = ? AND uri = ?", [event, uri])
            change = _record(self.db, event, "unpin", uri, None, now)
            _audit(self.db, event, now, who, "unpin", uri, why)
            rebuild = request_rebuild(self.db, event, f"unpin {uri}", change.seq)
        return self._publish(PinOutcome("unpin", event, uri, change, rebuild=rebuild))

    def _publish(self, outcome: PinOutcome) -> PinOutcome:
        """Everything the stream lacks, from its last entry on (as a moderation decision)."""
        if self.redis is not None:
            try:
                outcome.published = publish_pending(
                    self.redis, self.db, outcome.event, self.tail_length
                )
            except redis_lib.RedisError as exc:
                log.warning("%s: not published: %s", outcome.action, exc)
                outcome.redis_error = str(exc) or type(exc).__name__
        return outcome


def _need(value: str, what: str) -> str:
    value = (value or "").strip()
    if not value:
        raise AfaError(f"{what} is missing")
    return value


def _post(db: sqlite_utils.Database, event: str, uri: str) -> tuple[str, str]:
    row = db.execute(
        "SELECT status, data FROM items WHERE event = ? AND uri = ?", [event, uri]
    ).fetchone()
    if row is None:
        raise AfaError(f"{event} has no post {uri}")
    return row[0], row[1]


def _pinned(db: sqlite_utils.Database, event: str, uri: str) -> bool:
    found = db.execute("SELECT 1 FROM pins WHERE event = ? AND uri = ?", [event, uri])
    return found.fetchone() is not None


def _record(db, event: str, kind: str, uri: str, item: dict | None, now: str) -> Change:
    """The change with the event's next sequence number, in the caller's transaction."""
    seq = last_seq(db, event) + 1
    payload = live_payload(kind, seq, uri, item)
    db.execute(
        "INSERT INTO changes (event, seq, kind, uri, at, data) VALUES (?, ?, ?, ?, ?, ?)",
        [
            event,
            seq,
            kind,
            uri,
            now,
            json.dumps(payload, ensure_ascii=False, separators=(",", ":")),
        ],
    )
    db.execute(
        "INSERT INTO sequences (event, last_seq) VALUES (?, ?) "
        "ON CONFLICT (event) DO UPDATE SET last_seq = excluded.last_seq",
        [event, seq],
    )
    return Change(event, seq, kind, uri, now, payload)


def _audit(db, event: str, now: str, who: str, action: str, uri: str, why: str) -> None:
    """A line in the moderation audit log: pins are organizer decisions like the others."""
    db.execute(
        "INSERT INTO moderation_audit (event, at, who, action, target, why, changes) "
        "VALUES (?, ?, ?, ?, ?, ?, 1)",
        [event, now, who, action, uri, why or ""],
    )


def _now() -> str:
    return format_time(datetime.now(UTC))
