"""collector/enrich/counts.py and refresh.py against the fake AppView, Mastodon and Flickr: counts
come back into the archive (not onto the live stream), and posts the sources lost are retracted."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from collector.cli import cli
from collector.enrich.refresh import refresh_now, schedule
from collector.pipeline import Pipeline
from collector.sources.bluesky import parse_post_view
from collector.sources.flickr import parse_photo
from collector.sources.mastodon import origin_host, parse_status
from core.archive import counts_as_of, open_archive
from core.tail import decode_entry, stream_key
from tests.collector.live_helpers import sample_event
from tests.fakes.appview import AppViewFake
from tests.fakes.base import FIXTURES
from tests.fakes.bluesky import BlueskyFake
from tests.fakes.flickr import DEFAULT_KEY, FlickrFake
from tests.fakes.mastodon import MastodonFake, new_status

UA = "test"


@pytest.fixture
def fakes():
    started = []

    def start(cls, **options):
        started.append(cls(**options).start())
        return started[-1]

    yield start
    for fake in reversed(started):
        fake.stop()


def world(fakes, mastodon_version=None):
    """Three sources, each with three archived posts: one gaining counts, one unchanged, one gone."""
    appview, flickr = fakes(AppViewFake), fakes(FlickrFake)
    mastodon = fakes(MastodonFake, version=mastodon_version)
    shown = [v for v in BlueskyFake().load_fixture() if not v["author"]["labels"]]  # no opt-outs
    views = [appview.publish(v, keep=True) for v in shown[:3]]
    statuses = [mastodon.publish(new_status(f"<p>post {k}</p>", tags=["northwind26"]))
                for k in range(3)]  # fmt: skip
    photos = [flickr.publish({**p, "tags": f"{p['tags']} northwind26"})
              for p in json.loads((FIXTURES / "flickr-photos-search.json").read_text())["photos"]["photo"][:3]]  # fmt: skip
    items = [parse_post_view(v) for v in views]
    items += [parse_status(s, origin_host(mastodon.url)) for s in statuses]
    items += [parse_photo(p) for p in photos]
    appview.set_counts(views[0]["uri"], likes=40, reposts=3, replies=2, quotes=1)
    appview.delete(views[2]["uri"])
    mastodon.set_counts(statuses[0]["id"], favourites=12, reblogs=5, replies=1)
    mastodon.delete(statuses[2]["id"], stream=False)
    flickr.set_counts(photos[0]["id"], faves=7, comments=2)
    flickr.delete(photos[2]["id"])
    event = sample_event(
        {"type": "bluesky", "appview": appview.url},
        {"type": "mastodon", "instance": mastodon.url},
        {"type": "flickr", "base_url": f"{flickr.url}/services/rest/", "tags": ["northwind26"]},
    )
    return event, items, (views, statuses, photos), (appview, mastodon, flickr)


def archive_items(settings, event, items) -> None:
    pipeline = Pipeline.open(settings)
    try:
        pipeline.commit(event.slug, "test", items, None)
    finally:
        pipeline.close()


def counts(db, uri) -> tuple[int, int, int]:
    data = json.loads(db.execute("SELECT data FROM items WHERE uri = ?", [uri]).fetchone()[0])
    return data["boosts"], data["likes"], data["replies"]


@pytest.mark.parametrize("version", [None, "4.2.10"], ids=["batched", "one-by-one"])
def test_a_refresh_brings_counts_and_retracts_what_is_gone(
    fakes, make_settings, redis_url, redis_client, monkeypatch, version
):
    monkeypatch.setenv("AFA_FLICKR_KEY", DEFAULT_KEY)
    event, items, (views, statuses, photos), (appview, mastodon, _flickr) = world(fakes, version)
    settings = make_settings(redis_url=redis_url)
    archive_items(settings, event, items)
    outcome = asyncio.run(refresh_now(settings, event, user_agent=UA))
    assert outcome.posts == 9 and outcome.deleted == 3 and not outcome.failed
    db = open_archive(settings.archive_path)
    bluesky = [counts(db, v["uri"]) for v in views[:2]]
    assert bluesky[0] == (4, 40, 2)  # reposts + quotes, likes, replies
    assert bluesky[1] == (views[1]["repostCount"] + views[1].get("quoteCount", 0),
                          views[1]["likeCount"], views[1]["replyCount"])  # fmt: skip
    assert counts(db, statuses[0]["uri"]) == (5, 12, 1)
    assert counts(db, items[6].uri) == (0, 7, 2)
    gone = {views[2]["uri"], statuses[2]["uri"], items[8].uri}
    statuses_now = dict(db.execute("SELECT uri, status FROM items").fetchall())
    assert {u for u, s in statuses_now.items() if s == "deleted"} == gone
    stream = [decode_entry(f) for _, f in redis_client.xrange(stream_key(event.slug))]
    assert [k for k, _ in stream].count("retract") == 3
    assert {json.loads(d)["uri"] for k, d in stream if k == "retract"} == gone
    assert "edit" not in {k for k, _ in stream}  # counts never reach the live stream
    assert counts_as_of(db, event.slug) is not None
    calls = mastodon.requests_to("/api/v1/statuses")
    if version is None:
        assert len(calls) == 1 and calls[0].params["id[]"]
    else:
        assert sorted(c.path for c in calls) == sorted(
            f"/api/v1/statuses/{s['id']}" for s in statuses
        )
    assert len(appview.requests_to("/xrpc/app.bsky.feed.getPosts")) == 1


def test_the_command_line_refreshes_on_demand(
    fakes, make_settings, redis_url, monkeypatch, tmp_path
):
    event, items, _answers, _fakes = world(fakes)
    settings = make_settings(redis_url=redis_url)
    archive_items(settings, event, items)
    content = tmp_path / "content" / event.slug
    content.mkdir(parents=True)
    source = (settings.content_dir / event.slug / "event.yaml").read_text()
    sources = "\n".join(f"  - {json.dumps(s)}" for s in event.sources)
    head = source.split("\nsources:")[0]
    (content / "event.yaml").write_text(f"{head}\nsources:\n{sources}\n")
    for name in ("schedule.yaml", "description.md"):
        (content / name).write_text((settings.content_dir / event.slug / name).read_text())
    env = {"REDIS_URL": redis_url, "AFA_ARCHIVE_PATH": str(settings.archive_path),
           "AFA_CONTENT_DIR": str(tmp_path / "content"), "AFA_FLICKR_KEY": DEFAULT_KEY}  # fmt: skip
    result = CliRunner().invoke(cli, ["refresh-counts", event.slug], env=env)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("refreshed event: 9 posts, 6 counted, 3 gone, ")
    unknown = CliRunner().invoke(cli, ["refresh-counts", event.slug, "--session", "nope"], env=env)
    assert unknown.exit_code == 1 and "no session 'nope'" in unknown.output


def test_each_session_is_refreshed_before_the_site_rebuilds_then_the_event_later():
    event = sample_event()
    due = schedule(event)
    sessions = {d.scope: d for d in due if not d.scope.startswith("event+")}
    assert set(sessions) == {s.slug for s in event.sessions}
    for s in event.sessions:
        assert s.end < sessions[s.slug].at < s.end + event.grace  # the scheduler: end + grace
    last = max(s.end for s in event.sessions)
    assert [d.at - last for d in due if d.scope.startswith("event+")] == [
        timedelta(hours=6), timedelta(days=1), timedelta(days=3)]  # fmt: skip
    assert all(d.at.tzinfo is UTC or d.at.utcoffset() == timedelta(0) for d in due)
    assert due == sorted(due, key=lambda d: d.at) and datetime.now(UTC) > due[0].at
