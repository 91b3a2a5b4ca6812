"""live/fanout.py in process, against a real redis-server."""

from __future__ import annotations

import asyncio

import redis.asyncio as aredis

import live.fanout as fanout_module
from live.fanout import Fanout, catch_up, follow

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
        got = [[await s.queue.get(), await s.queue.get()] for s in subs]
        return feed, got

    feed, got = run(redis_url, body)
    assert [e.seq for e in got[0]] == [1, 2]
    assert all(a.wire is b.wire for row in got[1:] for a, b in zip(got[0], row, strict=True))
    assert feed.read == 2 and len(feed.subscribers) == 3


def test_full_queue_drops_the_subscriber_not_the_others(redis_url, redis_client):
    async def body(fanout: Fanout):
        feed = fanout.feed(EVENT)
        stuck, fine = await feed.subscribe(), await feed.subscribe()
        got = []
        for seq in range(1, 6):
            await asyncio.to_thread(publish, redis_client, [seq])
            got.append((await fine.queue.get()).seq)
        return feed, stuck, fine, got

    feed, stuck, fine, got = run(redis_url, body, queue_size=2)
    assert got == [1, 2, 3, 4, 5]
    assert stuck.dropped.is_set() and stuck.queue.empty() and stuck not in feed.subscribers
    assert fine in feed.subscribers and feed.stats.slow_dropped == 1


def test_catch_up_then_live_has_no_gap_and_no_duplicate(redis_url, redis_client):
    """Entries published between subscribing and the XRANGE arrive both ways; each is sent once."""

    async def body(fanout: Fanout):
        feed = fanout.feed(EVENT)
        await asyncio.to_thread(publish, redis_client, range(1, 4))
        subscriber = await feed.subscribe()
        await asyncio.to_thread(publish, redis_client, range(4, 7))  # before the catch-up read
        await until(lambda: subscriber.queue.qsize() == 3)  # ...and already in the queue
        start = await catch_up(feed, 0, limit=100)
        body = follow(feed, subscriber, start, limit=100)
        chunks = [await anext(body) for _ in range(7)]  # hint + 1..6
        await asyncio.to_thread(publish, redis_client, [7])
        chunks.append(await anext(body))
        await body.aclose()
        return start, chunks, feed

    start, chunks, feed = run(redis_url, body)
    assert [e.seq for e in start.entries] == [1, 2, 3, 4, 5, 6]
    ids = [c.split(b"\n", 1)[0] for c in chunks[1:]]
    assert ids == [f"id: {n}".encode() for n in range(1, 8)]
    assert feed.subscribers == set()


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
        return (await subscriber.queue.get()).seq

    assert run(redis_url, body) == 2


def test_unknown_event_has_no_feed(redis_url):
    async def body(fanout: Fanout):
        try:
            fanout.feed("nope")
        except KeyError:
            return fanout.snapshot()

    assert run(redis_url, body)["viewers"] == {}
