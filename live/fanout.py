"""One Redis reader per event per process, fanned out to every client of that process.

Nothing here holds a Redis connection per client: each event's `Feed` runs one XREAD BLOCK loop
on the shared pool. Each XREAD reply becomes one `Chunk`: its entries encoded once
(`sse.WireEntry`) and joined once into the bytes every client of the process sends. The reader
appends the chunk to each subscriber's pending list and wakes it; the client's response then
sends everything pending in ONE write. So a client costs one wake-up and one send per reply, not
per post, and a client that falls behind catches up in one bigger write instead of many.
Heartbeats are chunks too, broadcast by the reader, so a connection needs no timer of its own:
one task serves it, plus one that waits for the disconnect (see `app.LiveResponse`).
A client's catch-up borrows a pooled connection for one MULTI and gives it back. A reader starts
with its event's first client and stops after IDLE_SECONDS without any.

Connect (GET /live/EVENT/stream)::

    client ──► 404 unknown event · 400 bad cursor · 503 + Retry-After when the process is full
       │       or shutting down · 429 when its address holds live_max_per_address streams
       │       (counted over all the sidecar's worker processes, see census.py)
       ├──► subscribe(): if the event's reader is idle, note the stream's last id L0 and start
       │                 XREADing after L0; add this client (503 if Redis is away)
       ├──► cursor = Last-Event-ID header, else ?after=SEQ, else "now" (the stream's last seq)
       ├──► cursor >= what the running, healthy reader last dispatched (or "now"): no Redis
       │    call at all, the reader's next chunk is exactly what this client needs; otherwise
       ├──► MULTI: XRANGE - + COUNT 1 · XRANGE cursor+1 + COUNT limit+1 · XREVRANGE + - COUNT 1
       ├──► 200 text/event-stream: `retry:` hint and the catch-up in one write, then each
       ▼     wake-up's pending chunks (entries with seq > the last one sent) in one write
    who wins the race: the subscription, always. The subscriber exists before the catch-up is
    read, so an entry XADDed meanwhile is in the catch-up, pending, or both, never in neither
    (L0 is read before the catch-up, so the catch-up reaches at least L0). "Both" is settled by
    skipping pending entries with seq <= the last sent: no gap, no duplicate. The cursor and the
    catch-up are fixed before the first byte goes out, so a client holding the `retry:` hint
    knows that everything published from then on reaches it.

Catch-up::

    cursor < first retained - 1 ──► `reset` (id first-1) and the response ends: the page
                                     reloads its static page; a client that reconnects
                                     instead resumes from the oldest change still kept
    more than catchup_limit after ──► catchup_limit entries and the response ends: EventSource
                                      reconnects by Last-Event-ID after `retry` ms and takes
                                      the next bite (bounded memory, still no gap)
    otherwise ──────────────────────► all of them, then live

Disconnect::

    client goes ──► the disconnect waiter closes the subscriber ──► the response ends,
                    unsubscribe()
    client too slow ──► more than live_queue_size entries pending (its writes are blocked) ──►
                        the reader drops it there and counts it; a write blocked longer than
                        live_send_timeout is dropped by the heartbeat the same way ──► the
                        response is cancelled at once and its connection reset (no
                        half-written event, no closing chunk that would wait for a reader)
                        ──► it reconnects by Last-Event-ID
    who wins the race: the reader never waits for a client. A push that does not fit drops the
    client there and then, so one stalled phone cannot hold back the room or grow memory.

Redis restart::

    XREAD fails ──► the reader logs, sleeps (0.1 s doubling to 5 s) and XREADs again after the
    last id it delivered; heartbeats go on meanwhile. Open responses stay; /healthz says
    "redis": false; new connections get 503 + Retry-After until Redis answers.
    who wins the race: the last id. Whether Redis comes back with its AOF, empty, or re-seeded
    from the archive by the collector with the same IDs, XREAD after the last delivered id hands
    over exactly the entries that are new to these clients, in order, whenever they arrive.

Shutdown (SIGTERM)::

    uvicorn stops accepting ──► `Fanout.close()` ends every open stream cleanly ──► browsers
    reconnect by Last-Event-ID after the `retry:` hint (to another sidecar, or this one
    restarted) ──► lifespan exit: readers are cancelled, the pool closed. who wins the race:
    the clients' cursors; nothing is lost that a reconnect can fetch from the stream.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aredis
from redis.exceptions import RedisError

from core.tail import seq_of, stream_key

from .sse import WireEntry, ping_event, wire_entry

log = logging.getLogger("live.fanout")

BLOCK_MS = 2_000  # one XREAD waits at most this long, so an idle reader notices it is idle
IDLE_SECONDS = 30.0  # a reader with no subscribers for this long stops
BACKOFF_FIRST, BACKOFF_MAX = 0.1, 5.0
READ_COUNT = 500


@dataclass
class Stats:
    """Process-wide counters for /stats and /metrics."""

    connections: int = 0
    sent: int = 0
    slow_dropped: int = 0
    rejected: int = 0
    rejected_per_address: int = 0
    resets: int = 0
    reader_errors: int = 0


@dataclass(frozen=True, slots=True)
class Chunk:
    """What one XREAD reply (or one heartbeat) puts on the wire, joined once for every client."""

    first: int  # seq of the first entry; 0 for a heartbeat
    last: int
    wire: bytes
    entries: tuple[WireEntry, ...] = ()

    @classmethod
    def of(cls, entries: list[WireEntry]) -> Chunk:
        wire = b"".join(entry.wire for entry in entries)
        return cls(entries[0].seq, entries[-1].seq, wire, tuple(entries))

    def after(self, seq: int) -> bytes:
        """The part of the chunk a client that already sent `seq` still needs."""
        if not self.entries or self.first > seq:
            return self.wire
        return b"".join(entry.wire for entry in self.entries if entry.seq > seq)


class Subscriber:
    """One client's place in a feed: chunks pushed by the reader and not yet sent."""

    __slots__ = ("pending", "count", "waiter", "closed", "dropped", "sending_since", "task")

    def __init__(self) -> None:
        self.pending: list[Chunk] = []
        self.count = 0  # entries pending
        self.waiter: asyncio.Future[None] | None = None
        self.closed = False  # no more chunks: dropped, disconnected or shutting down
        self.dropped = False  # closed because it was too slow
        self.sending_since = 0.0  # monotonic start of a write in progress, 0 when idle
        self.task: asyncio.Task[Any] | None = None  # the response's task, cancelled on a drop

    def push(self, chunk: Chunk, limit: int) -> bool:
        """Queue a chunk and wake the client; False when that would pass `limit` entries."""
        self.count += len(chunk.entries)
        if self.count > limit:
            return False
        self.pending.append(chunk)
        self._wake()
        return True

    def close(self) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def next(self) -> list[Chunk]:
        """Wait for chunks and take them all; [] once the subscriber is closed."""
        while not self.pending and not self.closed:
            self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter
        self.waiter = None
        if self.closed:
            return []
        chunks, self.pending, self.count = self.pending, [], 0
        return chunks


class Feed:
    """The single reader of one event's stream in this process, and its subscribers."""

    def __init__(
        self,
        redis: aredis.Redis,
        event: str,
        stats: Stats,
        queue_size: int,
        cache_size: int,
        heartbeat: float = 15.0,
        send_timeout: float = 30.0,
    ) -> None:
        self.redis, self.event, self.key, self.stats = redis, event, stream_key(event), stats
        self.queue_size, self.cache_size = queue_size, cache_size
        self.heartbeat, self.send_timeout = heartbeat, send_timeout
        self.subscribers: set[Subscriber] = set()
        self.last_id = "0-0"
        self.read = 0
        self._cache: OrderedDict[int, WireEntry] = OrderedDict()
        self.healthy = False  # the last XREAD succeeded
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._pinged = time.monotonic()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def subscribe(self) -> Subscriber:
        """Join the fan-out, starting the reader first if it is idle (may raise RedisError)."""
        async with self._lock:
            if not self.running:
                self.last_id = await self.stream_last_id()
                self.healthy = True
                self._task = asyncio.create_task(self._run(), name=f"live-reader-{self.event}")
            subscriber = Subscriber()
            self.subscribers.add(subscriber)  # no await since the running check: no race
            return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)

    async def stream_last_id(self) -> str:
        newest = await self.redis.xrevrange(self.key, count=1)
        return newest[0][0] if newest else "0-0"

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def close(self) -> None:
        """End every open response of this feed (shutdown)."""
        for subscriber in list(self.subscribers):
            subscriber.close()

    async def _run(self) -> None:
        backoff, idle_since = BACKOFF_FIRST, time.monotonic()
        block = max(1, min(BLOCK_MS, int(self.heartbeat * 1000)))
        while True:
            self._beat()
            try:
                reply = await self.redis.xread(
                    {self.key: self.last_id}, count=READ_COUNT, block=block
                )
            except (RedisError, OSError) as exc:
                self.healthy = False
                self.stats.reader_errors += 1
                log.warning("reader %s: %s; retrying in %.1fs", self.key, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            backoff, self.healthy = BACKOFF_FIRST, True
            for _key, entries in reply or ():
                self._dispatch(entries)
            if self.subscribers:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > IDLE_SECONDS:
                self._task = None  # checked and cleared with no await between: see subscribe()
                return

    def _dispatch(self, entries: list[tuple[str, dict[str, str]]]) -> None:
        """Push one chunk to every subscriber; one that has too much pending is dropped."""
        if not entries:
            return
        encoded = [self.encoded(entry_id, fields) for entry_id, fields in entries]
        self.last_id, self.read = entries[-1][0], self.read + len(entries)
        self._broadcast(Chunk.of(encoded))

    def _broadcast(self, chunk: Chunk) -> None:
        for subscriber in list(self.subscribers):
            if not subscriber.push(chunk, self.queue_size):
                self._drop(subscriber)

    def _beat(self) -> None:
        """Every `heartbeat` seconds: a ping to everyone, and drop writes blocked too long."""
        now = time.monotonic()
        if now - self._pinged < self.heartbeat:
            return
        self._pinged = now
        self._broadcast(Chunk(0, 0, ping_event()))
        for subscriber in list(self.subscribers):
            since = subscriber.sending_since
            if since and now - since > self.send_timeout:
                self._drop(subscriber)

    def _drop(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)
        subscriber.pending.clear()
        subscriber.dropped = True
        subscriber.close()
        if subscriber.sending_since and subscriber.task is not None:
            subscriber.task.cancel()  # blocked in a write: end it now
        self.stats.slow_dropped += 1
        log.info("dropped a slow client of %s", self.event)

    def encoded(self, entry_id: str, fields: dict[str, str]) -> WireEntry:
        """The entry's wire bytes, encoded once and reused while it stays in a small cache."""
        seq = seq_of(entry_id)
        cached = self._cache.get(seq)
        if cached is not None and cached.data == fields.get("data"):
            self._cache.move_to_end(seq)
            return cached
        entry = wire_entry(entry_id, fields)
        self._cache[seq] = entry
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return entry

    async def catch_up(self, after: int, limit: int) -> tuple[int, list[WireEntry], int]:
        """(first retained seq, up to limit + 1 entries after `after`, last seq), read in one
        MULTI so the three agree; the seqs are 0 for an empty stream."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.xrange(self.key, "-", "+", count=1)
        pipe.xrange(self.key, f"{after + 1}-0", "+", count=limit + 1)
        pipe.xrevrange(self.key, "+", "-", count=1)
        oldest, entries, newest = await pipe.execute()
        first = seq_of(oldest[0][0]) if oldest else 0
        last = seq_of(newest[0][0]) if newest else 0
        return first, [self.encoded(entry_id, fields) for entry_id, fields in entries], last


class Fanout:
    """Every event's Feed in this process, created on first use, and the per-address counts."""

    def __init__(
        self,
        redis: aredis.Redis,
        events: set[str],
        queue_size: int,
        cache_size: int,
        heartbeat: float = 15.0,
        send_timeout: float = 30.0,
    ) -> None:
        self.redis, self.events = redis, events
        self.queue_size, self.cache_size = queue_size, cache_size
        self.heartbeat, self.send_timeout = heartbeat, send_timeout
        self.stats = Stats()
        self.feeds: dict[str, Feed] = {}
        self.addresses: dict[str, int] = {}
        self.admitted = 0  # streams between enter() and leave(): counted before any await
        self.on_leave: Callable[[str], None] | None = None  # census.py: a count went down
        self.closing = False

    def feed(self, event: str) -> Feed:
        if event not in self.events:
            raise KeyError(event)
        if event not in self.feeds:
            self.feeds[event] = Feed(
                self.redis, event, self.stats, self.queue_size, self.cache_size,
                self.heartbeat, self.send_timeout,
            )  # fmt: skip
        return self.feeds[event]

    @property
    def clients(self) -> int:
        return sum(len(feed.subscribers) for feed in self.feeds.values())

    def enter(self, address: str) -> None:
        self.admitted += 1
        self.addresses[address] = self.addresses.get(address, 0) + 1

    def leave(self, address: str) -> None:
        self.admitted -= 1
        left = self.addresses.get(address, 0) - 1
        if left > 0:
            self.addresses[address] = left
        else:
            self.addresses.pop(address, None)
        if self.on_leave is not None:
            self.on_leave(address)

    def close(self) -> None:
        """Shutting down: refuse newcomers and end every open response cleanly."""
        self.closing = True
        for feed in self.feeds.values():
            feed.close()

    async def stop(self) -> None:
        await asyncio.gather(*(feed.stop() for feed in self.feeds.values()))

    def snapshot(self) -> dict[str, Any]:
        """The /stats document."""
        stats = self.stats
        return {
            "viewers": {slug: len(f.subscribers) for slug, f in sorted(self.feeds.items())},
            "readers": {slug: f.running for slug, f in sorted(self.feeds.items())},
            "entries_read": {slug: f.read for slug, f in sorted(self.feeds.items())},
            "connections": stats.connections,
            "posts_sent": stats.sent,
            "slow_dropped": stats.slow_dropped,
            "rejected": stats.rejected,
            "rejected_per_address": stats.rejected_per_address,
            "resets": stats.resets,
            "reader_errors": stats.reader_errors,
        }


@dataclass(frozen=True)
class CatchUp:
    """Where a client starts: its cursor, what the stream keeps (first..last), what it missed."""

    after: int
    first: int
    last: int
    entries: list[WireEntry]

    @property
    def reset(self) -> bool:
        """The cursor is older than the retained tail: changes after it are gone."""
        return bool(self.first) and self.after < self.first - 1


async def catch_up(feed: Feed, after: int | None, limit: int) -> CatchUp:
    """Read a new subscriber's starting point (may raise RedisError). `after` None means now.

    Call it after `feed.subscribe()`: see the module docstring for why."""
    current = seq_of(feed.last_id)
    if feed.running and feed.healthy and (after is None or after >= current):
        # Nothing to catch up on: what the reader dispatches next is exactly what this client
        # needs, and it is subscribed already. No Redis round trip (a crowd joining at once).
        after = current if after is None else after
        return CatchUp(after, 0, current, [])
    if after is None:
        after = seq_of(await feed.stream_last_id())
    first, entries, last = await feed.catch_up(after, limit)
    return CatchUp(after, first, last, entries)
