"""Regression, issue #9 item 6: control and bidi characters reached pages and feeds.

Bug: C0/C1 control characters and bidi overrides (U+202E, U+2066…) passed from every source into
names, text, spoilers and alt text: one such post made the event's and the talk's Atom feeds
invalid XML, and a name could be spoofed right-to-left.
Fix: the source contract cleans every change a parser returns (collector.normalise.clean_change,
applied by @parser); the feed writer leaves out what XML 1.0 refuses, for archives older than
the fix. Reproduction: hostile posts from each source through the real parsers and save path,
then a site build; every Atom feed it writes is parsed as XML and no file holds those characters.
"""

from __future__ import annotations

import copy
import gzip
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from xml.etree import ElementTree as ET

from collector.sources import bluesky, flickr, mastodon
from collector.sources.feeds import parse_feed
from collector.store import save_batch
from core.archive import open_archive
from core.items import Author, Item, item_to_dict
from sitegen.build import build_site

ROOT = Path(__file__).resolve().parent
DATA, EVENT, TAG = ROOT / "data", "northwind-2026", "northwind26"
# C0 (but tab and newline), DEL, C1, the bidi embeddings, overrides and isolates, U+FFFE/FFFF
FORBIDDEN = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ufffe\uffff]")
EVIL = "\u200fEvil\u202eoj\u202c\u0007man\x85"  # shows as "Evil jo man" spoofed; holds a bell


def load(path: str) -> dict:
    return json.loads((DATA / path).read_text(encoding="utf-8"))


def hostile_posts() -> list[Item]:
    status = copy.deepcopy(load("mastodon/status_with_link.json")["payload"])
    status.update(created_at="2026-10-24T07:30:00Z", spoiler_text="cw\u202e\u0001 spoiler",
                  content=f"<p>mastodon\u0001 \u2066post\u2069 #{TAG}</p>", tags=[])  # fmt: skip
    status["account"]["display_name"] = EVIL
    status["media_attachments"] = [{"type": "image", "url": "https://img.example/a.png",
                                    "description": "alt\u202e\u0008 text"}]  # fmt: skip
    record = {"$type": "app.bsky.feed.post", "createdAt": "2026-10-24T07:31:00Z",
              "text": f"bluesky\u0002 \u202egnp.exe #{TAG}\r\nline two", "langs": ["en"],
              "embed": {"$type": "app.bsky.embed.images", "images": [{"alt": "bsky\u0085alt",
                        "image": {"ref": {"$link": "bafkreicleantext"}}}]}}  # fmt: skip
    frame = {"did": "did:plc:cleantext", "time_us": 1792833060000000, "kind": "commit",
             "commit": {"operation": "create", "collection": "app.bsky.feed.post",
                        "rkey": "3kclean", "cid": "bafyclean", "record": record}}  # fmt: skip
    photo = copy.deepcopy(load("flickr/photo_with_url_l.json")["payload"])
    photo.update(title="flickr\u0003 title\u202e", dateupload="1792833120", tags=TAG,
                 ownername=EVIL, description={"_content": "desc\u0004 \u2067x"})  # fmt: skip
    feed = (f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
            f"<title>f</title><id>urn:f</id><updated>2026-10-24T07:33:00Z</updated><entry>"
            f"<id>urn:e1</id><title>feed &#x202E;title&#x85;</title>"
            f"<updated>2026-10-24T07:33:00Z</updated><author><name>&#x202E;name</name></author>"
            f"<content type='html'>&lt;p&gt;feed&#x85; body #{TAG}&lt;/p&gt;</content>"
            f"</entry></feed>").encode()  # fmt: skip
    return [mastodon.parse_status(status, "mastodon.social"),
            bluesky.parse_jetstream(frame, {TAG}, {"did:plc:cleantext": "h\u202eandle.example"}),
            flickr.parse_photo(photo),
            *parse_feed(feed, "https://feeds.example/tag.atom")]  # fmt: skip


def output_texts(out: Path):
    for path in sorted(out.rglob("*")):
        if path.suffix in (".html", ".atom", ".jsonl", ".json", ".xml", ".txt"):
            yield path, path.read_text(encoding="utf-8")
        elif path.name.endswith(".jsonl.gz"):
            yield path, gzip.decompress(path.read_bytes()).decode("utf-8")


def strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict | list | tuple):
        for child in value.values() if isinstance(value, dict) else value:
            yield from strings(child)


def test_every_field_of_a_parsed_post_is_clean():
    posts = hostile_posts()
    assert len(posts) == 4
    for post in posts:
        assert [t for t in strings(item_to_dict(post)) if FORBIDDEN.search(t)] == []
    names = {p.source: p.author.name for p in posts}
    assert names["mastodon"] == names["flickr"] == "Evilojman"  # no mark, no override, no bell
    assert posts[1].author.handle == "handle.example"
    assert posts[1].text == f"bluesky gnp.exe #{TAG}\nline two"  # CRLF is a newline
    assert posts[0].spoiler == "cw spoiler" and posts[0].media[0].alt == "alt text"


def test_a_site_built_from_them_has_valid_feeds_and_clean_pages(make_settings):
    settings = make_settings()
    db = open_archive(settings.archive_path)
    save_batch(db, EVENT, hostile_posts(), "test", None)
    db.close()
    build_site(settings, search=False)
    out = settings.output_dir
    feeds = sorted(out.rglob("*.atom"))
    assert len(feeds) > 5  # the event's and every talk's
    for feed in feeds:
        ET.fromstring(feed.read_bytes())  # well-formed XML, or ParseError names the feed
    event_feed = (out / EVENT / "feed.atom").read_text(encoding="utf-8")
    assert "Evilojman" in event_feed and "bluesky gnp.exe" in event_feed
    seen = 0
    for path, text in output_texts(out):
        assert not FORBIDDEN.search(text), path
        seen += "Evilojman" in text
    assert seen >= 3  # the posts are there: pages, feed, download


def test_the_feed_writer_refuses_what_xml_cannot_hold(make_settings):
    """An archive written before the collector cleaned text still gives valid feeds."""
    settings = make_settings()
    names = ["bell\u0007", "nul\x00", "vt\x0b", "nonchar\uffff"]
    items = [Item(uri=f"https://a.example/{n}", source="mastodon", origin="a.example",
                  local_id=str(n), url=f"https://a.example/@u/{n}", author=Author(
                      id="https://a.example/u", name=name), html=f"<p>{name}</p>",
                  created_at=datetime(2026, 10, 24, 7, 30 + n, tzinfo=UTC), text=f"text {name}",
                  spoiler=name) for n, name in enumerate(names)]  # fmt: skip
    db = open_archive(settings.archive_path)
    save_batch(db, EVENT, items, "old", None)  # as saved before the parsers cleaned them
    db.close()
    build_site(settings, search=False)
    feed = ET.fromstring((settings.output_dir / EVENT / "feed.atom").read_bytes())
    summaries = [e.text for e in feed.iter("{http://www.w3.org/2005/Atom}summary")]
    assert sorted(summaries) == ["bell", "nonchar", "nul", "vt"]
