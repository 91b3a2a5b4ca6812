"""collector/sources/feeds/: data-file pairs, and polling a real feed server with ETags."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from collector.sources.feeds import identity, parse_feed
from core.archive import open_archive, visible_items
from core.items import item_to_dict
from tests.collector.live_helpers import count, run_until, sample_event
from tests.fakes.feeds import FeedsFake

DATA = Path(__file__).resolve().parent.parent / "data" / "feeds"
NOW = datetime(2026, 10, 24, 12, 0, tzinfo=UTC)
CASES = sorted(p for p in DATA.glob("*.xml"))


def outcome(path: Path) -> list[dict]:
    """What a feed file parses to. The same function wrote the .expected.json files."""
    url = f"https://feeds.example/{path.name}"
    return [item_to_dict(i) for i in parse_feed(path.read_bytes(), url, NOW, "application/xml")]


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_feed_files(path):
    expected = json.loads(path.with_suffix(".expected.json").read_text())
    assert outcome(path) == expected


@pytest.mark.parametrize("path", [p for p in CASES if p.stem.startswith("hostile_")],
                         ids=lambda p: p.stem)  # fmt: skip
def test_hostile_entries_come_out_sanitised(path):
    for item in outcome(path):
        html = item["html"].lower()
        for bad in ("<script", "<iframe", "onclick", "javascript:", "style=", "<img", "url("):
            assert bad not in html


def test_windows_1255_without_declaration_is_read_as_hebrew():
    [item] = outcome(DATA / "hostile_windows1255.xml")
    assert item["text"].startswith("האם תדפיס נייר")


def test_identity():
    assert identity("https://ioc.exchange/@jon404/111544891736153138", "u") == (
        "https://ioc.exchange/users/jon404/statuses/111544891736153138"
    )  # the Mastodon status's ActivityPub uri: one item with the same post read from the API
    assert identity("tag:example.org,2005:3", "u") == "tag:example.org,2005:3"
    assert identity("12345", "https://blog.example/feed") == "https://blog.example/feed#12345"


def entry(k: int) -> str:
    return (f"<item><guid>https://blog.example/p/{k}</guid><link>https://blog.example/p/{k}</link>"
            f"<title>Post {k}</title><pubDate>Sat, 24 Oct 2026 09:{k:02d}:00 GMT</pubDate>"
            f"<description>&lt;p&gt;Body {k}&lt;/p&gt;</description></item>")  # fmt: skip


def rss(*ks: int) -> str:
    items = "".join(entry(k) for k in ks)
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>B</title>{items}</channel></rss>'
    )


def test_polling_with_etag_archives_each_entry_once(make_settings, redis_url):
    settings = make_settings(redis_url=redis_url)
    with FeedsFake() as feeds:
        url = feeds.set_feed("/feed.rss", rss(1, 2))
        event = sample_event({"type": "feed", "url": url, "interval": 0.1})
        db_path = settings.archive_path

        def archived(n):
            return lambda: db_path.exists() and count(db_path, "SELECT count(*) FROM items") >= n

        asyncio.run(run_until(settings, [event], lambda: len(feeds.requests) >= 4, timeout=5))
        statuses = [r.status for r in feeds.requests]
        assert statuses[0] == 200 and set(statuses[1:]) == {304}
        assert feeds.requests[1].headers["if-none-match"].startswith('"')
        feeds.set_feed("/feed.rss", rss(1, 2, 3))  # a new entry: a new ETag
        states, _ = asyncio.run(run_until(settings, [event], archived(3), timeout=5))
    db = open_archive(db_path)
    items = visible_items(db, event.slug)
    db.close()
    assert [i.uri for i in items] == [f"https://blog.example/p/{k}" for k in (1, 2, 3)]
    assert items[0].html == "<p>Body 1</p>"
    assert count(db_path, "SELECT count(*) FROM changes") == 3  # no duplicate, no false edit
    assert states[f"feed:{url}"].received == 3  # counted across both runs, resends not counted


def test_moved_feed_follows_and_gone_feed_fails(make_settings, redis_url):
    settings = make_settings(redis_url=redis_url)
    with FeedsFake() as feeds:
        feeds.set_feed("/new.rss", rss(1))
        feeds.move("/old.rss", "/new.rss")
        feeds.gone("/dead.rss")
        event = sample_event({"type": "feed", "url": feeds.url + "/old.rss", "interval": 0.1},
                             {"type": "feed", "url": feeds.url + "/dead.rss"})  # fmt: skip
        states, _ = asyncio.run(run_until(settings, [event], lambda: False, timeout=0.8))
    db = open_archive(settings.archive_path)
    from core.archive import load_cursor

    cursor = load_cursor(db, event.slug, f"feed:{feeds.url}/old.rss")
    db.close()
    assert cursor["url"] == feeds.url + "/new.rss"
    dead = states[f"feed:{feeds.url}/dead.rss"]
    assert dead.state == "failing" and "HTTP 410" in dead.last_error


def test_a_truncated_response_is_retried_not_archived(make_settings, redis_url):
    """The fake truncates the body (with a matching Content-Length): a half entry must not be
    archived and its ETag must not hide the whole document."""
    settings = make_settings(redis_url=redis_url)
    with FeedsFake() as feeds:
        url = feeds.set_feed("/feed.rss", rss(*range(1, 11)))
        feeds.faults.malformed(1)
        event = sample_event({"type": "feed", "url": url, "interval": 0.1})
        db_path = settings.archive_path
        done = lambda: db_path.exists() and count(db_path, "SELECT count(*) FROM items") >= 10  # noqa: E731
        states, _ = asyncio.run(run_until(settings, [event], done, timeout=10))
    assert count(db_path, "SELECT count(*) FROM items") == 10
    assert count(db_path, "SELECT count(*) FROM changes") == 10
    assert states[f"feed:{url}"].errors >= 1


# Rewrite the expected files: python tests/collector/test_sources_feeds.py
if __name__ == "__main__":
    for case in CASES:
        text = json.dumps(outcome(case), ensure_ascii=False, indent=2) + "\n"
        case.with_suffix(".expected.json").write_text(text)
    sys.exit(0)


def test_a_status_link_with_junk_in_its_host_makes_no_author_url():
    """Issue 9, found by `make fuzz`: the host of a Mastodon tag feed's status link went into the
    author's URL unchecked, spaces and all ('https://fosstodondata: .org/@u')."""
    link = "https://fosstodondata: .org/@u/111"
    feed = (f"<rss version='2.0'><channel><title>t</title><item><guid>{link}</guid>"
            f"<link>{link}</link><description>hi #northwind26</description></item></channel>"
            f"</rss>").encode()  # fmt: skip
    [item] = parse_feed(feed, "https://feeds.example/tag.rss")
    assert (item.author.url, item.url) == ("", "")
    good = feed.replace(b"fosstodondata: .org", b"fosstodon.org")
    assert parse_feed(good, "https://feeds.example/tag.rss")[0].author.url == (
        "https://fosstodon.org/@u"
    )
