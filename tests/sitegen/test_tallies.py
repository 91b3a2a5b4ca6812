"""sitegen/tallies.py and Parts.newest: what pages make from the parts' tallies, or from the
newest parts alone, is what stats.py and pages.py make from every post of those parts, ties and
order included (the event and day pages are built this way, so a slip here would show on them
without any incremental test noticing: full and incremental builds both use the tallies)."""

import random
from datetime import UTC, datetime, timedelta
from operator import itemgetter

import pytest

from sitegen import pages, parts, stats, tallies
from sitegen.parts import Parts
from sitegen.posts import Post, micros

START = datetime(2026, 10, 24, 7, 0, tzinfo=UTC)
URLS = ["https://a.example/1", "https://a.example/2", "http://b.example/", "ftp://c.example/",
        "javascript:x", "https://d.example/" + "x" * 100]  # fmt: skip


def posts(n: int, seed: int) -> list[Post]:
    """Posts with repeated times, links (some twice in one post, some not on the web), photos
    (some sensitive, some videos, some not on the web) and noindex authors."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        links = tuple(rng.choice(URLS) for _ in range(rng.choice((0, 0, 1, 1, 2, 3))))
        t = micros(START + timedelta(seconds=rng.randrange(0, 4 * 3600, rng.choice((1, 60)))))
        media = tuple(
            (rng.choice(("image", "image", "video")),
             rng.choice(("https://i.example/", "http://i.example/", "data:")) + str(i),
             "", "", None, None)
            for _ in range(rng.choice((0, 0, 0, 1, 2)))
        )  # fmt: skip
        rows.append(
            Post(
                (
                    i,
                    i,
                    1,
                    t,
                    None,
                    f"a{i % 13}",
                    rng.random() < 0.2,
                    rng.random() < 0.1,
                    links,
                    media,
                    0,
                    0,
                    True,
                    (f"p-{i}", f"a{i}") if media else None,
                )
            )  # fmt: skip
        )
    return sorted(rows, key=itemgetter(3, 0))


def split(items: list[Post], rng: random.Random) -> list[list[Post]]:
    parts: list[list[Post]] = [[] for _ in range(rng.randrange(1, 6))]
    for post in items:
        rng.choice(parts).append(post)
    return parts


def test_merged_tallies_give_what_stats_gives_over_every_post():
    for seed in range(25):
        rng = random.Random(seed)
        items = posts(rng.randrange(0, 400), seed)
        found = [tallies.tally(part) for part in split(items, rng)]
        for n in (1, 3, 10):
            assert tallies.top_links(found, n) == stats.top_links(items, n), seed
        assert tallies.participants(found) == stats.participants(items)
        for limit in (1, 12, 24):
            assert tallies.first_photos(found, limit) == stats.photos(items, limit=limit), seed
        for step in (timedelta(minutes=1), timedelta(minutes=5)):
            end = START + timedelta(hours=rng.randrange(1, 5), minutes=rng.randrange(60))
            assert tallies.activity(found, START, end, step) == pages.activity(
                items, START, end, step
            ), seed


def test_activity_off_whole_minutes_is_left_to_the_posts():
    found = [tallies.tally(posts(50, 1))]
    assert tallies.activity(found, START + timedelta(seconds=30), START + timedelta(hours=1),
                            timedelta(minutes=5)) is None  # fmt: skip


def test_the_newest_parts_give_the_newest_posts(tmp_path):
    """Parts.newest reads parts newest first and stops early; what it gives must hold every
    post a page takes from the end of the event (ties at the cut included)."""
    for seed in range(15):
        rng = random.Random(seed)
        items = posts(rng.randrange(1, 500), seed)
        parts = made(tmp_path, seed, items, rng)
        for n in (1, 20, 50, 600):
            assert pages.newest(parts.newest(n), n) == pages.newest(items, n), (seed, n)
            assert parts.newest(n)[-n:] == items[-n:]
        assert tallies.newest_indexable(parts.newest(50, lambda p: not p.noindex)) == (
            tallies.newest_indexable(items)
        )
        newest_photos = parts.newest(12, stats.shows_photo)
        assert stats.photos(reversed(newest_photos), limit=12) == stats.photos(
            reversed(items), limit=12
        )


def made(folder, seed: int, items: list[Post], rng: random.Random) -> Parts:
    found = Parts(folder, f"e{seed}", "k", [])
    groups = split(items, rng)
    found.names = [f"t:{k}|" for k in range(len(groups))]
    found.loaded = dict(zip(found.names, groups, strict=True))
    found.tallies = {name: tallies.tally(rows) for name, rows in found.loaded.items()}
    return found


@pytest.mark.parametrize("tail", [7, 600])
def test_the_newest_posts_come_from_the_parts_saved_tails(tmp_path, monkeypatch, tail):
    """Saved parts answer newest() from each part's last TAIL posts (the live page, wall, feeds
    and newest photos of a million-post event read 600 posts a part, not 18,000), and read
    the whole part when its tail runs out before the answer is certain."""
    monkeypatch.setattr(parts, "TAIL", tail)
    indexable, photo = (lambda p: not p.noindex), stats.shows_photo
    read_whole = 0
    for seed in range(12):
        rng = random.Random(seed)
        items = posts(rng.randrange(1, 500), seed)
        whole = made(tmp_path, seed, items, rng)
        whole.dirty = set(whole.names)
        whole.save()
        saved = Parts(tmp_path, f"e{seed}", "k", [])
        assert saved.load()
        for n, keep in [(1, None), (20, None), (50, indexable), (12, photo), (600, None)]:
            assert saved.newest(n, keep) == whole.newest(n, keep), (seed, n)
        read_whole += len(saved.loaded)
    assert (read_whole > 0) == (tail == 7)  # a short tail ran out, and only then


def test_a_part_that_only_gains_posts_is_appended_to_and_reads_back_whole(tmp_path, monkeypatch):
    """A session's new posts are appended to their part's file as one more record (late ones
    with older times included); bytes after the length meta vouches for (an append whose build
    died before its meta was written) are never read; after APPENDS records the file is written
    whole again; a changed post makes its part be written whole."""
    monkeypatch.setattr(parts, "APPENDS", 3)
    items = posts(400, 7)
    random.Random(3).shuffle(items)  # a session's posts fall among the part's, in time
    first, later = sorted(items[:300], key=itemgetter(3, 0)), items[300:]
    saved = Parts(tmp_path, "e", "k", [])
    saved.fill(first, 1, "1/a")
    saved.save()
    [name] = saved.names
    shown = list(first)
    for k, batch in enumerate([later[:40], later[40:41], later[41:90], later[90:]], start=2):
        again = Parts(tmp_path, "e", "k", [])
        assert again.load()
        before = again.files[name]
        again.apply({p[0]: p for p in batch}, k, f"{k}/a")
        again.save()
        shown = sorted(shown + batch, key=itemgetter(3, 0))
        path = tmp_path / "parts-e" / again.files[name]
        assert (again.files[name] == before) == (k != 4)  # a file of 3 records: written whole
        with open(path, "ab") as f:
            f.write(b"\x00half an append")  # never vouched for by meta
        check = Parts(tmp_path, "e", "k", [])
        assert check.load()
        assert check.rows(name) == shown
        assert check.tallies[name] == tallies.tally(shown)
    edited = Post(shown[5][:10] + (9, 9) + shown[5][12:])  # new counts for a post already there
    again = Parts(tmp_path, "e", "k", [])
    assert again.load()
    before = again.files[name]
    again.apply({edited[0]: edited}, 9, "9/a")
    again.save()
    assert again.files[name] != before
    check = Parts(tmp_path, "e", "k", [])
    assert check.load() and check.rows(name)[5] == edited and len(check.rows(name)) == 400


def test_the_arrival_arrays_are_appended_to_only_when_posts_were_only_added(tmp_path):
    """The row ids in arrival order (and each one's part) are files of their own: a session that
    adds posts after all others appends to them; a deleted post makes new files, and the old
    meta's files stay as they were until the new meta names others."""
    items = sorted(posts(300, 11), key=itemgetter(0))  # arrival order
    saved = Parts(tmp_path, "e", "k", [])
    saved.fill(sorted(items[:200], key=itemgetter(3, 0)), 1, "1/a")
    saved.save()
    files = saved._arrays[:2]
    again = Parts(tmp_path, "e", "k", [])
    assert again.load()
    again.apply({p[0]: p for p in items[200:]}, 2, "2/a")  # ids 200..299: after all the others
    again.save()
    assert again._arrays == (*files, 300)
    check = Parts(tmp_path, "e", "k", [])
    assert check.load() and list(check.ids) == [p[0] for p in items]
    assert list(check.where) == list(again.where)
    check.apply({items[0][0]: None}, 3, "3/a")  # a delete: entries the saved meta vouches for move
    before = {f: (tmp_path / "parts-e" / f).read_bytes() for f in files}
    check.save()
    assert check._arrays[:2] != files and check._arrays[2] == 299
    last = Parts(tmp_path, "e", "k", [])
    assert last.load() and list(last.ids) == [p[0] for p in items[1:]]
    assert not any((tmp_path / "parts-e" / f).exists() for f in before)  # removed once unnamed


def test_a_grown_tally_is_the_tally_of_all_its_posts():
    """tallies.grown: a part's tally after a session added posts that arrived after its others,
    made from the earlier tally and the added posts, equals the tally of every post (links'
    first sighting, first photos, page digests across a half-full last page included); posts
    that arrived before the newest earlier one are refused."""
    from sitegen import paging

    for seed in range(30):
        rng = random.Random(seed)
        items = sorted(posts(rng.randrange(2, 1400), seed), key=itemgetter(0))  # arrival
        cut = rng.randrange(1, len(items))
        for page in (paging.PAGE, 7):
            paging.PAGE, saved = page, paging.PAGE
            try:
                before = sorted(items[:cut], key=itemgetter(3, 0))
                every = sorted(items, key=itemgetter(3, 0))
                made = tallies.grown(tallies.tally(before), every, items[cut:])
                assert made == tallies.tally(every), (seed, page)
                late = items[cut - 1 : cut]  # arrived before the newest earlier post
                rest = sorted(items[: cut - 1] + items[cut:], key=itemgetter(3, 0))
                assert tallies.grown(tallies.tally(rest), every, late) is None
            finally:
                paging.PAGE = saved


def test_a_place_in_several_parts_is_tallied_over_all_of_them(tmp_path):
    """place_tally reads a talk's one part's tally; a place whose posts fall in two days' spans
    (two parts) is tallied again over every post of both, in time order."""
    items = posts(300, 11)
    middle = items[150][3]
    spans = [(items[0][3], middle, "2026-10-24"), (middle, items[-1][3] + 1, "2026-10-25")]
    placed = [Post((*p[:4], "t:x", *p[5:])) for p in items]
    parts = Parts(tmp_path, "e", "k", spans)
    parts.fill(placed, 1, "s")
    assert len(parts.part_names("t:x")) == 2
    whole = tallies.tally(placed)
    for field in ("seqs", "pages", "feed"):
        assert parts.place_tally("t:x", field) == whole[field]
    assert parts.place_tally("t:none", "seqs") == tallies.tally([])["seqs"]
