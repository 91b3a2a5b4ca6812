"""Organizers pin and unpin posts: the wall and the live pages keep pinned posts on top.

    pinner = Pinner.open(settings)              # the archive and Redis (None without REDIS_URL)
    pinner.pin(event, uri, who=, why=)          # -> PinOutcome; AfaError names what is wrong
    pinner.unpin(event, uri, who=, why=)
    pinner.close()

Each decision is one SQLite transaction (the `pins` row, a numbered change, an audit line in
the moderation audit log), then published like any change: a `pin` carries the post as it is
now (a wall that never saw an older post can show it), an `unpin` only its uri. So open walls
and live pages get it within a second, and one that reconnects resumes it by Last-Event-ID.

Moderation still applies, and wins: only a visible post can be pinned; a pinned post that is
hidden (or blocked, or deleted at its source) leaves every page through its `retract`, while its
pin stays recorded, so showing it again brings it back pinned. Pages read pins through
core/pins.py. A pin changes the wall's static page, so it asks for a rebuild as moderation does.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import redis as redis_lib
import sqlite_utils

from core.archive import Change, last_seq, open_archive, write_transaction
from core.errors import AfaError
from core.items import format_time
from core.moderation import request_rebuild
from core.redisconn import connect
from core.settings import Settings
from core.tail import live_payload

from . import jsontext
from .publish import publish_after_commit

log = logging.getLogger("collector.pins")


@dataclass
class PinOutcome:
    action: str  # pin, unpin
    event: str
    uri: str
    change: Change | None = None
    published: int = 0
    rebuild: Path | None = None
    redis_error: str | None = None
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = f"{self.action} {self.uri}: "
        text += f"seq {self.change.seq}" if self.change else "no live change"
        if self.published:
            text += ", published"
        if self.redis_error:
            text += f"; not live yet (Redis: {self.redis_error}), the collector will re-seed it"
        if self.rebuild:
            text += f"; rebuild requested ({self.rebuild})"
        return text


class Pinner:
    """Pins and unpins posts of one archive (and its live tail, when Redis is given)."""

    def __init__(
        self, db: sqlite_utils.Database, redis: redis_lib.Redis | None = None, *,
        tail_length: int = 10_000, var_dir: Path | str = Path("var"),
    ) -> None:  # fmt: skip
        self.db, self.redis = db, redis
        self.tail_length, self.var_dir = tail_length, Path(var_dir)
        self._owned = False

    @classmethod
    def open(cls, settings: Settings) -> Pinner:
        redis = None
        if settings.redis_url:
            redis = connect(settings.redis_url, socket_timeout=5, socket_connect_timeout=3)
        pinner = cls(open_archive(settings.archive_path), redis,
                     tail_length=settings.tail_length, var_dir=settings.var_dir)  # fmt: skip
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
        return self._after(PinOutcome("pin", event, uri, change))

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
        return self._after(PinOutcome("unpin", event, uri, change))

    def _after(self, outcome: PinOutcome) -> PinOutcome:
        if self.redis is not None:
            try:
                outcome.published = publish_after_commit(
                    self.redis, self.db, outcome.event, [outcome.change], self.tail_length
                )
            except redis_lib.RedisError as exc:
                log.warning("%s: not published: %s", outcome.action, exc)
                outcome.redis_error = str(exc) or type(exc).__name__
        outcome.rebuild = request_rebuild(
            self.var_dir, outcome.event, f"{outcome.action} {outcome.uri}", outcome.change.seq
        )
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
        [event, seq, kind, uri, now, jsontext.dumps(payload)],
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
