"""live/fanout.py in process, against a real redis-server."""

from __future__ import annotations

import asyncio
import time

import redis.asyncio as aredis

import live.fanout as fanout_module
from live.fanout import Chunk, Fanout, Subscriber, catch_up
from live.response import opening

from .conftest import EVENT, publish


def run(redis_url: str, body, **kwargs):
    async def main():
        redis = aredis.Redis.from_url(redis_url, decode_responses=True)
        fanout = Fanout(redis, {EVENT}, kwargs.get("queue_size", 100), 100)
        try:
            return await asyncio.wait_for(body(fanout), 20)
        finally:
            await fanout.stop()
            await redis.aclose()

    return asyncio.run(main())


async def until(check, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


def test_one_reader_encodes_once_for_every_subscriber(redis_url, redis_client):
    async def body(fanout: Fanout):
        feed = fanout.feed(EVENT)
        subs = [await feed.subscribe() for _ in range(3)]
        await asyncio.to_thread(publish, redis_client, [1, 2])
        got = [await entries(s, 2) for s in subs]
        return feed, got

    feed, got = run(redis_url, body)
    assert [e.seq for e in got[0]] == [1, 2]
    assert all(a.wire is b.wire for row in got[1:] for a, b in zip(got[0], row, strict=True))
    assert feed.read == 2 and len(feed.subscribers) == 3


async def entries(subscriber: Subscriber, n: int) -> list:
    """The next n entries pushed to a subscriber (heartbeats skipped)."""
    got: list = []
    while len(got) < n:
        got += [e for chunk in await subscriber.next() for e in chunk.entries]
    return got


def test_one_reply_is_one_chunk_joined_once():
    """Every client of a wake-up sends the same bytes object; a client that already sent part
    of a chunk gets only the rest."""
    a, b, c = (wire(n) for n in (1, 2, 3))
    chunk = Chunk.of([a, b, c])
    assert chunk.wire == a.wire + b.wire + c.wire and (chunk.first, chunk.last) == (1, 3)
    assert chunk.after(0) is chunk.wire
    assert chunk.after(2) == c.wire and chunk.after(3) == b""


def wire(seq: int):
    from live.sse import wire_entry

    return wire_entry(f"{seq}-0", {"kind": "post", "data": f'{{"seq":{seq}}}'})


def test_full_queue_drops_the_subscriber_not_the_others(redis_url, redis_client):
    async def body(fanout: Fanout):
        feed = fanout.feed(EVENT)
        stuck, fine = await feed.subscribe(), await feed.subscribe()
        got = []
        for seq in range(1, 6):
            await asyncio.to_thread(publish, redis_client, [seq])
            got += [e.seq for e in await entries(fine, 1)]
        return feed, stuck, fine, got

    feed, stuck, fine, got = run(redis_url, body, queue_size=2)
    assert got == [1, 2, 3, 4, 5]
    assert stuck.dropped and stuck.closed and not stuck.pending and stuck not in feed.subscribers
    assert fine in feed.subscribers and feed.stats.slow_dropped == 1


def test_catch_up_then_live_has_no_gap_and_no_duplicate(redis_url, redis_client):
    """Entries published between subscribing and the XRANGE arrive both ways; each is sent once."""

    async def body(fanout: Fanout):
        feed = fanout.feed(EVENT)
        await asyncio.to_thread(publish, redis_client, range(1, 4))
        subscriber = await feed.subscribe()
        await asyncio.to_thread(publish, redis_client, range(4, 7))  # before the catch-up read
        await until(lambda: subscriber.count == 3)  # ...and already pending
        start = await catch_up(feed, 0, limit=100)
        first, last, more = opening(start, 100, fanout.stats)
        await asyncio.to_thread(publish, redis_client, [7])
        await until(lambda: subscriber.count == 4)
        rest = b"".join(chunk.after(last) for chunk in await subscriber.next())
        return start, first + rest, more

    start, wire, more = run(redis_url, body)
    assert [e.seq for e in start.entries] == [1, 2, 3, 4, 5, 6] and more
    ids = [line for line in wire.split(b"\n") if line.startswith(b"id: ")]
    assert ids == [f"id: {n}".encode() for n in range(1, 8)]


def test_reader_stops_when_idle_and_restarts_on_demand(redis_url, redis_client, monkeypatch):
    monkeypatch.setattr(fanout_module, "IDLE_SECONDS", 0.0)
    monkeypatch.setattr(fanout_module, "BLOCK_MS", 50)

    async def body(fanout: Fanout):
        feed = fanout.feed(EVENT)
        subscriber = await feed.subscribe()
        feed.unsubscribe(subscriber)
        await until(lambda: not feed.running)
        await asyncio.to_thread(publish, redis_client, [1])  # while nobody reads
        subscriber = await feed.subscribe()
        assert feed.running and feed.last_id == "1-0"  # starts after what is already there
        await asyncio.to_thread(publish, redis_client, [2])
        return (await entries(subscriber, 1))[0].seq

    assert run(redis_url, body) == 2


def test_unknown_event_has_no_feed(redis_url):
    async def body(fanout: Fanout):
        try:
            fanout.feed("nope")
        except KeyError:
            return fanout.snapshot()

    assert run(redis_url, body)["viewers"] == {}


def test_heartbeats_reach_every_subscriber_and_a_blocked_write_is_dropped(redis_url):
    async def body(fanout: Fanout):
        fanout.heartbeat, fanout.send_timeout = 0.05, 0.1
        feed = fanout.feed(EVENT)
        idle, blocked = await feed.subscribe(), await feed.subscribe()
        blocked.sending_since = time.monotonic()  # as if its write never returned
        blocked.task = asyncio.create_task(asyncio.sleep(30))
        pings = [chunk.wire for chunk in await idle.next()]
        await until(lambda: blocked.dropped)
        await asyncio.gather(blocked.task, return_exceptions=True)
        return feed, idle, blocked, pings

    feed, idle, blocked, pings = run(redis_url, body)
    assert pings and all(p.startswith(b": ping ") and p.endswith(b"\n\n") for p in pings)
    assert blocked.closed and blocked.task.cancelled() and blocked not in feed.subscribers
    assert idle in feed.subscribers and feed.stats.slow_dropped == 1
