"""Publish committed changes to the event's Redis stream, with the change's sequence number as
the entry ID (`SEQ-0`), and re-seed the stream from the archive when Redis is behind it.

The archive is the truth: anything here can be rebuilt from it with the same IDs, so publishing
is idempotent and a crash between commit and publish loses nothing.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable

import redis as redis_lib
import sqlite_utils

from core.archive import Change, changes_after, last_seq
from core.tail import counters_key, encode_entry, entry_id, events_key, seq_of, stream_key

log = logging.getLogger("collector.publish")
RESEED_CHUNK = 1_000
COUNTED = {"post": "posts", "edit": "edits", "retract": "retracts"}


def stream_last_seq(redis: redis_lib.Redis, event: str) -> int:
    """The sequence number of the stream's newest entry; 0 for an empty or missing stream."""
    entries = redis.xrevrange(stream_key(event), count=1)
    return seq_of(entries[0][0]) if entries else 0


def publish_changes(
    redis: redis_lib.Redis, event: str, changes: Iterable[Change], tail_length: int
) -> int:
    """XADD each change and bump the counters in one pipeline (one round trip); entries already
    in the stream are skipped, and the counters taken back for them. Returns entries added."""
    changes = list(changes)
    if not changes:
        return 0
    pipe = redis.pipeline(transaction=False)
    key = stream_key(event)
    for change in changes:
        pipe.xadd(key, _entry(change), id=entry_id(change.seq), maxlen=tail_length,
                  approximate=True)  # fmt: skip
    counted = Counter(COUNTED[c.kind] for c in changes if c.kind in COUNTED)
    _counters(pipe, event, counted, changes[-1].seq)
    results = pipe.execute(raise_on_error=False)
    skipped = Counter()
    for change, result in zip(changes, results, strict=False):
        if isinstance(result, redis_lib.ResponseError):
            if "equal or smaller" not in str(result):
                raise result
            skipped[COUNTED[change.kind]] += 1  # already published (a replay, or a reseed)
    if skipped:
        _counters(redis.pipeline(transaction=False), event, Counter(
            {name: -n for name, n in skipped.items()}), None).execute()  # fmt: skip
    return len(changes) - sum(skipped.values())


def _entry(change: Change) -> dict[str, str]:
    """The stream entry; a change just saved carries its payload's JSON already."""
    text = getattr(change, "text", "")
    if text and change.kind in COUNTED:
        return {"kind": change.kind, "data": text}  # what encode_entry would write
    return encode_entry(change.kind, change.data)


def publish_after_commit(
    redis: redis_lib.Redis, db: sqlite_utils.Database, event: str,
    changes: list[Change], tail_length: int,
) -> int:  # fmt: skip
    """Publish a committed batch; if the stream is missing earlier changes (Redis restarted or
    lost data mid-run), re-seed from the archive instead so the stream never has a gap."""
    if not changes:
        return 0
    if stream_last_seq(redis, event) < changes[0].seq - 1:
        return reseed_from_archive(redis, db, event, tail_length)
    return publish_changes(redis, event, changes, tail_length)


def reseed_from_archive(
    redis: redis_lib.Redis, db: sqlite_utils.Database, event: str, tail_length: int
) -> int:
    """Bring the stream level with the archive: publish every change after the stream's last
    entry (at most the last `tail_length`), with the same IDs. Returns entries added."""
    redis.sadd(events_key(), event)
    archive_last, stream_last = last_seq(db, event), stream_last_seq(redis, event)
    floor = max(archive_last - tail_length, 0)
    if stream_last > archive_last or (stream_last and stream_last < floor):
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


def _counters(pipe, event: str, added: Counter, seq: int | None):
    for name, count in added.items():
        pipe.hincrby(counters_key(event), name, count)
    if seq is not None:
        pipe.hset(counters_key(event), "last_seq", seq)
    return pipe


def _set_counters(redis: redis_lib.Redis, db: sqlite_utils.Database, event: str) -> None:
    """Counters rebuilt from the archive, so a reseed never double counts."""
    rows = db.execute(
        "SELECT kind, count(*) FROM changes WHERE event = ? GROUP BY kind", [event]
    ).fetchall()
    values = {name: 0 for name in COUNTED.values()}
    values.update({COUNTED[kind]: count for kind, count in rows if kind in COUNTED})
    values["last_seq"] = last_seq(db, event)
    redis.hset(counters_key(event), mapping=values)
