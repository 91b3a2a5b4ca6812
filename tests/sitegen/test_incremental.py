"""Incremental builds (issue 4): a build after posts arrive, change or go reads only the changed
rows and renders only the pages they touch, and its output is byte for byte what a build from
nothing gives; a change made without a sequence number is caught; archive pages keep their posts
as late posts arrive; content/ is parsed again only when a file changed."""

from __future__ import annotations

import dataclasses
import gzip
import re
import shutil
import sqlite3
import threading
import time
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from collector.normalise import Delete
from collector.store import save_batch
from core.archive import open_archive
from core.rebuild import request_rebuild
from sitegen import paging, parts, reader
from sitegen.build import build_site
from sitegen.cache import cache_dir
from sitegen.rebuild_loop import run_rebuild_loop

EVENT = "northwind-2026"
ROOT = Path(__file__).resolve().parents[2]


def at(day, hh, mm):
    return datetime(2026, 10, day, hh, mm, tzinfo=UTC)


def files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "manifest.json"
    }


@pytest.fixture
def site(make_settings, sg):
    """90 posts on day one (a photo every seventh), saved the way the collector saves them."""
    settings = make_settings()
    items = []
    for n in range(90):
        media = (sg.Media("image", f"https://img.example/{n}.jpg", alt=f"slide {n}"),)
        items.append(
            sg.make_item(
                n, at(24, 7, 30) + timedelta(minutes=4 * n), media=media if n % 7 == 0 else ()
            )
        )
    db = open_archive(settings.archive_path)
    save_batch(db, EVENT, items, "test", None)
    db.close()
    return settings, items


def build(settings, search: bool = False, **kw):
    lines: list[str] = []
    report = build_site(settings, log=lines.append, search=search, **kw)
    return report, lines


@pytest.mark.parametrize("delta_limit", [20_000, 0])
def test_rebuild_after_new_edited_and_deleted_posts_equals_a_fresh_build(
    site, sg, tmp_path, monkeypatch, delta_limit
):
    """With the default limit each rebuild applies the changed rows to the saved parts; with 0
    each reads the event whole: both give a fresh build's output."""
    settings, items = site
    monkeypatch.setattr(reader, "DELTA_LIMIT", delta_limit)
    how = "delta" if delta_limit else "whole"
    first, _ = build(settings)
    db = open_archive(settings.archive_path)
    edited = dataclasses.replace(items[10], html="<p>edited words</p>", edited_at=at(24, 9, 0))
    new = sg.make_item(500, at(24, 9, 40), text="new")
    save_batch(db, EVENT, [new, edited, Delete("social.example", uri=items[20].uri)], "test", None)
    db.close()
    second, lines = build(settings)
    assert f"{EVENT}: 90 posts up to change 93 ({how})" in lines
    assert 0 < second.rendered < first.rendered / 3
    archive = (settings.output_dir / EVENT / "archive/page-1/index.html").read_text()
    assert (
        "edited words" in archive
        and f'data-uri="{items[20].uri}"' not in archive
        and new.uri in archive
    )
    fresh = settings.with_overrides(output_dir=tmp_path / "fresh")
    build(fresh)
    assert files(settings.output_dir) == files(fresh.output_dir)
    third, lines = build(settings)
    assert third.rendered == 0 and third.written == []
    assert "nothing changed since the last build" in lines
    db = open_archive(settings.archive_path)
    save_batch(db, EVENT, [sg.make_item(501, at(24, 9, 50)), items[30]], "test", None)
    save_batch(db, EVENT, [Delete("social.example", uri=new.uri)], "test", None)
    db.close()
    fourth, lines = build(settings)
    assert f"{EVENT}: 90 posts up to change 95 ({how})" in lines
    shutil.rmtree(fresh.output_dir)
    build(fresh)
    assert files(settings.output_dir) == files(fresh.output_dir)


def test_a_change_without_a_sequence_number_is_read_as_a_delta_all_the_same(site, tmp_path):
    """Issue 12: the archive's item_log (triggers) numbers every write to an item, so a status
    changed straight in SQLite is read again like any change, without reading the event whole
    (which used to be how a fingerprint over every row caught it)."""
    settings, items = site
    build(settings)
    db = open_archive(settings.archive_path)
    db.execute("UPDATE items SET status = 'moderated' WHERE uri = ?", [items[3].uri])
    db.close()
    lines = rebuilt_equals_fresh(settings, tmp_path, "fresh")
    assert f"{EVENT}: 89 posts up to change 90 (delta)" in lines
    archive = (settings.output_dir / EVENT / "archive/page-1/index.html").read_text()
    assert f'data-uri="{items[3].uri}"' not in archive and f'data-uri="{items[4].uri}"' in archive


def test_a_late_post_goes_on_the_last_archive_page(site, sg, monkeypatch):
    settings, items = site
    monkeypatch.setattr(paging, "ARCHIVE_PAGE", 40)
    build(settings)
    out = settings.output_dir / EVENT / "archive"
    before = {n: (out / f"page-{n}/index.html").read_bytes() for n in (1, 2, 3)}
    db = open_archive(settings.archive_path)
    late = sg.make_item(600, at(24, 7, 0), text="late")  # older than every other post
    save_batch(db, EVENT, [late], "test", None)
    db.close()
    report, _ = build(settings)
    assert [n for n in (1, 2, 3) if (out / f"page-{n}/index.html").read_bytes() != before[n]] == [3]
    last = (out / "page-3/index.html").read_text()
    assert last.index(late.uri) < last.index(items[80].uri)  # each page in time order
    assert f"{EVENT}/archive/page-1/index.html" not in report.written


def test_content_is_parsed_again_only_when_a_file_changed(site, tmp_path):
    settings, _ = site
    content = tmp_path / "content"
    shutil.copytree(settings.content_dir, content)
    settings = settings.with_overrides(content_dir=content)
    build(settings)
    description = content / EVENT / "description.md"
    description.write_text(description.read_text() + "\nA line added later.\n")
    report, _ = build(settings)
    assert f"{EVENT}/index.html" in report.written
    assert "A line added later." in (settings.output_dir / EVENT / "index.html").read_text()
    schedule = content / EVENT / "schedule.yaml"
    schedule.write_text(schedule.read_text().replace('end: "12:15"', 'end: "08:00"', 1))
    with pytest.raises(Exception, match="schedule.yaml:"):
        build(settings)
    with pytest.raises(Exception, match="schedule.yaml:"):
        build(settings)  # a mistake is never cached


def test_talk_page_previews_with_its_first_photo(site):
    settings, items = site
    build(settings)
    talk = (settings.output_dir / EVENT / "talks/opening-keynote/index.html").read_text()
    assert '<meta property="og:image" content="https://img.example/' in talk
    assert '<meta name="twitter:card" content="summary_large_image">' in talk


def test_talk_page_shows_its_first_photos_and_links_the_rest(site, sg):
    """A talk with hundreds of photos (1,391 at a million posts) shows its first 24, oldest
    first, and links the event's gallery, where all are: the page does not grow with the talk."""
    settings, _ = site
    extra = [
        sg.make_item(1000 + n, at(24, 7, 31) + timedelta(seconds=50 * n),
                     media=(sg.Media("image", f"https://img.example/extra-{n}.jpg"),))
        for n in range(30)
    ]  # fmt: skip
    db = open_archive(settings.archive_path)
    save_batch(db, EVENT, extra, "test", None)
    db.close()
    build(settings)
    talk = (settings.output_dir / EVENT / "talks/opening-keynote/index.html").read_text()
    grid = talk.split('<ul class="photo-grid">')[1].split("</ul>")[0]
    shown = re.findall(r'<img src="https://img.example/([^"]+)\.jpg"', grid)
    assert shown == ["0", *(f"extra-{n}" for n in range(23))]
    assert '<h2 id="photos">First photos</h2>' in talk
    assert '<a href="../../photos/">All photos of ' in talk
    gallery = (settings.output_dir / EVENT / "photos/index.html").read_text()
    assert "extra-29.jpg" in gallery


def test_schedule_rebuilds_when_moderation_asks(site):
    settings, items = site
    lines: list[str] = []
    stop = threading.Event()
    worker = threading.Thread(
        target=run_rebuild_loop, args=(settings, EVENT, 0.05, stop, lines.append)
    )
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while not any(line.startswith("waiting for") for line in lines):
            assert time.monotonic() < deadline, lines
            time.sleep(0.05)
        db = open_archive(settings.archive_path)
        db.execute("UPDATE items SET status = 'moderated' WHERE uri = ?", [items[0].uri])
        request_rebuild(db, EVENT, "hid a post")
        db.close()
        while not any("moderation asked" in line for line in lines):
            assert time.monotonic() < deadline, lines
            time.sleep(0.05)
    finally:
        stop.set()
        worker.join(10)
    [line] = [line for line in lines if "moderation asked" in line]
    assert line.startswith("moderation asked (hid a post); rebuilt ")
    archive = (settings.output_dir / EVENT / "archive/page-1/index.html").read_text()
    assert f'data-uri="{items[0].uri}"' not in archive and f'data-uri="{items[1].uri}"' in archive


def rebuilt_equals_fresh(settings, tmp_path, name: str) -> list[str]:
    """Build incrementally, then from nothing into tmp_path/name; the two outputs are equal."""
    _, lines = build(settings)
    fresh = settings.with_overrides(output_dir=tmp_path / name)
    build(fresh)
    assert files(settings.output_dir) == files(fresh.output_dir)
    return lines


@pytest.mark.parametrize("delta_limit", [20_000, 0])
def test_rebuild_after_moderation_and_a_post_moving_between_talks_equals_a_fresh_build(
    site, tmp_path, monkeypatch, delta_limit
):
    """Issue 4: hides, blocks, their undoing, and edits that move a post from no talk to one
    talk and then to the parallel one, each read as a delta; every build is byte for byte a
    fresh one. The post that moves is edited last in one round and again in the next, so the
    row replaced holds the event's highest seq (the fingerprint is summed again)."""
    from core.moderation.decisions import Moderator

    settings, items = site
    monkeypatch.setattr(reader, "DELTA_LIMIT", delta_limit)
    how = "delta" if delta_limit else "whole"
    build(settings)
    mover = items[15]  # 10:30 local: two talks running and no tag, so in neither
    db = open_archive(settings.archive_path)
    mod = Moderator(db, None)
    mod.hide(EVENT, items[40].uri, who="test", why="spam")
    mod.block(EVENT, items[3].author.id, who="test", why="abuse")
    tagged = dataclasses.replace(mover, tags=("nwsqlite",), edited_at=at(24, 9, 0))
    save_batch(db, EVENT, [tagged], "test", None)
    db.close()
    lines = rebuilt_equals_fresh(settings, tmp_path, "fresh-1")
    assert any(line.startswith(f"{EVENT}: 76 posts") and f"({how})" in line for line in lines)
    talk = (settings.output_dir / EVENT / "talks/sqlite-at-the-edge/index.html").read_text()
    assert f'data-uri="{mover.uri}"' in talk
    event_page = (settings.output_dir / EVENT / "index.html").read_text()
    assert f'data-uri="{mover.uri}"' not in event_page  # no longer outside every talk

    db = open_archive(settings.archive_path)
    mod = Moderator(db, None)
    moved = dataclasses.replace(mover, tags=("nwgarden",), edited_at=at(24, 9, 5))
    save_batch(db, EVENT, [moved], "test", None)
    mod.unblock(EVENT, items[3].author.id, who="test", why="appeal")
    mod.unhide(EVENT, items[40].uri, who="test", why="mistake")
    db.close()
    lines = rebuilt_equals_fresh(settings, tmp_path, "fresh-2")
    assert any(line.startswith(f"{EVENT}: 90 posts") and f"({how})" in line for line in lines)
    talks = settings.output_dir / EVENT / "talks"
    assert f'data-uri="{mover.uri}"' in (talks / "accessible-by-default/index.html").read_text()
    assert f'data-uri="{mover.uri}"' not in (talks / "sqlite-at-the-edge/index.html").read_text()
    archive = (settings.output_dir / EVENT / "archive/page-1/index.html").read_text()
    assert f'data-uri="{items[40].uri}"' in archive and f'data-uri="{items[3].uri}"' in archive


def test_the_fragment_store_drops_posts_that_are_gone(site):
    """What a deleted, a moderated and a hidden-behind-the-sequence post rendered to leaves the
    fragment store (each read as a delta); the posts still shown keep theirs."""
    from core.moderation.decisions import Moderator

    settings, items = site
    build(settings)
    store = cache_dir(settings) / "posts.sqlite"
    db = open_archive(settings.archive_path)
    ids = {i.uri: db.execute("SELECT id FROM items WHERE uri = ?", [i.uri]).fetchone()[0]
           for i in items}  # fmt: skip

    def stored(item) -> tuple[int, int]:
        with closing(sqlite3.connect(store)) as conn:
            return tuple(
                conn.execute(f"SELECT count(*) FROM {t} WHERE id = ?", [ids[item.uri]]).fetchone()[
                    0
                ]
                for t in ("html", "line")
            )

    assert {stored(items[n]) for n in (5, 6, 7, 8)} == {(1, 1)}
    save_batch(db, EVENT, [Delete("social.example", uri=items[5].uri)], "test", None)
    Moderator(db, None).hide(EVENT, items[6].uri, who="t", why="t")
    db.close()
    _, lines = build(settings)
    assert any("(delta)" in line for line in lines)
    assert [stored(items[n]) for n in (5, 6, 7, 8)] == [(0, 0), (0, 0), (1, 1), (1, 1)]
    db = open_archive(settings.archive_path)
    db.execute("UPDATE items SET status = 'moderated' WHERE uri = ?", [items[7].uri])
    db.close()
    _, lines = build(settings)
    assert any("(delta)" in line for line in lines)
    assert [stored(items[n]) for n in (7, 8)] == [(0, 0), (1, 1)]


def test_random_sessions_edits_deletes_and_moderation_build_what_a_fresh_build_builds(
    site, sg, tmp_path, monkeypatch
):
    """Issue 12: after each round of random changes (a session's new posts, some with photos or
    a talk's tag; edits that change text or move a post; deletes; hides, blocks and their undoing;
    a status changed in SQLite without a sequence number) the incremental build's output is byte
    for byte a fresh build's. Posts are rendered as they are read (the fragment store), archive
    pages hold 30 posts, talk and break pages 4 and search blocks 8 row ids, so rounds cross
    page and block edges; from the second round on the Pagefind indexes are built too, so a
    later round keeps the blocks an earlier one indexed, and a post that moved to another page
    of its talk must have its block indexed again."""
    import random

    from core.moderation.decisions import Moderator
    from sitegen import search

    settings, items = site
    monkeypatch.setattr(paging, "ARCHIVE_PAGE", 30)
    monkeypatch.setattr(search, "BLOCK", 8)
    monkeypatch.setattr(parts, "TAIL", 5)  # newest() runs past the saved tails, or not
    monkeypatch.setattr(paging, "PAGE", 4)  # talks and breaks run to several pages
    rng = random.Random(12)
    live = list(items)
    sessions = [(24, 7), (24, 8), (24, 9), (24, 11), (24, 12), (25, 7), (25, 8)]  # hours, UTC
    tags = [(), ("nwsqlite",), ("nwgarden",), ("nwmain",), ("nwkeynote1",)]
    build(settings)
    n, blocked = 1000, []
    for round_ in range(4):
        db = open_archive(settings.archive_path)
        day, hour = rng.choice(sessions)
        fresh_posts = []
        for _ in range(rng.randrange(5, 25)):
            n += 1
            media = (
                (sg.Media("image", f"https://img.example/{n}.jpg", alt=""),) if n % 4 == 0 else ()
            )
            at_ = at(day, hour, rng.randrange(60))
            fresh_posts.append(sg.make_item(n, at_, tags=rng.choice(tags), media=media))
        edits = [
            dataclasses.replace(p, html=f"<p>edit {round_}</p>", text=f"edit {round_}",
                                tags=rng.choice(tags), edited_at=at(26, 9, round_))
            for p in rng.sample(live, 3)
        ]  # fmt: skip
        gone = rng.sample([p for p in live if p not in edits], 2)
        save_batch(db, EVENT, fresh_posts + edits, "test", None)
        save_batch(db, EVENT, [Delete("social.example", uri=p.uri) for p in gone], "test", None)
        live = [p for p in live + fresh_posts if p not in gone]
        mod = Moderator(db, None)
        hidden = rng.choice(live)
        mod.hide(EVENT, hidden.uri, who="test", why="round")
        if round_ % 2:
            mod.unhide(EVENT, hidden.uri, who="test", why="undo")
            blocked.append(rng.choice(live).author.id)
            mod.block(EVENT, blocked[-1], who="test", why="round")
        elif blocked:
            mod.unblock(EVENT, blocked.pop(), who="test", why="undo")
        if round_ == 2:  # a change with no sequence number (the item_log has it all the same)
            db.execute(
                "UPDATE items SET status = 'moderated' WHERE uri = ?", [rng.choice(live).uri]
            )
        db.close()
        searching = round_ >= 1  # later rounds keep the blocks an earlier one indexed
        _, lines = build(settings, search=searching)
        fresh = settings.with_overrides(output_dir=tmp_path / f"fresh-{round_}")
        build(fresh, search=searching)
        mine, theirs = comparable(settings.output_dir), comparable(fresh.output_dir)
        assert sorted(mine) == sorted(theirs), round_
        assert [p for p in mine if mine[p] != theirs[p]] == [], (round_, lines)
    assert any(p.startswith(f"{EVENT}/pagefind/block-") and "/fragment/" in p for p in mine)
    assert any(p.startswith(f"{EVENT}/talks/") and "/page-2/" in p for p in mine)


def comparable(root: Path) -> dict[str, bytes]:
    """files(root), less what Pagefind writes in its hash maps' order, which changes from run to
    run for the same records (its filter tables, and the meta and entry files naming them): the
    records themselves (fragment/) and the word index (index/) are compared byte for byte."""
    return {
        p: data
        for p, data in files(root).items()
        if "/pagefind/" not in p or "/fragment/" in p or "/index/" in p
    }


def test_a_damaged_part_file_is_read_again_from_the_archive(site, sg, tmp_path):
    """Issue 12: the parts a rebuild loads come from the build cache; one that cannot be read
    (a disk error, a hand edit) makes the build say so and read the archive whole, and its
    output is still a fresh build's."""
    settings, _ = site
    build(settings)
    folder = cache_dir(settings) / f"parts-{EVENT}"
    damaged = [p for p in folder.iterdir() if p.name != "meta.marshal"]
    assert damaged
    for path in damaged:
        path.write_bytes(b"\x00 not marshal")
    db = open_archive(settings.archive_path)
    save_batch(db, EVENT, [sg.make_item(700, at(24, 9, 41), text="after")], "test", None)
    db.close()
    lines = rebuilt_equals_fresh(settings, tmp_path, "fresh")
    assert any("the build cache is damaged" in line and str(folder) in line for line in lines)
    assert any(f"{EVENT}: 91 posts" in line and "(whole)" in line for line in lines)


def test_a_talk_that_grows_a_page_renders_its_first_and_last_two_pages(site, sg, monkeypatch):
    """Issue 12: only a talk's first page says how many pages there are, so a session that adds
    a page renders the first page, the old last page (it gains a "later posts" link) and the new
    one; the pages between keep their bytes and are not rendered."""
    settings, _ = site
    monkeypatch.setattr(paging, "PAGE", 4)
    build(settings)
    talk = settings.output_dir / EVENT / "talks/opening-keynote"
    pages = len(list(talk.glob("page-*"))) + 1
    assert pages >= 3
    count = int(re.search(r"(\d+) posts? by", (talk / "index.html").read_text()).group(1))
    assert 4 * (pages - 1) < count <= 4 * pages
    db = open_archive(settings.archive_path)
    extra = [sg.make_item(800 + k, at(24, 7, 1 + k), tags=("nwkeynote1",))
             for k in range(4 * pages - count + 1)]  # fmt: skip
    save_batch(db, EVENT, extra, "test", None)
    db.close()
    report, _ = build(settings)
    written = {p for p in report.written if p.startswith(f"{EVENT}/talks/opening-keynote/")}
    folder = f"{EVENT}/talks/opening-keynote"
    assert {f"{folder}/index.html", f"{folder}/page-{pages}/index.html",
            f"{folder}/page-{pages + 1}/index.html"} <= written  # fmt: skip
    assert not any(f"/page-{n}/" in p for p in written for n in range(2, pages)), written


def test_a_download_changed_in_place_in_output_is_not_built_on(site, sg, tmp_path, monkeypatch):
    """Issue 12: a session's posts.jsonl.gz is the start of the last one (kept in the build
    cache, linked into output/) and the new pages' members. A file changed in place in output/
    (the same inode as the kept copy) must not be the start of the next one."""
    settings, _ = site
    monkeypatch.setattr(paging, "ARCHIVE_PAGE", 20)
    build(settings)
    download = settings.output_dir / EVENT / "posts.jsonl.gz"
    with open(download, "r+b") as f:
        f.seek(30)
        f.write(b"tampered")
    db = open_archive(settings.archive_path)
    save_batch(db, EVENT, [sg.make_item(900, at(24, 9, 41), text="later")], "test", None)
    db.close()
    rebuilt_equals_fresh(settings, tmp_path, "fresh")
    rows = gzip.decompress(download.read_bytes()).decode().splitlines()
    assert len(rows) == 91 and b"tampered" not in download.read_bytes()
