"""The one step every collector runs after parsing: commit, then publish, then heal.

1. **Commit**: a batch of changes and the cursor that covers it are saved in ONE transaction
   (`store.save_batch`), with the malformed payloads kept beside them.
2. **Publish**: only after the commit, the changes go to the event's Redis stream with their
   sequence numbers as entry IDs (`publish.publish_after_commit`).
3. **Heal**: when Redis is away the archive still holds the batch; the event is marked and its
   stream re-seeded from the archive, with the same IDs, as soon as Redis answers again (at the
   next publish or `heal()`), and always at start.

The live collector (collect.py, many sources in one asyncio loop) and the replay (replay.py, one
recording on a clock) both go through a `Pipeline`; neither saves or publishes on its own. Redis
is opened here, one way, with `core.redisconn.connect`. Calls are serialised by `self.lock`, so
the collector may call from worker threads while the event loop goes on.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis as redis_lib
import sqlite_utils

from core.archive import Change, last_seq, open_archive
from core.errors import AfaError
from core.redisconn import connect, redact
from core.settings import Settings
from core.tail import status_key

from .normalise import Change as Parsed
from .publish import publish_after_commit, reseed_from_archive, stream_last_seq
from .store import Malformed, fresh_malformed, save_batch, tune_for_writing

log = logging.getLogger("collector")
REDIS_OPTIONS = {"socket_timeout": 5, "socket_connect_timeout": 3}


@dataclass(frozen=True)
class Committed:
    """What one commit made: the changes now in the archive's sequence (published, or waiting
    for the re-seed), and the malformed payloads kept for the first time."""

    changes: list[Change]
    malformed: list[Malformed]


class Pipeline:
    def __init__(
        self, settings: Settings, db: sqlite_utils.Database, redis: redis_lib.Redis | None
    ) -> None:
        self.settings, self.db, self.redis = settings, db, redis
        self.lock = threading.Lock()  # one writer at a time, from any thread
        self.needs_reseed: set[str] = set()
        self.redis_errors: dict[str, str] = {}  # event -> why its last publish failed

    @classmethod
    def open(cls, settings: Settings) -> Pipeline:
        """The archive (tuned for batch writes) and Redis, opened the one way every collector
        does. Without a REDIS_URL (a dashboard with no live pages) commits are not published."""
        db = open_archive(settings.archive_path)
        tune_for_writing(db)
        redis = connect(settings.redis_url, **REDIS_OPTIONS) if settings.redis_url else None
        return cls(settings, db, redis)

    def close(self) -> None:
        with self.lock:
            if self.redis is not None:
                self.redis.close()
            self.db.close()

    # -- the step ------------------------------------------------------------------------------

    def commit(
        self, slug: str, key: str, changes: Iterable[Parsed], cursor: dict[str, Any] | None,
        malformed: Iterable[Malformed] = (), *, keep_once: bool = True,
    ) -> Committed:  # fmt: skip
        """Save `changes` and `cursor` of source `key` in one transaction, then publish.
        `keep_once`: a malformed payload already kept (a live source re-reading it after a
        reconnect) is not kept again; a replay, which reads each line once, keeps every one."""
        with self.lock:
            malformed = list(malformed)
            if keep_once:
                malformed = fresh_malformed(self.db, slug, key, malformed)
            committed = save_batch(self.db, slug, changes, key, cursor, malformed)
            if committed:
                self._publish(slug, committed)
        return Committed(committed, malformed)

    def _publish(self, slug: str, committed: list[Change]) -> None:
        if self.redis is None:
            return
        try:
            if slug in self.needs_reseed:
                reseed_from_archive(self.redis, self.db, slug, self.settings.tail_length)
                self.needs_reseed.discard(slug)
            else:
                publish_after_commit(
                    self.redis, self.db, slug, committed, self.settings.tail_length
                )
            self.redis_errors.pop(slug, None)
        except redis_lib.RedisError as exc:
            # The archive holds the batch; the stream is re-seeded when Redis answers again.
            if slug not in self.needs_reseed:
                log.warning("Redis unavailable, will re-seed %s from the archive: %s", slug, exc)
            self.needs_reseed.add(slug)
            self.redis_errors[slug] = str(exc) or type(exc).__name__

    # -- healing -------------------------------------------------------------------------------

    def reseed(self, slugs: Iterable[str], *, required: bool = False) -> None:
        """Bring each event's stream level with the archive. `required` (at start): a Redis
        that does not answer is a clear error; otherwise the event waits for the next heal."""
        with self.lock:
            for slug in slugs:
                if self.redis is None:
                    raise AfaError("REDIS_URL is not set: nothing to re-seed")
                try:
                    reseed_from_archive(self.redis, self.db, slug, self.settings.tail_length)
                    self.needs_reseed.discard(slug)
                except redis_lib.RedisError as exc:
                    if required:
                        url = redact(self.settings.redis_url)
                        raise AfaError(f"cannot reach Redis at {url}: {exc}") from exc
                    self.needs_reseed.add(slug)

    def check_level(self, slugs: Iterable[str]) -> None:
        """Mark each event whose stream is behind the archive with no error seen: Redis failed
        over to a replica that had not received the last entries (replication is asynchronous),
        or lost them. Under the lock every commit is published, so any gap is one; `heal()`
        then re-seeds it now rather than at the event's next post."""
        if self.redis is None:
            return
        with self.lock:
            for slug in slugs:
                try:
                    behind = stream_last_seq(self.redis, slug) < last_seq(self.db, slug)
                except redis_lib.RedisError:
                    return  # Redis away: the next publish or heal finds out
                if behind and slug not in self.needs_reseed:
                    log.warning("stream of %s is behind the archive: re-seeding it", slug)
                    self.needs_reseed.add(slug)

    def heal(self) -> None:
        """Re-seed every event whose stream missed a publish while Redis was away."""
        if self.needs_reseed:
            self.reseed(sorted(self.needs_reseed))

    # -- status for dashboards -----------------------------------------------------------------

    def publish_states(self, rows: Iterable[tuple[str, str, Any]]) -> None:
        """(event, source key, JSON-ready state) into the event's Redis status hash, best effort:
        the archive keeps the same states for `python -m collector status`."""
        if self.redis is None:
            return
        try:
            pipe = self.redis.pipeline(transaction=False)
            for slug, key, state in rows:
                pipe.hset(status_key(slug), key, _json(state))
            pipe.execute()
        except redis_lib.RedisError as exc:
            log.debug("source states not written to Redis: %s", exc)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
