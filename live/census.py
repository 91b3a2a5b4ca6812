"""One sidecar's counts across its worker processes (`live serve --workers N`), kept in Redis.

Each worker is a process with its own Fanout, so its own viewers, counters and per-address
counts. Each worker publishes them to Redis, and /stats, /metrics and the per-address limit
read the sum over the sidecar's live workers. Keys, one hash tag per sidecar (one Cluster slot):

    afa:live:{GROUP}:workers          ZSET  worker id -> Redis time of its last beat
    afa:live:{GROUP}:stats:WORKER     HASH  the worker's /stats figures, rewritten each beat
    afa:live:{GROUP}:addresses:WORKER HASH  client address -> the worker's open streams

GROUP names one sidecar: its host name and the pid of the process that owns the listening
socket (the parent of every worker), so two sidecars on one Redis never add up each other's
figures, and the dashboard can still sum several sidecars' /stats.

Beat (every BEAT_SECONDS, off the request path)::

    worker ──► ZADD its id at Redis TIME · rewrite its stats hash · rewrite its addresses hash
               (MULTI: nobody sees it half written) · both expire after TTL_SECONDS
    a worker killed with SIGKILL stops beating: after TTL_SECONDS its id no longer counts as
    live and its hashes expire, so its viewers and addresses vanish from every sum.

A sidecar of one process (the default) keeps all of this in memory: no keys, no Redis calls.

Connect, when the per-address limit is on::

    one process ──► its own count decides, no Redis call
    workers ──► one EVALSHA: own count (this stream included) + every other live
                           worker's count for the address, refused when over the limit, else
                           the own count is written at once (so a burst spread over the
                           workers is seen by all of them, atomically)
    Redis away ──► the worker's own count decides (the limit holds per worker meanwhile)
    who wins the race: Redis, which runs one script at a time. A stream that closes is
    released at the next beat (at most BEAT_SECONDS late), never early.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Iterable
from typing import Any

import redis.asyncio as aredis
from redis.exceptions import RedisError

from .fanout import Fanout

log = logging.getLogger("live.census")

BEAT_SECONDS = 1.0
TTL_SECONDS = 5  # a worker silent this long is gone

_NOW = "local t = redis.call('TIME') local now = tonumber(t[1]) + tonumber(t[2]) / 1e6 "

# KEYS workers, own addresses · ARGV address, limit, own count, ttl, addresses prefix, own id
ADMIT = (
    _NOW
    + """
local total = tonumber(ARGV[3])
for _, w in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], now - tonumber(ARGV[4]), '+inf')) do
  if w ~= ARGV[6] then total = total + (tonumber(redis.call('HGET', ARGV[5] .. w, ARGV[1])) or 0) end
end
if total > tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return 1
"""
)

# KEYS workers · ARGV own id, ttl
BEAT = (
    _NOW
    + """
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - ttl)
redis.call('EXPIRE', KEYS[1], ttl * 10)
return 1
"""
)

# KEYS workers · ARGV ttl, own id, stats prefix → the other live workers' stats hashes
OTHERS = (
    _NOW
    + """
local found = {}
for _, w in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], now - tonumber(ARGV[1]), '+inf')) do
  if w ~= ARGV[2] then table.insert(found, redis.call('HGETALL', ARGV[3] .. w)) end
end
return found
"""
)

COUNTERS = ("connections", "posts_sent", "slow_dropped", "rejected", "rejected_per_address",
            "resets", "reader_errors")  # fmt: skip
PER_EVENT = {"viewers": "viewers:", "readers": "reader:", "entries_read": "read:"}


def sidecar_group(owner_pid: int) -> str:
    """A sidecar's name in Redis: host name and the pid that owns the listening socket."""
    return f"{socket.gethostname()}-{owner_pid}"


class Census:
    """This worker's part of the sidecar's shared counts; see the module docstring."""

    def __init__(self, redis: aredis.Redis, fanout: Fanout, group: str | None) -> None:
        """`group` None: a sidecar of one process, whose counts stay in memory."""
        self.redis, self.fanout, self.shared = redis, fanout, group is not None
        self.worker = f"{os.getpid()}-{secrets.token_hex(3)}"
        prefix = f"afa:live:{{{group or ''}}}"
        self.workers_key = f"{prefix}:workers"
        self.stats_prefix, self.addresses_prefix = f"{prefix}:stats:", f"{prefix}:addresses:"
        self.stats_key = self.stats_prefix + self.worker
        self.addresses_key = self.addresses_prefix + self.worker
        self._admit = redis.register_script(ADMIT)
        self._beat = redis.register_script(BEAT)
        self._others = redis.register_script(OTHERS)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if not self.shared:
            return
        with contextlib.suppress(RedisError, OSError):
            await self.beat()  # known to the other workers before the first request
        self._task = asyncio.create_task(self._run(), name="live-census")

    async def stop(self) -> None:
        """Stop beating and take this worker's figures out of the sums at once."""
        if not self.shared:
            return
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        with contextlib.suppress(RedisError, OSError):
            pipe = self.redis.pipeline(transaction=True)
            pipe.zrem(self.workers_key, self.worker)
            pipe.delete(self.stats_key, self.addresses_key)
            await pipe.execute()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(BEAT_SECONDS)
            try:
                await self.beat()
            except (RedisError, OSError) as exc:
                log.debug("census beat failed: %s", exc)

    async def beat(self) -> None:
        """Say this worker is alive and rewrite its figures (see the module docstring)."""
        await self._beat(keys=[self.workers_key], args=[self.worker, TTL_SECONDS])
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(self.stats_key, self.addresses_key)
        pipe.hset(self.stats_key, mapping=flatten(self.fanout.snapshot()))
        if self.fanout.addresses:
            pipe.hset(self.addresses_key, mapping=self.fanout.addresses)  # type: ignore[arg-type]
        pipe.expire(self.stats_key, TTL_SECONDS)
        pipe.expire(self.addresses_key, TTL_SECONDS)
        await pipe.execute()

    async def admit(self, address: str, limit: int) -> bool:
        """May one more stream from `address` open? Call it after `fanout.enter(address)`."""
        own = self.fanout.addresses.get(address, 0)
        if own > limit:
            return False
        if not self.shared:
            return True
        try:
            admitted = await self._admit(
                keys=[self.workers_key, self.addresses_key],
                args=[address, limit, own, TTL_SECONDS, self.addresses_prefix, self.worker],
            )
        except (RedisError, OSError) as exc:
            log.debug("census admit failed, this worker's count decides: %s", exc)
            return True
        return bool(admitted)

    async def snapshot(self) -> dict[str, Any]:
        """The /stats document summed over the sidecar's live workers (this one's figures are
        current, the others' as of their last beat); this worker's alone if Redis is away."""
        here = self.fanout.snapshot()
        if not self.shared:
            return {**here, "workers": 1}
        try:
            found = await self._others(
                keys=[self.workers_key], args=[TTL_SECONDS, self.worker, self.stats_prefix]
            )
        except (RedisError, OSError):
            found = []
        others = [dict(zip(flat[::2], flat[1::2], strict=True)) for flat in found]
        total = merge(here, others)
        total["workers"] = 1 + len(others)
        total["this_worker"] = {"id": self.worker, "connections": here["connections"]}
        return total


def flatten(snapshot: dict[str, Any]) -> dict[str, int]:
    """A Fanout.snapshot() as one flat hash of integers."""
    flat = {name: int(snapshot[name]) for name in COUNTERS}
    for name, prefix in PER_EVENT.items():
        flat.update({prefix + slug: int(value) for slug, value in snapshot[name].items()})
    return flat


def merge(here: dict[str, Any], others: Iterable[dict[str, str]]) -> dict[str, Any]:
    """This worker's snapshot plus the other workers' flat hashes."""
    total = {name: here[name] for name in COUNTERS}
    per_event = {name: {slug: int(v) for slug, v in here[name].items()} for name in PER_EVENT}
    for flat in others:
        for field, value in flat.items():
            if field in total:
                total[field] += int(value)
                continue
            for name, prefix in PER_EVENT.items():
                if field.startswith(prefix):
                    slug = field[len(prefix) :]
                    per_event[name][slug] = per_event[name].get(slug, 0) + int(value)
    result: dict[str, Any] = {"viewers": dict(sorted(per_event["viewers"].items()))}
    result["readers"] = {slug: n > 0 for slug, n in sorted(per_event["readers"].items())}
    result["entries_read"] = dict(sorted(per_event["entries_read"].items()))
    result.update((name, total[name]) for name in COUNTERS)
    return result
