"""One Redis reader per event per process, fanned out to a bounded queue per client.

Nothing here holds a Redis connection per client: each event's `Feed` runs one XREAD BLOCK loop
on the shared pool and pushes every entry, encoded once (`sse.WireEntry`), to each subscriber's
`asyncio.Queue`. A client's catch-up borrows a pooled connection for one MULTI and gives it back.
A reader starts with its event's first client and stops after IDLE_SECONDS without any.

Connect (GET /live/EVENT/stream)::

    client ──► 404 unknown event · 400 bad cursor · 503 + Retry-After when the process is full
       │
       ├──► subscribe(): if the event's reader is idle, note the stream's last id L0 and start
       │                 XREADing after L0; add this client's queue (503 if Redis is away)
       ├──► cursor = Last-Event-ID header, else ?after=SEQ, else "now" (the stream's last seq)
       ├──► MULTI: XRANGE - + COUNT 1 · XRANGE cursor+1 + COUNT limit+1 · XREVRANGE + - COUNT 1
       ├──► 200 text/event-stream: `retry:` hint, the catch-up entries, then the queue's
       ▼     entries with seq > the last one sent
    who wins the race: the subscription, always. The queue exists before the catch-up is read,
    so an entry XADDed meanwhile is in the catch-up, in the queue, or both, never in neither
    (L0 is read before the catch-up, so the catch-up reaches at least L0). "Both" is settled by
    skipping queued entries with seq <= the last sent: no gap, no duplicate. The cursor and the
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

    client goes ──► sse-starlette sees http.disconnect, cancels the body ──► unsubscribe()
    client too slow ──► its queue fills (live_queue_size) ──► the reader empties it, drops the
                        client and counts it ──► the response is cancelled at once (a send
                        blocked past live_send_timeout is dropped the same way) ──► it
                        reconnects by Last-Event-ID
    who wins the race: the reader never waits for a client. A put that does not fit drops the
    client there and then, so one stalled phone cannot hold back the room or grow memory.

Redis restart::

    XREAD fails ──► the reader logs, sleeps (0.1 s doubling to 5 s) and XREADs again after the
    last id it delivered. Open responses and their queues stay; /healthz says "redis": false;
    new connections get 503 + Retry-After until Redis answers.
    who wins the race: the last id. Whether Redis comes back with its AOF, empty, or re-seeded
    from the archive by the collector with the same IDs, XREAD after the last delivered id hands
    over exactly the entries that are new to these clients, in order, whenever they arrive.

Shutdown (SIGTERM)::

    uvicorn stops accepting ──► sse-starlette ends every open stream ──► browsers reconnect by
    Last-Event-ID (to another sidecar, or this one restarted) ──► lifespan exit: readers are
    cancelled, the pool closed. who wins the race: the clients' cursors; nothing is lost that a
    reconnect cannot fetch from the stream.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aredis
from redis.exceptions import RedisError

from core.tail import seq_of, stream_key

from .sse import WireEntry, reset_event, retry_hint, wire_entry

log = logging.getLogger("live.fanout")

BLOCK_MS = 2_000  # one XREAD waits at most this long, so an idle reader notices it is idle
IDLE_SECONDS = 30.0  # a reader with no subscribers for this long stops
BACKOFF_FIRST, BACKOFF_MAX = 0.1, 5.0
READ_COUNT = 500


@dataclass
class Stats:
    """Process-wide counters for /stats."""

    connections: int = 0
    sent: int = 0
    slow_dropped: int = 0
    rejected: int = 0
    resets: int = 0
    reader_errors: int = 0


@dataclass(eq=False)
class Subscriber:
    """One client's place in a feed: a bounded queue, and a flag set when it is dropped."""

    queue: asyncio.Queue[WireEntry]
    dropped: asyncio.Event = field(default_factory=asyncio.Event)


class Feed:
    """The single reader of one event's stream in this process, and its subscribers."""

    def __init__(
        self, redis: aredis.Redis, event: str, stats: Stats, queue_size: int, cache_size: int
    ) -> None:
        self.redis, self.event, self.key, self.stats = redis, event, stream_key(event), stats
        self.queue_size, self.cache_size = queue_size, cache_size
        self.subscribers: set[Subscriber] = set()
        self.last_id = "0-0"
        self.read = 0
        self._cache: OrderedDict[int, WireEntry] = OrderedDict()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def subscribe(self) -> Subscriber:
        """Join the fan-out, starting the reader first if it is idle (may raise RedisError)."""
        async with self._lock:
            if not self.running:
                self.last_id = await self.stream_last_id()
                self._task = asyncio.create_task(self._run(), name=f"live-reader-{self.event}")
            subscriber = Subscriber(asyncio.Queue(self.queue_size))
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

    async def _run(self) -> None:
        backoff, idle_since = BACKOFF_FIRST, time.monotonic()
        while True:
            try:
                reply = await self.redis.xread(
                    {self.key: self.last_id}, count=READ_COUNT, block=BLOCK_MS
                )
            except (RedisError, OSError) as exc:
                self.stats.reader_errors += 1
                log.warning("reader %s: %s; retrying in %.1fs", self.key, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            backoff = BACKOFF_FIRST
            for _key, entries in reply or ():
                self._dispatch(entries)
            if self.subscribers:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > IDLE_SECONDS:
                self._task = None  # checked and cleared with no await between: see subscribe()
                return

    def _dispatch(self, entries: list[tuple[str, dict[str, str]]]) -> None:
        """Push entries to every subscriber; one whose queue is full is dropped, not waited for."""
        for entry_id, fields in entries:
            entry = self.encoded(entry_id, fields)
            self.last_id, self.read = entry_id, self.read + 1
            for subscriber in list(self.subscribers):
                try:
                    subscriber.queue.put_nowait(entry)
                except asyncio.QueueFull:
                    self._drop(subscriber)

    def _drop(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)
        while not subscriber.queue.empty():
            subscriber.queue.get_nowait()
        subscriber.dropped.set()
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
    """Every event's Feed in this process, created on first use."""

    def __init__(
        self, redis: aredis.Redis, events: set[str], queue_size: int, cache_size: int
    ) -> None:
        self.redis, self.events = redis, events
        self.queue_size, self.cache_size = queue_size, cache_size
        self.stats = Stats()
        self.feeds: dict[str, Feed] = {}

    def feed(self, event: str) -> Feed:
        if event not in self.events:
            raise KeyError(event)
        if event not in self.feeds:
            self.feeds[event] = Feed(
                self.redis, event, self.stats, self.queue_size, self.cache_size
            )
        return self.feeds[event]

    @property
    def clients(self) -> int:
        return sum(len(feed.subscribers) for feed in self.feeds.values())

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
    if after is None:
        after = seq_of(await feed.stream_last_id())
    first, entries, last = await feed.catch_up(after, limit)
    return CatchUp(after, first, last, entries)


async def follow(
    feed: Feed, subscriber: Subscriber, start: CatchUp, limit: int
) -> AsyncIterator[bytes]:
    """The body of one client's response: retry hint, catch-up, then live entries in order."""
    try:
        yield retry_hint()
        if start.reset:
            feed.stats.resets += 1
            yield reset_event(start.after, start.first, start.last)
            return
        last = start.after
        for entry in start.entries[:limit]:
            yield entry.wire
            feed.stats.sent += 1
            last = entry.seq
        if len(start.entries) > limit:
            return  # more than one bite behind: the client reconnects from `last`
        while not subscriber.dropped.is_set():
            entry = await subscriber.queue.get()
            if entry.seq > last:
                yield entry.wire
                feed.stats.sent += 1
                last = entry.seq
    finally:
        feed.unsubscribe(subscriber)
