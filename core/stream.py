"""Writing the live tail: committed changes XADDed to the event's Redis stream with the change's
sequence number as the entry ID (`SEQ-0`), counters bumped in the same script call.

The archive is the truth: anything here can be rebuilt from it with the same IDs, so publishing
is idempotent and a crash between commit and publish loses nothing. The collector publishes each
batch it commits (collector/publish.py, which also re-seeds); an organizer's decision publishes
what the stream lacks (`publish_pending`). Key names and the entry encoding are in core.tail.
"""

from __future__ import annotations

from collections.abc import Iterable

import redis as redis_lib
import sqlite_utils

from .archive import Change, changes_after, last_seq
from .tail import counters_key, encode_entry, entry_id, events_key, seq_of, stream_key

COUNTED = {"post": "posts", "edit": "edits", "retract": "retracts", "pin": "pins", "unpin": "unpins",
           "boost": "boosts"}  # fmt: skip


def stream_last_seq(redis: redis_lib.Redis, event: str) -> int:
    """The sequence number of the stream's newest entry; 0 for an empty or missing stream."""
    entries = redis.xrevrange(stream_key(event), count=1)
    return seq_of(entries[0][0]) if entries else 0


def publish_changes(
    redis: redis_lib.Redis, event: str, changes: Iterable[Change], tail_length: int,
    *, after: int | None = None,
) -> int:  # fmt: skip
    """XADD each change and bump the counters in one script call (one round trip); entries
    already in the stream are skipped and not counted. Returns entries added; when `after` is
    given and the stream ends before it, adds nothing and returns -1 (the stream has a gap the
    caller must re-seed)."""
    changes = list(changes)
    if not changes:
        return 0
    args: list = [tail_length, -1 if after is None else after, changes[-1].seq]
    for change in changes:
        if change.kind not in COUNTED:
            raise ValueError(f"unknown change kind {change.kind!r}")
        fields = _entry(change)
        args += (entry_id(change.seq), fields["kind"], fields["data"])
    return _script(redis)(keys=[stream_key(event), counters_key(event)], args=args, client=redis)


# XADD every entry (an ID already in the stream is a replay or a reseed: skipped, not an error),
# then count what was added, per kind, and set last_seq: the work of a pipeline of 2,000 XADDs
# in one command, so the client encodes three strings per change and reads one reply.
_PUBLISH = """
local stream, counters = KEYS[1], KEYS[2]
local maxlen, after, last_seq = ARGV[1], tonumber(ARGV[2]), ARGV[3]
if after >= 0 then
  local newest = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)[1]
  if (newest and tonumber(string.match(newest[1], '^%d+')) or 0) < after then
    return -1
  end
end
local names = {NAMES}
local added, counts, order = 0, {}, {}
for i = 4, #ARGV, 3 do
  local kind = ARGV[i + 1]
  if counts[kind] == nil then
    counts[kind] = 0
    order[#order + 1] = kind
  end
  local reply = redis.pcall('XADD', stream, 'MAXLEN', '~', maxlen, ARGV[i],
                            'kind', kind, 'data', ARGV[i + 2])
  if type(reply) == 'table' and reply.err then
    if not string.find(reply.err, 'equal or smaller', 1, true) then
      return redis.error_reply(reply.err)
    end
  else
    added = added + 1
    counts[kind] = counts[kind] + 1
  end
end
for _, kind in ipairs(order) do
  redis.call('HINCRBY', counters, names[kind], counts[kind])
end
redis.call('HSET', counters, 'last_seq', last_seq)
return added
""".replace("NAMES", ", ".join(f"{kind} = '{name}'" for kind, name in COUNTED.items()))
_SCRIPT: list = []


def _script(redis: redis_lib.Redis):
    """The registered script (EVALSHA, loaded again by redis-py if Redis lost it)."""
    if not _SCRIPT:
        _SCRIPT.append(redis.register_script(_PUBLISH))
    return _SCRIPT[0]


def _entry(change: Change) -> dict[str, str]:
    """The stream entry; a change just saved carries its payload's JSON already."""
    text = getattr(change, "text", "")
    if text and change.kind in COUNTED:
        return {"kind": change.kind, "data": text}  # what encode_entry would write
    return encode_entry(change.kind, change.data)


def publish_pending(
    redis: redis_lib.Redis, db: sqlite_utils.Database, event: str, tail_length: int
) -> int:
    """Publish every committed change the stream lacks, in order, from its last entry on (at most
    the last `tail_length`). Safe beside a running collector: entries already there are skipped."""
    redis.sadd(events_key(), event)
    start = max(stream_last_seq(redis, event), last_seq(db, event) - tail_length, 0)
    added = 0
    while True:
        chunk = list(changes_after(db, event, start, limit=1_000))
        if not chunk:
            return added
        added += publish_changes(redis, event, chunk, tail_length)
        start = chunk[-1].seq
