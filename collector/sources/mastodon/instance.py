"""Mastodon: one instance's options, state and cursor, shared by the modules that follow it.

Cursor (ctx.key's, small JSON): {"clock": newest created_at, "tags": {tag: {"min_id": the
highest status id seen, "last_created_at": that status's created_at}}}.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from core.errors import ParseError, SourceError

from ...normalise import Delete, parse_source_time
from ..base import SourceContext
from .parse import SOURCE, is_local_id, origin_host

log = logging.getLogger("collector.mastodon")


@dataclass(frozen=True)
class Options:
    """What a `{type: mastodon, ...}` entry in event.yaml may set."""

    instance: str
    hashtags: tuple[str, ...]
    token_env: str | None = None
    streaming: bool = True  # false: always poll, even with a token
    streaming_url: str | None = None  # default: configuration.urls.streaming, over https
    poll_seconds: float = 30.0
    reconcile_seconds: float = 300.0  # polling: re-walk from the overlap floor this often
    overlap_seconds: float = 900.0  # how late a remote post may federate and still be caught
    watchdog_seconds: float = 45.0  # no byte for this long (3 heartbeats) → reconnect
    min_connected_seconds: float = 10.0  # a shorter connection backs off before reconnecting
    page_limit: int = 40
    backfill_from: str = "event"  # first run: "event" (its start), "newest" or an ISO time
    max_rate_limit_wait: float = 300.0
    request_timeout: float = 30.0
    recheck_deletes: bool = True  # after a reconnect, ask REST about posts the backfill missed
    recheck_max_posts: int = 100  # at most this many GET /statuses/:id per reconnect (newest)
    recheck_minutes: float = 180.0  # and only for posts created in the last this many minutes

    @classmethod
    def from_context(cls, ctx: SourceContext) -> Options:
        config = dict(ctx.config)
        instance = str(config.pop("instance", "") or "").rstrip("/")
        if not instance:
            raise SourceError(SOURCE, ctx.key, "no instance configured")
        if "//" not in instance:
            instance = "https://" + instance
        tags = config.pop("hashtags", None) or sorted(ctx.hashtags)
        tags = tuple(dict.fromkeys(str(t).lstrip("#").casefold() for t in tags))
        known = set(cls.__dataclass_fields__)
        ctx.warn_unknown_options(known | {"instance", "hashtags"}, log)
        return cls(instance, tags, **{k: v for k, v in config.items() if k in known})


@dataclass
class Feed:
    """One instance: its options, token, pacing and the committed per-tag cursors."""

    ctx: SourceContext
    opts: Options
    token: str | None
    stream_base: str = ""
    tags: dict[str, dict[str, str]] = field(default_factory=dict)
    clock: str | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # per tag, the statuses this run archived (local id -> created_at), newest kept; the
    # candidates for a re-check after a reconnect. Not in the cursor: it must stay small.
    recent: dict[str, dict[str, datetime]] = field(default_factory=dict)
    walked: dict[str, set[str]] = field(default_factory=dict)  # ids a running backfill returned

    @property
    def host(self) -> str:
        return origin_host(self.opts.instance)  # items' origin: the host name, as parse_status

    @property
    def netloc(self) -> str:
        return urlsplit(self.opts.instance).netloc  # for messages: with the port, if any

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def load_cursor(self, cursor: dict[str, Any] | None) -> None:
        cursor = cursor or {}
        self.clock = cursor.get("clock")
        tags = cursor.get("tags") or {}
        self.tags = {t: dict(c) for t, c in tags.items() if isinstance(c, dict) and c.get("min_id")}

    def snapshot(self, tag: str, tag_cursor: dict[str, str], clock: str | None) -> dict:
        tags = {**self.tags, tag: tag_cursor}
        return {"clock": clock, "tags": tags}


@dataclass
class Seen:
    """What one batch saw, for the cursor: status ids and their created_at."""

    ids: list[tuple[str, datetime | None]] = field(default_factory=list)


def id_key(local_id) -> tuple:
    """Order instance-local ids: numerically when all digits, as text otherwise."""
    text = str(local_id)
    return (0, len(text), text) if text.isdigit() else (1, 0, text)


def status_created(status: dict) -> datetime | None:
    try:
        return parse_source_time(status.get("created_at"), "created_at")
    except ParseError:
        return None


def seen_in(statuses: list[dict]) -> Seen:
    """The ids a page shows (those that can be a cursor) and their created_at."""
    return Seen([(str(s["id"]), status_created(s)) for s in statuses if is_local_id(s.get("id"))])


RECENT_KEPT = 2000  # per tag: what this run remembers as re-check candidates


def remember(feed: Feed, tag: str, changes: list) -> None:
    """Note the committed statuses of this tag (the re-check candidates); forget deleted ones."""
    recent = feed.recent.setdefault(tag, {})
    for change in changes:
        if isinstance(change, Delete) and change.local_id:
            recent.pop(change.local_id, None)
        elif getattr(change, "origin", None) == feed.host and change.local_id:
            recent[change.local_id] = change.created_at
    if len(recent) > RECENT_KEPT:
        newest = sorted(recent.items(), key=lambda pair: pair[1])[-RECENT_KEPT:]
        feed.recent[tag] = dict(newest)
