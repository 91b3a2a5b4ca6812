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

    worker ──► ZADD its id at Redis TIME · rewrite its stats hash (MULTI: nobody sees it half
               written) · both its hashes expire after TTL_SECONDS; an addresses hash found
               gone (Redis lost it, or the worker stalled) is written afresh
    a worker killed with SIGKILL stops beating: after TTL_SECONDS its id no longer counts as
    live and its hashes expire, so its viewers and addresses vanish from every sum.

A sidecar of one process (the default) keeps all of this in memory: no keys, no Redis calls.

Connect, when the per-address limit is on::

    one process ──► its own count decides, no Redis call
    workers ──► the stream waits for the worker's next write of its addresses hash: one
                EVALSHA for every stream that arrived meanwhile (a crowd costs a few round
                trips, not one each, and one pooled connection): per address, the own count +
                every other live worker's count, as many admitted as fit under the limit, and
                the own count written at once (so a burst spread over the workers is seen by
                all of them); the same call writes the counts of streams that closed since
    Redis away ──► the worker's own count decides (the limit holds per worker meanwhile)
    who wins the race: Redis, which runs one script at a time, and each worker's one writer,
    whose calls follow one another with counts read just before each: a count in Redis is
    never older than the worker's previous call, so it never lets more in than the limit.
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

# KEYS workers, own addresses · ARGV limit, ttl, addresses prefix, own id, replace (1: start
# the hash afresh), then per address: address, own count (waiting streams included), waiting
# streams → per address, how many of its waiting streams to admit
ADMIT = (
    _NOW
    + """
local limit, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
if ARGV[5] == '1' then redis.call('DEL', KEYS[2]) end
local others = {}
for _, w in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], now - ttl, '+inf')) do
  if w ~= ARGV[4] then table.insert(others, ARGV[3] .. w) end
end
local admitted = {}
for i = 6, #ARGV, 3 do
  local address, own, waiting = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local n = 0
  if waiting > 0 then
    local total = own - waiting
    for _, key in ipairs(others) do total = total + (tonumber(redis.call('HGET', key, address)) or 0) end
    n = math.max(0, math.min(waiting, limit - total))
  end
  local count = own - waiting + n
  if count > 0 then redis.call('HSET', KEYS[2], address, count) else redis.call('HDEL', KEYS[2], address) end
  table.insert(admitted, n)
end
redis.call('EXPIRE', KEYS[2], ttl)
return admitted
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
        self._waiting: dict[str, list[asyncio.Future[bool]]] = {}  # streams to admit
        self._changed: set[str] = set()  # addresses whose count went down since last written
        self._replace = False  # the addresses hash is gone (expired, Redis lost it): rewrite it
        self._writer: asyncio.Task[None] | None = None
        self.limit = 0
        if self.shared:
            fanout.on_leave = self._left

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
        if self._writer is not None:
            await asyncio.wait({self._writer}, timeout=2)
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
        pipe.delete(self.stats_key)
        pipe.hset(self.stats_key, mapping=flatten(self.fanout.snapshot()))
        pipe.expire(self.stats_key, TTL_SECONDS)
        pipe.expire(self.addresses_key, TTL_SECONDS)
        *_, kept = await pipe.execute()
        if not kept and self.fanout.addresses:
            self._replace = True
            self._write_soon()

    async def admit(self, address: str, limit: int) -> bool:
        """May one more stream from `address` open? Call it after `fanout.enter(address)`;
        when the answer is no, the census has already called `fanout.leave(address)`."""
        self.limit = limit
        if not self.shared:
            if self.fanout.addresses.get(address, 0) <= limit:
                return True
            self.fanout.leave(address)
            return False
        future = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(address, []).append(future)
        self._write_soon()
        return await future

    def _left(self, address: str) -> None:
        self._changed.add(address)
        self._write_soon()

    def _write_soon(self) -> None:
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_addresses(), name="live-addresses")

    async def _write_addresses(self) -> None:
        """The one writer of this worker's addresses hash. Each round is one script call: it
        answers every stream waiting for admission and writes the current count of every
        address that changed. Rounds follow one another, each with counts read just before
        it, so the hash never goes back to an older count."""
        while self._waiting or self._changed or self._replace:
            batch, self._waiting = self._waiting, {}
            replace, self._replace = self._replace, False
            changed = set(self.fanout.addresses) if replace else self._changed
            self._changed = set()
            counts = self.fanout.addresses
            args: list[str | int] = [self.limit, TTL_SECONDS, self.addresses_prefix, self.worker,
                                     int(replace)]  # fmt: skip
            for address, futures in batch.items():
                args += [address, counts.get(address, 0), len(futures)]
            for address in changed - batch.keys():
                args += [address, counts.get(address, 0), 0]
            try:
                admitted = await self._admit(keys=[self.workers_key, self.addresses_key], args=args)
            except Exception as exc:  # Redis away, or worse: never leave a stream waiting
                log.debug("census admit failed, this worker's counts decide: %s", exc)
                admitted = [self._fits(address, len(f)) for address, f in batch.items()]
                self._replace = False  # the next beat finds out what Redis still holds
            for (address, futures), n in zip(batch.items(), admitted, strict=False):
                for index, future in enumerate(futures):
                    if future.done():
                        continue  # cancelled: its request has given the place back
                    if index >= int(n):
                        self.fanout.leave(address)  # now, before the next round counts it
                    future.set_result(index < int(n))
        self._writer = None  # no await since the loop's check: the next change starts anew

    def _fits(self, address: str, waiting: int) -> int:
        """How many of `waiting` streams fit under the limit by this worker's count alone."""
        return max(0, min(waiting, self.limit - (self.fanout.addresses.get(address, 0) - waiting)))

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
