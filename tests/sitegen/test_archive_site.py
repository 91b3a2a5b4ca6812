"""The archive site's pages and downloads: anchors, feeds, JSON Lines, the index's grouping,
incremental rebuilds and the search index (issue 4)."""

from __future__ import annotations

import gzip
import json
import re
from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree as ET

import pytest

from core.archive import open_archive
from sitegen.build import build_site

ATOM = "{http://www.w3.org/2005/Atom}"
EVENT = "northwind-2026"


def at(day, hh, mm, ss=0):
    return datetime(2026, 10, day, hh, mm, ss, tzinfo=UTC)


@pytest.fixture
def site(make_settings, sg):
    """About 120 posts on day one; every fifth from a noindex account, every seventh a photo."""
    settings = make_settings()
    quiet = sg.Author(id="https://q.example/u", name="Quiet Zebra", noindex=True)
    items = []
    for n in range(120):
        extra = {"author": quiet, "text": "zebraword"} if n % 5 == 0 else {"text": f"post {n}"}
        if n % 7 == 0:
            extra["media"] = (sg.Media("image", f"https://img.example/{n}.jpg", alt=f"slide {n}"),)
        items.append(
            sg.make_item(n, at(24, 8, 0) + timedelta(minutes=3 * n), boosts=n % 4, likes=n % 3,
                         links=(f"https://l.example/{n % 3}",), **extra)
        )  # fmt: skip
    db = open_archive(settings.archive_path)
    sg.save_items(db, items)
    db.close()
    return settings, items


def read(settings, path):
    return (settings.output_dir / path).read_text(encoding="utf-8")


def test_post_anchors_are_stable_as_posts_arrive(site, sg):
    settings, items = site
    build_site(settings, search=False)
    page = f"{EVENT}/archive/page-1/index.html"
    first = re.findall(r'<article class="post" id="(p-[0-9a-f]{12})"', read(settings, page))
    db = open_archive(settings.archive_path)
    sg.save_items(db, [sg.make_item(500, at(24, 7, 59))])  # a late post, before all the others
    db.close()
    build_site(settings, search=False)
    second = re.findall(r'<article class="post" id="(p-[0-9a-f]{12})"', read(settings, page))
    assert len(first) == 120 and len(set(first)) == 120 and second[1:] == first


def test_feeds_are_atom_and_leave_out_noindex_accounts(site):
    settings, items = site
    build_site(settings, search=False)
    feed = ET.fromstring((settings.output_dir / EVENT / "feed.atom").read_bytes())
    assert feed.tag == f"{ATOM}feed" and feed.find(f"{ATOM}id").text.startswith("tag:")
    entries = feed.findall(f"{ATOM}entry")
    assert len(entries) == 50
    assert all(e.find(f"{ATOM}author/{ATOM}name").text != "Quiet Zebra" for e in entries)
    assert all(e.find(f"{ATOM}updated") is not None and e.find(f"{ATOM}id").text for e in entries)
    newest = [i for i in items if not i.author.noindex][-1]
    assert entries[0].find(f"{ATOM}id").text == newest.uri


def test_jsonl_has_one_item_per_line_and_nothing_deleted(site, sg):
    settings, items = site
    db = open_archive(settings.archive_path)
    sg.save_items(
        db, [sg.make_item(900, at(24, 9, 0), uri="https://x.example/gone")], status="deleted"
    )
    db.close()
    build_site(settings, search=False)
    data = gzip.decompress((settings.output_dir / EVENT / "posts.jsonl.gz").read_bytes())
    rows = [json.loads(line) for line in data.decode("utf-8").splitlines()]
    assert [r["uri"] for r in rows] == [i.uri for i in items]
    assert set(rows[0]) >= {"uri", "created_at", "author", "html", "media", "links", "extra"}
    talk = [
        json.loads(line)
        for line in read(settings, f"{EVENT}/talks/opening-keynote/posts.jsonl").splitlines()
    ]
    assert talk and all(r in rows for r in talk)


def test_talk_page_summarises_its_posts(site):
    settings, items = site
    build_site(settings, search=False)
    text = read(settings, f"{EVENT}/index.html")
    assert 'id="photo-strip"' in text and "https://l.example/0" in text
    talk = next(
        p
        for p in (settings.output_dir / EVENT / "talks").iterdir()
        if "Most boosted" in (p / "index.html").read_text()
    )
    page = (talk / "index.html").read_text()
    for heading in ("Most boosted", "Most liked", "Top links", "Photos"):
        assert f">{heading}</h2>" in page
    assert re.search(r"\d+ posts? by \d+ (person|people)\.", page)
    for href in re.findall(r'<a href="#(p-[0-9a-f]{12})">', page):
        assert f'id="{href}"' in page


def test_index_groups_events_by_the_build_clock(site):
    settings, _ = site
    for now, heading in (
        (at(1, 12, 0), "Upcoming"),
        (at(24, 12, 0), "Live now"),
        (at(30, 1, 0), "Past events"),
    ):
        build_site(settings, now=now, search=False)
        assert '<h2 id="events-' in read(settings, "index.html")
        assert f">{heading}</h2>" in read(settings, "index.html")


def test_rebuild_renders_only_pages_whose_posts_changed(site, sg):
    settings, _ = site
    first = build_site(settings, search=False)
    db = open_archive(settings.archive_path)
    sg.save_items(db, [sg.make_item(700, at(25, 10, 0), text="late")])  # day two, after the rest
    db.close()
    second = build_site(settings, search=False)
    assert 0 < second.rendered < first.rendered / 3
    assert (
        f"{EVENT}/posts.jsonl.gz" in second.written
        and f"{EVENT}/archive/page-1/index.html" in second.written
    )
    untouched = f"{EVENT}/talks/opening-keynote/index.html"
    assert untouched not in second.written
    manifest = json.loads(read(settings, "manifest.json"))
    assert manifest["changed"] == sorted(second.written)
    third = build_site(settings, search=False)
    assert third.rendered == 0 and third.written == []


def test_search_index_holds_posts_but_not_noindex_accounts(site):
    settings, _ = site
    report = build_site(settings)
    assert report.search > 0
    folder = settings.output_dir / EVENT / "pagefind"
    fragments = list(folder.glob("block-*/fragment/*.pf_fragment"))
    text = " ".join(gzip.decompress(f.read_bytes()).decode("utf-8", "replace") for f in fragments)
    assert "post 1" in text and "zebraword" not in text and "Quiet Zebra" not in text
    search = read(settings, f"{EVENT}/search/index.html")
    blocks = sorted((p.name for p in folder.iterdir()), key=lambda n: int(n.split("-")[1]))
    assert blocks and f'data-bundles="{" ".join(f"../pagefind/{b}/" for b in blocks)}"' in search


def test_search_sends_a_post_on_a_later_talk_page_to_that_page(site, monkeypatch):
    """Issue 12: a talk or break of more than paging.PAGE posts runs to page-2/, page-3/…; each
    search record says the page its posts are on, and each post is on the page it says."""
    from sitegen import paging

    monkeypatch.setattr(paging, "PAGE", 10)
    settings, _ = site
    build_site(settings)
    folder = settings.output_dir / EVENT / "pagefind"
    records = [
        json.loads(gzip.decompress(f.read_bytes())[len(b"pagefind_dcd") :])
        for f in folder.glob("block-*/fragment/*.pf_fragment")
    ]
    later = [r for r in records if "/page-" in r["meta"].get("at", "")]
    assert later, sorted({r["meta"].get("at", "") for r in records})
    for record in later + [r for r in records if r["meta"].get("at", "").count("/") == 2]:
        page = read(settings, f"{EVENT}/{record['meta']['at']}index.html")
        anchors = [a["id"] for a in record["anchors"]]
        assert anchors and all(f'<article class="post" id="{a}"' in page for a in anchors), record[
            "meta"
        ]["at"]
