"""collector/collect.py: every source its own task, failures contained, state persisted."""

from __future__ import annotations

import asyncio
import json

import redis as redis_lib

from collector.sources.base import SourceContext
from core.archive import open_archive, source_states
from core.errors import SourceError
from core.items import Author, Item
from core.tail import status_key, stream_key
from tests.collector.conftest import T0
from tests.collector.live_helpers import count, run_until, sample_event, state_shows


def post(k: int, origin: str = "fake") -> Item:
    from datetime import timedelta

    uri = f"https://{origin}.example/posts/{k}"
    return Item(uri=uri, source="feed", origin=origin, local_id=str(k), url=uri,
                created_at=T0 + timedelta(seconds=k), author=Author(id="https://a.example/"),
                html=f"<p>post {k}</p>", text=f"post {k}")  # fmt: skip


async def steady(ctx: SourceContext) -> None:
    """Archives one post every 20 ms, resuming from its cursor."""
    k = (ctx.cursor or {}).get("k", 0)
    ctx.state.set("polling")
    while await ctx.sleep(0.02):
        k += 1
        await ctx.save([post(k, ctx.config["origin"])], {"k": k})


async def crashing(ctx: SourceContext) -> None:
    ctx.state.set("streaming")
    await asyncio.sleep(0.01)
    raise ConnectionResetError("peer went away")


async def misconfigured(ctx: SourceContext) -> None:
    raise SourceError(ctx.key, "https://flickr.example/", "Flickr error 100: Invalid API Key")


async def deaf(ctx: SourceContext) -> None:
    """Ignores the stop signal: the runner must cancel it."""
    while True:
        await asyncio.sleep(0.1)


async def few(ctx: SourceContext) -> None:
    """Archives three posts, then stays quiet until stopped."""
    for k in range(1, 4):
        await ctx.save([post(k, ctx.config["origin"])], {"k": k})
    ctx.state.set("polling")
    await ctx.stopping.wait()


RUNS = {
    "few": few,
    "steady": steady,
    "crashing": crashing,
    "misconfigured": misconfigured,
    "deaf": deaf,
}


def resolve(kind: str):
    if kind not in RUNS:
        raise SourceError(kind, "event.yaml", "unknown source type")
    return RUNS[kind]


def test_a_crashing_source_never_stops_the_others(make_settings, redis_url, redis_client):
    settings = make_settings(redis_url=redis_url)
    event = sample_event(
        {"type": "steady", "key": "steady:a", "origin": "a"},
        {"type": "crashing", "key": "crashing:b"},
    )
    db_path = settings.archive_path

    def enough() -> bool:
        return db_path.exists() and count(db_path, "SELECT count(*) FROM items") >= 30

    states, stop_took = asyncio.run(run_until(settings, [event], enough, resolve=resolve))
    assert states["crashing:b"].errors >= 3  # restarted again and again, with backoff
    assert states["crashing:b"].last_error == "ConnectionResetError: peer went away"
    assert states["steady:a"].errors == 0
    assert states["steady:a"].received >= 30
    assert stop_took < 3
    archived = count(db_path, "SELECT count(*) FROM items")
    assert archived == states["steady:a"].received
    # Every committed post reached the stream, in sequence order.
    assert redis_client.xlen(stream_key(event.slug)) == archived


def test_source_error_marks_failing_and_stays(make_settings, redis_url, redis_client):
    settings = make_settings(redis_url=redis_url)
    event = sample_event(
        {"type": "steady", "key": "steady:a", "origin": "a"},
        {"type": "misconfigured", "key": "flickr:northwind26"},
        {"type": "nonesuch", "key": "nonesuch:x"},
    )
    flickr = state_shows(redis_client, event.slug, "flickr:northwind26", "failing")
    nonesuch = state_shows(redis_client, event.slug, "nonesuch:x", "failing")
    posted = lambda: count(settings.archive_path, "SELECT count(*) FROM items") > 10  # noqa: E731
    done = lambda: flickr() and nonesuch() and posted()  # noqa: E731
    states, _ = asyncio.run(run_until(settings, [event], done, timeout=60, resolve=resolve))
    flickr = states["flickr:northwind26"]
    assert flickr.state == "failing"
    assert flickr.errors == 1
    assert flickr.last_error == (
        "flickr:northwind26: Flickr error 100: Invalid API Key: 'https://flickr.example/'"
    )
    assert states["nonesuch:x"].state == "failing"
    assert states["nonesuch:x"].last_error == "nonesuch: unknown source type: 'event.yaml'"
    assert states["steady:a"].state == "stopped"
    assert states["steady:a"].received > 10


def test_state_is_persisted_in_archive_and_redis(make_settings, redis_url, redis_client):
    settings = make_settings(redis_url=redis_url)
    event = sample_event(
        {"type": "steady", "key": "steady:a", "origin": "a"},
        {"type": "misconfigured", "key": "flickr:northwind26"},
    )
    failing = state_shows(redis_client, event.slug, "flickr:northwind26", "failing")
    posted = lambda: count(settings.archive_path, "SELECT count(*) FROM items") > 0  # noqa: E731
    asyncio.run(run_until(settings, [event], lambda: failing() and posted(), 60, resolve=resolve))
    db = open_archive(settings.archive_path)
    rows = {key: (state, updated) for _e, key, state, updated in source_states(db, event.slug)}
    db.close()
    assert rows["flickr:northwind26"][0]["state"] == "failing"
    assert rows["steady:a"][0]["state"] == "stopped"
    assert rows["steady:a"][0]["last_post_at"].startswith("2026-10-24T09:00:")
    in_redis = redis_client.hgetall(status_key(event.slug))
    assert json.loads(in_redis["steady:a"]) == rows["steady:a"][0]


def test_counters_and_cursor_carry_over_a_restart(make_settings, redis_url):
    """A second run resumes the source from its committed cursor and keeps counting."""
    settings = make_settings(redis_url=redis_url)
    event = sample_event({"type": "steady", "key": "steady:a", "origin": "a"})
    first, _ = asyncio.run(
        run_until(settings, [event], lambda: False, timeout=0.5, resolve=resolve)
    )
    second, _ = asyncio.run(
        run_until(settings, [event], lambda: False, timeout=0.5, resolve=resolve)
    )
    received = second["steady:a"].received
    assert received > first["steady:a"].received
    archived = count(settings.archive_path, "SELECT count(*) FROM items")
    assert archived == received  # no post re-sent, none skipped: the cursor carried on


def test_a_source_that_ignores_stop_is_cancelled(make_settings, redis_url):
    from collector.collect import Options

    settings = make_settings(redis_url=redis_url)
    event = sample_event({"type": "deaf", "key": "deaf:x"})
    options = Options(status_seconds=0.2, stop_grace=0.5)
    states, took = asyncio.run(
        run_until(settings, [event], lambda: False, timeout=0.3, resolve=resolve, options=options)
    )
    assert took < 2
    assert states["deaf:x"].state != "failing"


def test_redis_down_mid_run_archives_and_reseeds(make_settings, redis_server, redis_url):
    """Redis goes away while posts arrive; the archive keeps them, and when Redis is back the
    stream is re-seeded with the same IDs."""
    settings = make_settings(redis_url=redis_url)
    event = sample_event({"type": "steady", "key": "steady:a", "origin": "a"})
    db_path = settings.archive_path

    async def scenario():
        stop = asyncio.Event()
        from collector.collect import collect
        from tests.collector.live_helpers import FAST

        task = asyncio.create_task(collect(settings, [event], stop, resolve=resolve, options=FAST))
        await asyncio.sleep(0.5)
        await asyncio.to_thread(redis_server.stop)
        await asyncio.sleep(0.5)
        await asyncio.to_thread(redis_server.start)
        await asyncio.sleep(1.0)
        stop.set()
        return await task

    asyncio.run(scenario())
    client = redis_lib.Redis.from_url(redis_server.url)
    try:
        archived = count(db_path, "SELECT count(*) FROM items")
        entries = client.xrange(stream_key(event.slug))
        assert [int(e[0].split(b"-")[0]) for e in entries] == list(range(1, archived + 1))
    finally:
        client.close()


def test_a_stream_that_loses_its_tail_without_an_error_is_reseeded(
    make_settings, redis_url, redis_client
):
    """After a failover to a replica that had not received the last entries, no command fails:
    the collector notices the stream is behind the archive and re-seeds it, even when the
    event is quiet and no next post would reveal the gap."""
    settings = make_settings(redis_url=redis_url)
    event = sample_event({"type": "few", "key": "few:a", "origin": "a"})
    key = stream_key(event.slug)
    ids = lambda: [e[0] for e in redis_client.xrange(key)]  # noqa: E731
    lost: list[str] = []

    def healed() -> bool:
        if not lost and len(ids()) == 3:
            first = redis_client.xrange(key, count=1)[0]
            lost.extend(ids()[1:])  # the replica had received the first entry only
            pipe = redis_client.pipeline()  # (XDEL would keep the stream's last ID at 3-0)
            pipe.delete(key).xadd(key, first[1], id=first[0]).execute()
        return bool(lost) and ids() == ["1-0", "2-0", "3-0"]

    asyncio.run(run_until(settings, [event], healed, timeout=60, resolve=resolve))
    assert lost == ["2-0", "3-0"] and ids() == ["1-0", "2-0", "3-0"]
