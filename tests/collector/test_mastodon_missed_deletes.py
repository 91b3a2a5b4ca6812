"""Deletes the Mastodon stream never delivered (it has no replay): after a reconnect's backfill
the source asks GET /api/v1/statuses/:id about the archived posts the backfill did not return.

The fake deletes a status without streaming the delete (`delete(id, stream=False)`), as an
instance does while the collector is disconnected; then the stream is cut so that it reconnects.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from core.tail import decode_entry, stream_key
from tests.collector.live_helpers import count, run_until, sample_event
from tests.collector.matrix import Mastodon
from tests.collector.test_sources_mastodon_live import (
    EVENT,
    TAG,
    archived,
    collecting,
    post,
    stream_requests,
    until,
)
from tests.fakes.conftest import start_fake  # noqa: F401 - a fixture
from tests.fakes.mastodon import DEFAULT_TOKEN, MastodonFake, new_status


@pytest.fixture
def fake(start_fake):  # noqa: F811
    return start_fake(MastodonFake, heartbeat=0.1)


@pytest.fixture
def settings(make_settings):
    return make_settings()


def retracts(archive, uri: str) -> int:
    sql = "SELECT count(*) FROM changes WHERE event = ? AND kind = 'retract' AND uri = ?"
    return archive.execute(sql, [EVENT, uri]).fetchone()[0]


def checked(fake) -> list[str]:
    """The status ids the source asked about, in order (every attempt)."""
    return [r.path.rsplit("/", 1)[-1] for r in fake.requests_to("/api/v1/statuses/")]


def settled(c, fake) -> bool:
    state = c.ctx.state
    return (len(fake.hub) == 1 and state.state == "streaming"
            and state.gaps_backfilled == state.gaps_detected)  # fmt: skip


async def reconnect(c, fake) -> None:
    """Cut the stream on the next event (a fresh post) and wait for the new connection."""
    connects = len(stream_requests(fake))
    fake.faults.cut()
    fake.publish(post("trigger"))
    await until(lambda: len(stream_requests(fake)) > connects, what="a reconnect")
    await until(lambda: settled(c, fake), what="a settled stream")


def test_deleted_while_disconnected_is_withdrawn_and_a_post_still_there_is_kept(
    archive, settings, fake, caplog
):
    caplog.set_level(logging.INFO, logger="collector.mastodon")

    async def scenario():
        async with collecting(archive, settings, fake, watchdog_seconds=0.5) as c:
            await until(lambda: settled(c, fake), what="a stream")
            gone, moved, stays = (fake.publish(post(k)) for k in ("gone", "moved", "stays"))
            await until(lambda: len(archived(archive)) == 3, what="3 posts")
            fake.delete(gone["id"], stream=False)  # the stream never says so
            fake.edit(moved["id"], tags=["elsewhere"])  # off our tag: off our stream too
            await reconnect(c, fake)
            await until(lambda: archived(archive)[gone["uri"]] == "deleted", what="the delete")
            await until(lambda: len(checked(fake)) == 2, what="both checks")
            await reconnect(c, fake)  # neither is asked about again
            await until(lambda: len(archived(archive)) == 5, what="the second trigger")
            return gone, moved, stays

    gone, moved, stays = asyncio.run(scenario())
    assert sorted(checked(fake)) == sorted([gone["id"], moved["id"]])  # not `stays`: walked
    assert archived(archive)[moved["uri"]] == archived(archive)[stays["uri"]] == "visible"
    assert retracts(archive, gone["uri"]) == 1 and retracts(archive, moved["uri"]) == 0
    host = fake.host.split(":")[0]
    assert f"{host} #{TAG}: 1 post deleted while disconnected" in caplog.messages


def test_errors_delete_nothing_and_are_retried_within_the_rate_limit(archive, settings, fake):
    async def scenario():
        async with collecting(archive, settings, fake, watchdog_seconds=0.5) as c:
            await until(lambda: settled(c, fake), what="a stream")
            gone, moved = fake.publish(post("gone")), fake.publish(post("moved"))
            await until(lambda: len(archived(archive)) == 2, what="2 posts")
            fake.delete(gone["id"], stream=False)
            fake.edit(moved["id"], tags=["elsewhere"])
            fake.faults.fail(503, count=3, path="/api/v1/statuses/")
            fake.faults.rate_limit(count=1, reset_in=0.3, path="/api/v1/statuses/")
            await reconnect(c, fake)
            await until(lambda: archived(archive)[gone["uri"]] == "deleted", what="the delete")
            await until(lambda: len(checked(fake)) == 6, what="the checks")
            return c, gone, moved

    c, gone, moved = asyncio.run(scenario())
    served = fake.requests_to("/api/v1/statuses/")
    # newest first (moved), the same one asked again until it is answered, then the next
    assert checked(fake) == [moved["id"]] * 5 + [gone["id"]]
    assert [r.fault for r in served[:4]] == ["fail", "fail", "fail", "rate_limit"]
    assert [r.status for r in served[4:]] == [200, 404]
    assert archived(archive)[moved["uri"]] == "visible" and retracts(archive, gone["uri"]) == 1
    assert c.ctx.state.errors >= 3  # the 503s were noted, without leaving "streaming"
    assert "backing off" not in c.ctx.state.history[c.ctx.state.history.index("streaming") :]


def test_no_double_delete_when_the_stream_also_sends_it(archive, settings, fake):
    async def scenario():
        async with collecting(archive, settings, fake, watchdog_seconds=0.5) as c:
            await until(lambda: settled(c, fake), what="a stream")
            gone = fake.publish(post("gone"))
            await until(lambda: len(archived(archive)) == 1, what="the post")
            fake.delete(gone["id"], stream=False)
            await reconnect(c, fake)
            await until(lambda: archived(archive)[gone["uri"]] == "deleted", what="the delete")
            fake.delete(gone["id"])  # the stream's delete, late: as a relay might resend it
            marker = fake.publish(post("marker"))  # streamed after it: applied after it
            await until(lambda: marker["uri"] in archived(archive), what="the marker")
            return gone

    gone = asyncio.run(scenario())
    assert retracts(archive, gone["uri"]) == 1


def test_recheck_is_bounded_newest_first_and_can_be_turned_off(archive, settings, fake):
    """recheck_max_posts bounds the GETs per reconnect (newest first); recheck_deletes=False
    turns the check off."""

    async def scenario(settle, **config):
        async with collecting(archive, settings, fake, watchdog_seconds=0.5, **config) as c:
            await until(lambda: settled(c, fake), what="a stream")
            posts = [fake.publish(post(f"p{k}")) for k in range(4)]
            await until(lambda: all(p["uri"] in archived(archive) for p in posts), what="posts")
            for p in posts:
                fake.delete(p["id"], stream=False)
            await reconnect(c, fake)
            await until(lambda: settle(posts), what="the bounded checks")
            return posts

    def two_deleted(posts) -> bool:
        return sum(archived(archive)[p["uri"]] == "deleted" for p in posts) == 2

    posts = asyncio.run(scenario(two_deleted, recheck_max_posts=2))
    assert checked(fake) == [posts[3]["id"], posts[2]["id"]]
    assert [archived(archive)[p["uri"]] for p in posts] == ["visible"] * 2 + ["deleted"] * 2
    posts = asyncio.run(scenario(lambda _: True, recheck_deletes=False))
    assert len(checked(fake)) == 2 and {archived(archive)[p["uri"]] for p in posts} == {"visible"}


def test_collector_publishes_the_retract_to_redis(make_settings, redis_url, redis_client):
    """Through collect(): the archive and the live tail get the delete as for a streamed one."""
    live_settings = make_settings(redis_url=redis_url)
    db = live_settings.archive_path
    with MastodonFake(heartbeat=0.2) as instance:
        source, state, gone = Mastodon(instance), [], {}

        def deleted() -> int:
            return count(db, "SELECT count(*) FROM items WHERE status = 'deleted'")

        def done() -> bool:
            items = count(db, "SELECT count(*) FROM items") if db.exists() else 0
            if not state and len(instance.hub):
                state.append("published")
                gone.update(instance.publish(new_status(f"<p>gone #{TAG}</p>", tags=[TAG])))
                source.publish(1)
            elif state == ["published"] and items == 2 and len(instance.hub):
                state.append("cut")
                instance.delete(gone["id"], stream=False)
                source.cut()
                source.publish(2)
            return state == ["published", "cut"] and items == 3 and deleted() == 1

        env = {"AFA_MASTODON_TOKEN": DEFAULT_TOKEN}
        run = run_until(live_settings, [sample_event(source.config())], done, environ=env)
        asyncio.run(run)
    event = sample_event().slug
    entries = [decode_entry(f) for _, f in redis_client.xrange(stream_key(event))]
    assert [k for k, data in entries if gone["uri"] in data] == ["post", "retract"]
    assert deleted() == 1
