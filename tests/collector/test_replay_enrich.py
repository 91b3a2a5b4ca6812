"""A replay applies enrichment answers as the live collector did: getProfiles answers name the
posts after them (or edit those before them), getPosts/statuses/getInfo answers refresh counts
and tell deletes, and a `refreshed` delivery dates the counts."""

from __future__ import annotations

import json

from collector.replay import Replay, Stopper
from core.archive import counts_as_of, open_archive
from core.events import load_events
from core.tail import decode_entry, stream_key
from tests.fakes.appview import profile_view

from .conftest import Recording, jetstream_post, load, mastodon_status

EVENT = "northwind-2026"
ANA, SHY = "did:plc:anaaaaaaaaaaaaaaaaaaaaaa", "did:plc:shyyyyyyyyyyyyyyyyyyyyyy"


def bsky_post(did: str, k: int) -> tuple[dict, str]:
    event = jetstream_post(k)
    event["did"] = did
    return event, f"at://{did}/app.bsky.feed.post/{event['commit']['rkey']}"


def profiles(*views) -> dict:
    return {"profiles": list(views)}


def answer(rec: Recording, source: str, origin: str, kind: str, payload, **request) -> None:
    rec.add(source, origin, kind, payload)
    if request:
        rec.lines[-1]["request"] = request


def replay(make_settings, redis_url, path):
    settings = make_settings(redis_url=redis_url)
    event = next(e for e in load_events(settings.content_dir) if e.slug == EVENT)
    stats = Replay(settings, event, path, 0, 20.0, Stopper()).run()
    return stats, open_archive(settings.archive_path)


def test_profiles_name_bluesky_posts_and_hide_opted_out_authors(tmp_path, make_settings, redis_url,
                                                                redis_client):  # fmt: skip
    rec = Recording(tmp_path / "r.jsonl")
    ana1, ana1_uri = bsky_post(ANA, 1)
    shy, shy_uri = bsky_post(SHY, 2)
    ana2, ana2_uri = bsky_post(ANA, 3)
    rec.add("bluesky", "jetstream", "jetstream", ana1)  # went out bare: the answer came late
    answer(rec, "bluesky", "appview", "getProfiles",
           profiles(profile_view(ANA, "ana.bsky.social", "Ana"),
                    profile_view(SHY, "shy.bsky.social", "Shy", labels=["!no-unauthenticated"])),
           actors=[ANA, SHY])  # fmt: skip
    rec.add("bluesky", "jetstream", "jetstream", shy)  # the label known before: never shown
    rec.add("bluesky", "jetstream", "jetstream", ana2)  # named from the start
    stats, db = replay(make_settings, redis_url, rec.write())
    statuses = dict(db.execute("SELECT uri, status FROM items").fetchall())
    assert statuses == {ana1_uri: "visible", shy_uri: "hidden", ana2_uri: "visible"}
    stream = [decode_entry(f) for _, f in redis_client.xrange(stream_key(EVENT))]
    changes = [(kind, json.loads(data)) for kind, data in stream]
    assert [(k, d["uri"]) for k, d in changes] == [("post", ana1_uri), ("edit", ana1_uri),
                                                  ("post", ana2_uri)]  # fmt: skip
    assert changes[0][1]["item"]["author"]["name"] == ""
    assert {d["item"]["author"]["name"] for _, d in changes[1:]} == {"Ana"}
    assert stats.malformed == 0


def test_count_answers_refresh_counts_without_a_live_change_and_tell_deletes(
    tmp_path, make_settings, redis_url, redis_client
):
    rec = Recording(tmp_path / "r.jsonl")
    post, uri = bsky_post(ANA, 1)
    gone, gone_uri = bsky_post(ANA, 2)
    status = mastodon_status(7)
    photo = load("flickr/photo_with_url_l.json")["payload"]
    rec.add("bluesky", "jetstream", "jetstream", post)
    rec.add("bluesky", "jetstream", "jetstream", gone)
    rec.add("mastodon", "mastodon.social", "update", status)
    rec.add("flickr", "flickr", "photo", photo)
    view = {"uri": uri, "cid": "bafyreicid", "author": profile_view(ANA, "ana.bsky.social", "Ana"),
            "record": post["commit"]["record"], "likeCount": 9, "repostCount": 4, "quoteCount": 1,
            "replyCount": 2, "indexedAt": "2026-10-24T09:00:08.000Z"}  # fmt: skip
    answer(rec, "bluesky", "appview", "getPosts", {"posts": [view]}, uris=[uri, gone_uri])
    answer(rec, "mastodon", "mastodon.social", "statuses",
           [{**status, "favourites_count": 11, "reblogs_count": 3, "replies_count": 1}],
           ids=[status["id"]])  # fmt: skip
    answer(rec, "flickr", "flickr", "photos.getInfo",
           {"stat": "fail", "code": 1, "message": f'Photo "{photo["id"]}" not found (invalid ID)'},
           photo_id=photo["id"])  # fmt: skip
    rec.add("collector", "refresh", "refreshed", {"scope": "event", "posts": 4})
    _stats, db = replay(make_settings, redis_url, rec.write())
    counts = {r[0]: json.loads(r[1]) for r in db.execute("SELECT uri, data FROM items")}
    assert (counts[uri]["boosts"], counts[uri]["likes"], counts[uri]["replies"]) == (5, 9, 2)
    assert (counts[status["uri"]]["likes"], counts[status["uri"]]["boosts"]) == (11, 3)
    statuses = dict(db.execute("SELECT uri, status FROM items").fetchall())
    assert statuses[gone_uri] == "deleted"
    assert [s for u, s in statuses.items() if "flickr" in u] == ["deleted"]
    kinds = [decode_entry(f)[0] for _, f in redis_client.xrange(stream_key(EVENT))]
    assert kinds == ["post"] * 4 + ["retract"] * 2  # counts are not on the stream
    assert counts_as_of(db, EVENT) == rec.lines[-1]["at"]
    recounted = {r[0] for r in db.execute("SELECT uri FROM recounted")}
    assert recounted == {uri, status["uri"]}
