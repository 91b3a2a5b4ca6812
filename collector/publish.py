"""Publish a committed batch to the event's Redis stream (core.stream), and re-seed the stream
from the archive when Redis is behind it.

The archive is the truth: anything here can be rebuilt from it with the same IDs, so publishing
is idempotent and a crash between commit and publish loses nothing.
"""

from __future__ import annotations

import json
import logging

import redis as redis_lib
import sqlite_utils

from core.archive import Change, changes_after, last_seq, write_transaction
from core.stream import COUNTED, publish_changes, stream_last_seq
from core.tail import counters_key, decode_entry, entry_id, events_key, stream_key

log = logging.getLogger("collector.publish")
RESEED_CHUNK = 1_000


def publish_after_commit(
    redis: redis_lib.Redis, db: sqlite_utils.Database, event: str,
    changes: list[Change], tail_length: int,
) -> int:  # fmt: skip
    """Publish a committed batch; if the stream is missing earlier changes (Redis restarted or
    lost data mid-run), re-seed from the archive instead so the stream never has a gap."""
    if not changes:
        return 0
    added = publish_changes(redis, event, changes, tail_length, after=changes[0].seq - 1)
    if added < 0:
        return reseed_from_archive(redis, db, event, tail_length)
    return added


def reseed_from_archive(
    redis: redis_lib.Redis, db: sqlite_utils.Database, event: str, tail_length: int
) -> int:
    """Bring the stream level with the archive: publish every change after the stream's last
    entry (at most the last `tail_length`), with the same IDs. Returns entries added."""
    redis.sadd(events_key(), event)
    archive_last, stream_last = last_seq(db, event), stream_last_seq(redis, event)
    floor = max(archive_last - tail_length, 0)
    if stream_last > archive_last and _same_history(redis, db, event, archive_last):
        # The archive was restored from its replica and lacks the last changes the stream
        # carried: number on after them, so open pages (whose Last-Event-ID is past the restored
        # archive) see the backfilled posts as new changes instead of waiting for the sequence
        # to catch up with them.
        log.warning("stream %s is at %s, restored archive at %s: numbering on from %s",
                    stream_key(event), stream_last, archive_last, stream_last)  # fmt: skip
        raise_sequence(db, event, stream_last)
        archive_last = stream_last
    elif stream_last > archive_last or (stream_last and stream_last < floor):
        # A stream from another archive, or one too far behind to join without a gap.
        log.warning("stream %s is at %s, archive at %s: rebuilding it",
                    stream_key(event), stream_last, archive_last)  # fmt: skip
        redis.delete(stream_key(event))
        stream_last = 0
    added = 0
    start = max(stream_last, floor)
    while start < archive_last:
        chunk = list(changes_after(db, event, start, limit=RESEED_CHUNK))
        if not chunk:
            break
        added += publish_changes(redis, event, chunk, tail_length)
        start = chunk[-1].seq
    _set_counters(redis, db, event)
    return added


def _same_history(redis: redis_lib.Redis, db: sqlite_utils.Database, event: str, seq: int) -> bool:
    """Whether the stream's entry `seq` is the archive's change `seq` (same kind, same post):
    the stream and the archive then share their history up to it."""
    if seq <= 0:
        return False
    entries = redis.xrange(stream_key(event), entry_id(seq), entry_id(seq))
    change = next(changes_after(db, event, seq - 1, limit=1), None)
    if not entries or change is None or change.seq != seq:
        return False
    kind, data = decode_entry(entries[0][1])
    return kind == change.kind and json.loads(data).get("uri") == change.uri


def raise_sequence(db: sqlite_utils.Database, event: str, seq: int) -> None:
    """The event's next change is numbered after `seq`."""
    with write_transaction(db):
        db.execute(
            "INSERT INTO sequences (event, last_seq) VALUES (?, ?) "
            "ON CONFLICT (event) DO UPDATE SET last_seq = max(last_seq, excluded.last_seq)",
            [event, seq],
        )


def _set_counters(redis: redis_lib.Redis, db: sqlite_utils.Database, event: str) -> None:
    """Counters rebuilt from the archive, so a reseed never double counts."""
    rows = db.execute(
        "SELECT kind, count(*) FROM changes WHERE event = ? GROUP BY kind", [event]
    ).fetchall()
    values = {name: 0 for name in COUNTED.values()}
    values.update({COUNTED[kind]: count for kind, count in rows if kind in COUNTED})
    values["last_seq"] = last_seq(db, event)
    redis.hset(counters_key(event), mapping=values)
