"""collector/enrich/hydrate.py through `collect()`: the fake Jetstream sends commits that carry
only a DID, the fake AppView answers getProfiles, and the Redis stream is what live pages get."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from collector.collect import collect
from collector.pipeline import Pipeline
from collector.sources.bluesky import parse_post_view
from core.tail import decode_entry, stream_key
from tests.collector.conftest import jetstream_post
from tests.collector.live_helpers import FAST, count, sample_event
from tests.fakes.appview import AppViewFake
from tests.fakes.bluesky import BlueskyFake
from tests.fakes.jetstream import JetstreamFake, post_event

ANA, SHY, BEA = (
    "did:plc:anaaaaaaaaaaaaaaaaaaaaaa",
    "did:plc:shyyyyyyyyyyyyyyyyyyyyyy",
    "did:plc:beaaaaaaaaaaaaaaaaaaaaaa",
)
HIDE = "!no-unauthenticated"


@pytest.fixture
def fakes():
    jetstream, appview = JetstreamFake().start(), AppViewFake().start()
    yield jetstream, appview
    appview.stop()
    jetstream.stop()


def source(jetstream, appview, **more) -> dict:
    return {"type": "bluesky", "key": "bluesky:test", "jetstream": f"{jetstream.ws_url}/subscribe",
            "appview": appview.url, "watchdog_seconds": 30, "batch_seconds": 0.05,
            "hydrate_seconds": 2.0, **more}  # fmt: skip


def post_by(did: str, k: int) -> dict:
    event = jetstream_post(k)
    event["did"] = did
    return event


def uri_of(event: dict) -> str:
    return f"at://{event['did']}/app.bsky.feed.post/{event['commit']['rkey']}"


def entries(redis_client, slug) -> list[tuple[str, dict]]:
    found = []
    for _id, fields in redis_client.xrange(stream_key(slug)):
        kind, data = decode_entry(fields)
        found.append((kind, json.loads(data)))
    return found


async def run(settings, event, jetstream, script, done, timeout=30.0):
    """collect() until `done()`: `script()` runs (in a thread) once Jetstream has its client."""
    stop = asyncio.Event()
    task = asyncio.create_task(collect(settings, [event], stop, options=FAST))
    await asyncio.to_thread(jetstream.wait_for_clients, 1, 30)
    await asyncio.to_thread(script)
    deadline = time.monotonic() + timeout
    while not done() and not task.done():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)
    stop.set()
    return await asyncio.wait_for(task, 15)


def test_a_post_reaches_the_stream_with_its_author_and_an_opted_out_one_never(
    make_settings, redis_url, redis_client, fakes
):
    jetstream, appview = fakes
    appview.add_profile(ANA, "ana.bsky.social", "Ana Lima")
    appview.add_profile(SHY, "shy.bsky.social", "Shy", labels=[HIDE])
    settings = make_settings(redis_url=redis_url)
    event = sample_event(source(jetstream, appview))
    ana, shy = post_by(ANA, 1), post_by(SHY, 2)

    def archived() -> bool:
        return count(settings.archive_path, "SELECT count(*) FROM items") == 2

    asyncio.run(run(settings, event, jetstream, lambda: [jetstream.publish(e) for e in (ana, shy)],
                    archived))  # fmt: skip
    stream = entries(redis_client, event.slug)
    assert [kind for kind, _ in stream] == ["post"]  # no edit needed, nothing of Shy's
    author = stream[0][1]["item"]["author"]
    assert (author["handle"], author["name"]) == ("ana.bsky.social", "Ana Lima")
    assert author["avatar"].startswith(f"https://cdn.bsky.app/img/avatar/plain/{ANA}/")
    assert author["url"] == "https://bsky.app/profile/ana.bsky.social"
    status = count(settings.archive_path, "SELECT status = 'hidden' FROM items WHERE uri = ?",
                   uri_of(shy))  # fmt: skip
    assert status == 1
    calls = appview.requests_to("/xrpc/app.bsky.actor.getProfiles")
    assert len(calls) == 1 and sorted(calls[0].params["actors"]) == [ANA, SHY]  # one batched call


def test_a_slow_appview_holds_a_post_no_longer_than_the_bound_then_an_edit_or_a_retract_follows(
    make_settings, redis_url, redis_client, fakes
):
    jetstream, appview = fakes
    appview.add_profile(BEA, "bea.bsky.social", "Bea")
    appview.add_profile(SHY, "shy.bsky.social", "Shy", labels=[HIDE])
    appview.delay = 1.5  # longer than the bound below: both posts go out bare
    settings = make_settings(redis_url=redis_url)
    event = sample_event(source(jetstream, appview, hydrate_seconds=0.3))
    bea, shy = post_by(BEA, 3), post_by(SHY, 4)

    def followed_up() -> bool:
        return redis_client.xlen(stream_key(event.slug)) >= 4

    asyncio.run(run(settings, event, jetstream, lambda: [jetstream.publish(e) for e in (bea, shy)],
                    followed_up))  # fmt: skip
    stream = entries(redis_client, event.slug)
    kinds = {(kind, data["uri"]) for kind, data in stream}
    assert kinds == {("post", uri_of(bea)), ("post", uri_of(shy)), ("edit", uri_of(bea)),
                     ("retract", uri_of(shy))}  # fmt: skip
    first = next(data for kind, data in stream if kind == "post" and data["uri"] == uri_of(bea))
    assert first["item"]["author"]["name"] == ""  # went out with what was known
    edit = next(data for kind, data in stream if kind == "edit")
    assert edit["item"]["author"]["name"] == "Bea"
    assert count(settings.archive_path, "SELECT count(*) FROM items WHERE status = 'hidden'") == 1


def test_an_identity_event_refreshes_a_known_author(make_settings, redis_url, redis_client, fakes):
    jetstream, appview = fakes
    appview.add_profile(ANA, "ana.bsky.social", "Ana Lima")
    settings = make_settings(redis_url=redis_url)
    event = sample_event(source(jetstream, appview))

    def script() -> None:
        jetstream.publish(post_by(ANA, 5))
        deadline = time.monotonic() + 20
        while redis_client.xlen(stream_key(event.slug)) < 1:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        appview.add_profile(ANA, "ana.example.org", "Ana Lima")  # a new handle
        jetstream.publish({"did": ANA, "time_us": 0, "kind": "identity",
                           "identity": {"did": ANA, "handle": "ana.example.org", "seq": 1,
                                        "time": "2026-10-24T09:00:00.000Z"}})  # fmt: skip

    asyncio.run(run(settings, event, jetstream, script,
                    lambda: redis_client.xlen(stream_key(event.slug)) >= 2))  # fmt: skip
    kind, edit = entries(redis_client, event.slug)[1]
    assert kind == "edit" and edit["item"]["author"]["handle"] == "ana.example.org"


def test_after_a_gap_beyond_the_replay_window_posts_gone_meanwhile_are_retracted(
    make_settings, redis_url, redis_client, fakes
):
    """Jetstream keeps about a day: deletes during a longer outage are asked of getPosts."""
    jetstream, appview = fakes
    settings = make_settings(redis_url=redis_url)
    event = sample_event(source(jetstream, appview))
    stopped_at = datetime.now(UTC) - timedelta(hours=30)  # beyond replay_window_hours (24)
    views = [v for v in BlueskyFake().load_fixture() if not v["author"]["labels"]][:3]
    kept = appview.publish(views[0], keep=True)
    items = [dataclasses.replace(parse_post_view(v), created_at=stopped_at + timedelta(hours=k))
             for k, v in enumerate(views)]  # fmt: skip
    before = dataclasses.replace(items[2], created_at=stopped_at - timedelta(hours=2))
    pipeline = Pipeline.open(settings)
    cursor = {"time_us": int(stopped_at.timestamp() * 1e6), "clock": None}
    pipeline.commit(event.slug, "bluesky:test", [*items[:2], before], cursor)
    pipeline.close()

    def retracted() -> bool:
        return (
            count(settings.archive_path, "SELECT count(*) FROM items WHERE status = 'deleted'") >= 1
        )

    asyncio.run(run(settings, event, jetstream, lambda: None, retracted))
    statuses = dict(
        __import__("sqlite3")
        .connect(settings.archive_path)
        .execute("SELECT uri, status FROM items")
    )
    assert statuses == {kept["uri"]: "visible", items[1].uri: "deleted", before.uri: "visible"}
    asked = appview.requests_to("/xrpc/app.bsky.feed.getPosts")
    assert [sorted(r.params["uris"]) for r in asked] == [sorted([items[0].uri, items[1].uri])]
    kinds = [decode_entry(f)[0] for _, f in redis_client.xrange(stream_key(event.slug))]
    assert kinds[-1] == "retract"


def test_an_author_who_opts_out_mid_event_is_retracted(
    make_settings, redis_url, redis_client, fakes
):
    """The self-label lives in the author's profile record: Jetstream carries its commit, the
    profile is asked for again, and the post already shown is retracted."""
    jetstream, appview = fakes
    appview.add_profile(ANA, "ana.bsky.social", "Ana Lima")
    settings = make_settings(redis_url=redis_url)
    event = sample_event(source(jetstream, appview))
    profile = {"$type": "app.bsky.actor.profile", "displayName": "Ana Lima",
               "labels": {"$type": "com.atproto.label.defs#selfLabels",
                          "values": [{"val": HIDE}]}}  # fmt: skip
    post = post_by(ANA, 6)

    def script() -> None:
        jetstream.publish(post)
        deadline = time.monotonic() + 20
        while redis_client.xlen(stream_key(event.slug)) < 1:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        appview.add_profile(ANA, "ana.bsky.social", "Ana Lima", labels=[HIDE])
        jetstream.publish(post_event(ANA, "self", profile, collection="app.bsky.actor.profile"))

    asyncio.run(run(settings, event, jetstream, script,
                    lambda: redis_client.xlen(stream_key(event.slug)) >= 2))  # fmt: skip
    assert [(k, d["uri"]) for k, d in entries(redis_client, event.slug)] == [
        ("post", uri_of(post)), ("retract", uri_of(post))]  # fmt: skip
    status = count(settings.archive_path, "SELECT status = 'hidden' FROM items WHERE uri = ?",
                   uri_of(post))  # fmt: skip
    assert status == 1
