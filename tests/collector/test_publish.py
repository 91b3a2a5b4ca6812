"""collector/publish.py against a real redis-server."""

from collector.publish import publish_changes, reseed_from_archive
from collector.sources.mastodon import parse_status
from collector.store import save_batch
from core.tail import counters_key, decode_entry, stream_key

from .conftest import mastodon_status

EVENT = "northwind-2026"


def commit(db, start, count):
    items = [
        parse_status(mastodon_status(k), "mastodon.social") for k in range(start, start + count)
    ]
    return save_batch(db, EVENT, items, "s", None)


def ids(redis_client):
    return [entry_id for entry_id, _ in redis_client.xrange(stream_key(EVENT))]


def test_entries_land_with_seq_ids(archive, redis_client):
    changes = commit(archive, 0, 3)
    assert publish_changes(redis_client, EVENT, changes, 100) == 3
    assert ids(redis_client) == ["1-0", "2-0", "3-0"]
    kind, data = decode_entry(redis_client.xrange(stream_key(EVENT))[0][1])
    assert kind == "post" and data.startswith('{"seq":1,"kind":"post","uri":')
    assert redis_client.hgetall(counters_key(EVENT)) == {"posts": "3", "last_seq": "3"}


def test_republishing_is_idempotent(archive, redis_client):
    changes = commit(archive, 0, 3)
    publish_changes(redis_client, EVENT, changes[:2], 100)
    assert publish_changes(redis_client, EVENT, changes, 100) == 1
    assert publish_changes(redis_client, EVENT, changes, 100) == 0
    assert ids(redis_client) == ["1-0", "2-0", "3-0"]
    assert redis_client.hget(counters_key(EVENT), "posts") == "3"


def test_reseed_after_flushall_restores_the_same_ids(archive, redis_client):
    publish_changes(redis_client, EVENT, commit(archive, 0, 5), 100)
    before = redis_client.xrange(stream_key(EVENT))
    redis_client.flushall()
    assert reseed_from_archive(redis_client, archive, EVENT, 100) == 5
    assert redis_client.xrange(stream_key(EVENT)) == before
    assert redis_client.hget(counters_key(EVENT), "posts") == "5"


def test_reseed_publishes_what_a_crash_left_unpublished(archive, redis_client):
    publish_changes(redis_client, EVENT, commit(archive, 0, 2), 100)
    commit(archive, 2, 3)  # committed, then the process died before publishing
    assert reseed_from_archive(redis_client, archive, EVENT, 100) == 3
    assert ids(redis_client) == [f"{n}-0" for n in range(1, 6)]


def test_reseed_keeps_only_the_tail(archive, redis_client):
    commit(archive, 0, 30)
    reseed_from_archive(redis_client, archive, EVENT, 10)
    assert ids(redis_client)[0] == "21-0" and ids(redis_client)[-1] == "30-0"


def test_a_stream_ahead_of_the_archive_is_rebuilt(archive, redis_client):
    redis_client.xadd(stream_key(EVENT), {"kind": "post", "data": "{}"}, id="99-0")
    commit(archive, 0, 2)
    reseed_from_archive(redis_client, archive, EVENT, 100)
    assert ids(redis_client) == ["1-0", "2-0"]


def test_a_restored_archive_numbers_on_after_the_stream(archive, redis_client):
    """Issue 10: an archive restored from its replica lacks the last changes the stream carried.
    Rebuilding the stream from the restored archive renumbered the backfilled posts below the
    Last-Event-ID of every open page, which then waited for the sequence to catch up and never
    showed them. The stream shares the archive's history, so the archive numbers on after it."""
    publish_changes(redis_client, EVENT, commit(archive, 0, 5), 100)
    # What the replica had not received: the last two posts and their changes.
    archive.execute("DELETE FROM items WHERE uri IN (SELECT uri FROM changes WHERE seq > 3)")
    archive.execute("DELETE FROM changes WHERE seq > 3")
    archive.execute("UPDATE sequences SET last_seq = 3")
    archive.conn.commit()
    reseed_from_archive(redis_client, archive, EVENT, 100)
    assert ids(redis_client) == [f"{n}-0" for n in range(1, 6)]  # kept: pages have seen them
    later = commit(archive, 3, 2)  # the backfill brings the two lost posts back
    assert [c.seq for c in later] == [6, 7]
    assert publish_changes(redis_client, EVENT, later, 100) == 2
    assert ids(redis_client)[-2:] == ["6-0", "7-0"]
