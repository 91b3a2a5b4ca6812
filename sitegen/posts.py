"""An event's posts as the site arranges them: a Post is the few fields pages arrange and count by
(time, place, author, links, media, reactions), made from the whole Item once per version; the
whole Item is decoded from the archive only when a page shows it (Store). reader.py reads Posts
from the archive and parts.py keeps them between builds.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from itertools import starmap
from operator import itemgetter
from sys import intern

import sqlite_utils

from core.events import Event, Presentation
from core.items import Item, Media, item_from_dict

from .assign import assign

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TIME_ORDER = itemgetter(3, 0)  # (created_at in microseconds, row id): the archive's order


class Store:
    """Whole Items by row id, for one build: those the build decoded anyway, the rest read from
    the archive when a page first needs them, within the build's one read transaction."""

    def __init__(self, db: sqlite_utils.Database | None) -> None:
        self.db = db
        self.items: dict[int, Item] = {}

    def forget(self) -> None:
        """Let the decoded posts go (a page's or a search block's worth at a time)."""
        self.items.clear()

    def get(self, row_id: int) -> Item:
        item = self.items.get(row_id)
        if item is None:
            row = self.db.execute("SELECT data, seq FROM items WHERE id = ?", [row_id]).fetchone()
            item = self.items[row_id] = decode(row[0], row[1])
        return item

    def whole(self, posts: Iterable[Post]) -> list[Item]:
        """The whole Items of these posts, decoded in one query."""
        posts = list(posts)
        self.load(map(itemgetter(0), posts))
        return [self.get(p[0]) for p in posts]

    def load(self, row_ids: Iterable[int]) -> None:
        """Decode many rows in one query (a feed's worth) before their posts are looked at."""
        wanted = [i for i in row_ids if i not in self.items]
        if wanted and self.db is not None:
            rows = self.db.execute(
                "SELECT id, data, seq FROM items WHERE id IN (SELECT value FROM json_each(?))",
                [json.dumps(wanted)],
            )
            for row_id, data, seq in rows:
                self.items[row_id] = decode(data, seq)


class Post(tuple):
    """One visible post: the cached summary row itself (see `summary`), so that 100,000 of them
    are made in milliseconds. It holds the fields pages arrange by; the whole Item comes from
    the build's Store (Store.get(post.id)), asked for by whoever shows it."""

    __slots__ = ()
    id = property(itemgetter(0))
    seq = property(itemgetter(1))
    version = property(itemgetter(2))
    t = property(itemgetter(3))  # created_at in microseconds since the epoch, for bulk counting
    place = property(itemgetter(4))
    author_id = property(itemgetter(5))
    noindex = property(itemgetter(6))
    sensitive = property(itemgetter(7))
    links = property(itemgetter(8))
    has_media = property(itemgetter(9))  # the raw media rows: empty for most posts
    boosts = property(itemgetter(10))
    likes = property(itemgetter(11))

    @property
    def created_at(self) -> datetime:
        return EPOCH + timedelta(microseconds=self[3])

    @property
    def media(self) -> tuple[Media, ...]:
        return tuple(starmap(Media, self[9])) if self[9] else ()

    @property
    def anchor(self) -> str:
        """Its fragment id (photo strips link to it): kept in the row of a post with media."""
        if not self[13]:
            raise AttributeError(f"{self!r} has no media: its anchor is the whole post's")
        return self[13][0]

    @property
    def by(self) -> str:
        """Who posted it, as photo captions name them (a post with media only)."""
        if not self[13]:
            raise AttributeError(f"{self!r} has no media: its author is the whole post's")
        return self[13][1]

    def __repr__(self) -> str:
        return f"Post({self[0]}, seq={self[1]})"


def micros(value: datetime) -> int:
    """A UTC datetime as Post.t: whole microseconds since the epoch."""
    return (value - EPOCH) // timedelta(microseconds=1)


def decode(data: str, seq: int) -> Item:
    item = item_from_dict(json.loads(data))
    item.extra["seq"] = seq
    return item


def anchor_of(uri: str) -> str:
    """A post's fragment id: derived from its identity, so it never moves when posts are added."""
    return "p-" + hashlib.sha1(uri.encode("utf-8")).hexdigest()[:12]


def summary(row_id: int, seq: int, version: int, item: Item, place: str | None) -> tuple:
    """The cached fields of one row: whether pages may show it at all, and for a post with media
    its anchor and author (photo strips show them without decoding the post). Repeated strings
    are interned, so the cache file stores (and loads) each of them once."""
    media = tuple((m.kind, m.url, m.preview_url, m.alt, m.width, m.height) for m in item.media)
    label = (anchor_of(item.uri), item.author.name or item.author.handle) if media else None
    return (row_id, seq, version, micros(item.created_at), place and intern(place),
            intern(item.author.id), item.author.noindex, item.sensitive,
            tuple(intern(u) for u in item.links), media, item.boosts, item.likes,
            not item.author.hidden, label)  # fmt: skip


def place_of(event: Event, item: Item) -> str | None:
    """ "t:<slug>" for a presentation, "b:<slug>" for a break, None when unplaced."""
    found = assign(event, item)
    if found is None:
        return None
    return f"{'t' if isinstance(found, Presentation) else 'b'}:{found.slug}"


def by_arrival(posts: Iterable[Post]) -> list[Post]:
    """Posts in the order the archive received them (row id): new posts only ever go last."""
    return sorted(posts, key=itemgetter(0))


def seqs(items: Iterable[Post], memo: dict[int, tuple] | None = None) -> str:
    """A digest of the posts' seqs, for page keys: every change has its own seq, so the same
    digest means the same posts in the same versions. (Python's hash of a tuple of ints is the
    same in every process; with the count and sum beside it, two lists that differ are as good
    as never confused.) A list digested once in a build (a talk's posts key its page, its feed
    and its download) is remembered in `memo` (EventData.seqs passes the event's)."""
    if memo is not None and isinstance(items, list):
        found = memo.get(id(items))
        if found is not None and found[0] is items and found[1] == len(items):
            return found[2]
    values = tuple(map(itemgetter(1), items))
    digest = f"{len(values)}:{sum(values)}:{hash(values) & 0xFFFFFFFFFFFFFFFF:x}"
    if memo is not None and isinstance(items, list):
        memo[id(items)] = (items, len(items), digest)
    return digest
