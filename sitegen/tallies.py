"""What one part of an event's posts adds up to (parts.py), kept beside the part so that pages
over many parts (the event, a day) are made from the tallies, not from every post. Pure.

Each merge gives exactly what stats.py gives over the posts of those parts in time order: the
same links in the same order, the same photos, the same counts (tests/sitegen/test_tallies.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from operator import itemgetter
from urllib.parse import urlsplit

from . import charts, paging
from .posts import Post, by_arrival, micros, seqs
from .stats import Link, Photo, photos, shows_photo

FEED_POSTS = 50  # posts in a feed
FIRST_PHOTOS = 24  # the most photos a page takes from the start of some parts (a day's page)
MINUTE = 60_000_000  # microseconds
_WEB = ("http://", "https://")
_AUTHOR, _T, _ID, _TIME_ORDER = itemgetter(5), itemgetter(3), itemgetter(0), itemgetter(3, 0)


def tally(posts: list[Post]) -> dict:
    """One part's tally, from its posts in time order (marshal-able: builtins only)."""
    links: dict[str, list] = {}
    _count_links(links, posts)
    first = posts[0] if posts else None
    last = posts[-1] if posts else None
    return {
        "n": len(posts),
        "seqs": seqs(posts),
        "links": links,
        "authors": sorted(set(map(_AUTHOR, posts))),
        "photos": [tuple(p) for p in _photo_posts(posts, FIRST_PHOTOS)],
        "minutes": dict(Counter(t // MINUTE for t in map(_T, posts))),
        "first": None if first is None else (first[3], first[0]),
        "last": None if last is None else (last[3], last[0]),
        "feed": seqs(newest_indexable(posts)),
        "pages": [seqs(chunk) for chunk in paging.paged(posts)]
        if len(posts) > paging.PAGE
        else None,
        "top": max(map(_ID, posts), default=0),  # the newest row id: grown() appends after it
    }


def grown(before: dict, posts: list[Post], added: list[Post]) -> dict | None:
    """tally(posts), where posts are the part's earlier posts (tallied in `before`) and `added`,
    all in time order, from `before` and the added posts alone: a session adds 75 posts to a talk
    of 20,000, whose links, authors and minutes are not counted again. None unless every added
    post arrived after the earlier ones (row id), so that no earlier post changes page."""
    if not added or min(map(_ID, added)) <= before["top"]:
        return None
    added = sorted(added, key=_TIME_ORDER)
    links = {url: list(value) for url, value in before["links"].items()}
    _count_links(links, added)
    minutes = Counter(before["minutes"])
    minutes.update(t // MINUTE for t in map(_T, added))
    photos = sorted([*map(Post, before["photos"]), *_photo_posts(added, FIRST_PHOTOS)],
                    key=_TIME_ORDER)[:FIRST_PHOTOS]  # fmt: skip
    return {
        "n": len(posts),
        "seqs": seqs(posts),
        "links": links,
        "authors": sorted(set(before["authors"]).union(map(_AUTHOR, added))),
        "photos": [tuple(p) for p in photos],
        "minutes": dict(minutes),
        "first": (posts[0][3], posts[0][0]),
        "last": (posts[-1][3], posts[-1][0]),
        "feed": seqs(newest_indexable(posts)),
        "pages": _grown_pages(before, posts),
        "top": max(before["top"], *map(_ID, added)),
    }


def _count_links(links: dict[str, list], posts: list[Post]) -> None:
    """Count the web links of posts (time order) into links: url -> [count, then where it was
    first seen: time, row id, place in its post]."""
    for post in posts:
        if post[8]:
            for i, url in enumerate(dict.fromkeys(post[8])):
                if url.startswith(_WEB):
                    found = links.get(url)
                    if found is None:
                        links[url] = [1, post[3], post[0], i]
                    else:  # seen before: earlier, unless an earlier tally counted later posts
                        found[0] += 1
                        if [post[3], post[0], i] < found[1:]:
                            found[1:] = [post[3], post[0], i]


def _grown_pages(before: dict, posts: list[Post]) -> list[str] | None:
    """The page digests of a part that only gained posts after its others: the full pages
    before its last one keep theirs."""
    if len(posts) <= paging.PAGE:
        return None
    kept = (before["n"] // paging.PAGE) if before["pages"] else 0
    ids = sorted(map(_ID, posts))
    start = ids[kept * paging.PAGE]
    later = [p for p in posts if p[0] >= start]
    return (before["pages"] or [])[:kept] + [
        seqs(c) for c in paging.cut(by_arrival(later), paging.PAGE)
    ]


def newest_indexable(items: Sequence[Post]) -> list[Post]:
    """The newest FEED_POSTS posts not from a `noindex` account, newest first (read from the end:
    an event's feed looks at 50 posts, not 100,000)."""
    found = []
    for item in reversed(items):
        if not item.noindex:
            found.append(item)
            if len(found) == FEED_POSTS:
                break
    return found


def _photo_posts(posts: Iterable[Post], limit: int) -> list[Post]:
    """The first `limit` posts with a photo that stats.photos shows."""
    found = []
    for post in filter(itemgetter(9), posts):
        if shows_photo(post):
            found.append(post)
            if len(found) == limit:
                break
    return found


def top_links(tallies: Iterable[dict], n: int = 10) -> list[Link]:
    """stats.top_links over the posts of these parts."""
    merged: dict[str, list] = {}
    for found in tallies:
        for url, (count, *first) in found["links"].items():
            held = merged.get(url)
            if held is None:
                merged[url] = [count, first]
            else:
                held[0] += count
                held[1] = min(held[1], first)
    ranked = sorted(merged.items(), key=lambda kv: (-kv[1][0], kv[1][1]))[:n]
    return [Link(url, urlsplit(url).hostname or url, value[0]) for url, value in ranked]


def participants(tallies: Iterable[dict]) -> int:
    """stats.participants over the posts of these parts."""
    found: set[str] = set()
    for one in tallies:
        found.update(one["authors"])
    return len(found)


def first_photos(tallies: Iterable[dict], limit: int) -> list[Photo]:
    """stats.photos(posts, limit) over the posts of these parts (limit <= FIRST_PHOTOS)."""
    rows = sorted((row for one in tallies for row in one["photos"]), key=itemgetter(3, 0))
    return photos(map(Post, rows), limit=limit)


def activity(tallies: Iterable[dict], start: datetime, end: datetime, step: timedelta):
    """pages.activity over the posts of these parts, from their posts per minute; None when the
    buckets do not fall on whole minutes (the caller then counts the posts themselves)."""
    first, last, width = micros(start), micros(end), step // timedelta(microseconds=1)
    if first % MINUTE or last % MINUTE or width % MINUTE or width <= 0:
        return None
    per_minute: Counter = Counter()
    for one in tallies:
        per_minute.update(one["minutes"])
    n = max(1, -(-(last - first) // width))
    counts = [0] * n
    lo, hi = first // MINUTE, last // MINUTE
    for minute, count in per_minute.items():
        if lo <= minute < hi:
            counts[(minute - lo) * MINUTE // width] += count
    return charts.Activity(start, step, tuple(counts))
