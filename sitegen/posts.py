"""Read an event's posts from the archive, reading only what changed since the last build.

A Post carries the few fields pages arrange and count by (time, place, author, links, media,
reactions); the whole Item is decoded from the archive only when a page shows it. The fields of
every visible post are kept in the build cache (cache.cache_dir: posts-<event>.marshal) with
the archive state they reflect: the position in the archive's item_log (core.archive m008), where
triggers number every write to an item row, whoever made it (the collector, moderation, a count
refresh, an UPDATE in the sqlite3 shell). The next build reads just the rows written after that
position, and tells that nothing changed from one indexed look-up.
"""

from __future__ import annotations

import hashlib
import json
import marshal
import time
from bisect import insort
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from itertools import starmap
from operator import itemgetter
from pathlib import Path
from sys import intern

import sqlite_utils

from core.archive import archive_state, item_rows, last_seq, logged_items, rows_by_id
from core.events import Event, Presentation
from core.items import Item, Media, item_from_dict

from .assign import Assignment, assign
from .writer import _replace

FORMAT = 6
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DELTA_LIMIT = 20_000  # more changed rows than this: read the event whole instead
JOURNAL_LIMIT = 20_000  # more rows changed since the base than this: write a new base
MERGE_LIMIT = 2_000  # changed rows inserted one by one; more are sorted in
Decoded = Callable[[int, Item], None]  # (row id, whole post): told of each post read
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


def assignment_of(event: Event, posts: Iterable[Post]) -> Assignment:
    """assign.assign_all's result, from the places the posts carry."""
    result = Assignment(
        talks={p.slug: [] for p in event.presentations},
        breaks={b.slug: [] for b in event.breaks},
    )
    lists = {f"t:{slug}": found for slug, found in result.talks.items()}
    lists.update({f"b:{slug}": found for slug, found in result.breaks.items()})
    unplaced = result.unplaced
    for post in posts:
        lists.get(post[4], unplaced).append(post)
    return result


class EventPosts:
    """Reads one event's visible posts into Posts, oldest first; see the module docstring.

    The cache is two files: a base (every row, written when the event is read whole) and a
    journal (the rows changed since the base, keyed by row id; None for a row gone), so a build
    after a session writes the few rows it read, not all of them. Past JOURNAL_LIMIT changed rows
    the journal is folded into a new base."""

    def __init__(
        self, store: Store, event: Event, folder: Path, key: str, decoded: Decoded | None = None
    ) -> None:
        self.db, self.event, self.key, self.store = store.db, event, key, store
        self.decoded = decoded or (lambda row_id, item: None)
        self.base_path = Path(folder) / f"posts-{event.slug}.marshal"
        self.journal_path = self.base_path.with_suffix(".journal")
        self.how = ""  # "cached", "delta" or "whole", for the build's log
        self.gone: list[int] = []  # rows pages showed before and show no more (deleted, hidden)

    def read(self, state: str | None = None) -> tuple[list[Post], int]:
        """(posts oldest first, the last seq they reflect); `state` is archive_state, if known."""
        slug = self.event.slug
        seq, state = last_seq(self.db, slug), state or archive_state(self.db, slug)
        saved = self._load()
        rows: list[tuple] | None = None
        if saved is not None and saved["state"] == state:
            rows, self.how = merged(saved["rows"], saved["changed"])[0], "cached"
        elif saved is not None:
            rows, self.how = self._delta(saved, seq, state), "delta"
        if rows is None:
            rows, self.how = self._whole(), "whole"
            self._save_base(seq, state, rows)
            if saved is not None:
                before = {r[0] for r in saved["rows"]} | saved["changed"].keys()
                self.gone = sorted(before - {r[0] for r in rows if r[12]})
        return list(map(Post, filter(itemgetter(12), rows))), seq

    def _load(self) -> dict | None:
        """The saved base rows, the journal's changes to them, and the seq and state they reflect
        together (the caller merges the two once)."""
        base = _read(self.base_path)
        if base is None or base.get("format") != FORMAT or base["key"] != self.key:
            return None
        journal = _read(self.journal_path)
        if journal is None or journal.get("base") != base["token"]:
            return {**base, "changed": {}}
        return {**base, "changed": journal["changed"], "seq": journal["seq"],
                "state": journal["state"]}  # fmt: skip

    def _save_base(self, seq: int, state: str, rows: list[tuple]) -> None:
        token = f"{seq}/{state}/{time.time_ns()}"
        data = {"format": FORMAT, "key": self.key, "token": token, "seq": seq, "state": state,
                "rows": rows}  # fmt: skip
        _replace(self.base_path, marshal.dumps(data))
        self.journal_path.unlink(missing_ok=True)

    def _delta(self, saved: dict, seq: int, state: str) -> list[tuple] | None:
        """The saved rows with the rows written since read again; None when there are too many,
        or when the archive's log is behind the saved position (an archive restored from an
        older copy)."""
        before, now = int(saved["state"].split("/")[0]), int(state.split("/")[0])
        ids = logged_items(self.db, self.event.slug, before, DELTA_LIMIT) if now >= before else None
        if ids is None:
            return None
        fresh: dict[int, tuple | None] = dict.fromkeys(ids)  # a row no longer there is gone
        for row in rows_by_id(self.db, self.event.slug, ids):
            fresh[row[0]] = self._summary(*row[:4]) if row[4] == "visible" else None
        self.gone = [i for i, row in fresh.items() if row is None or not row[12]]
        changed = {**saved["changed"], **fresh}
        rows, _ = merged(saved["rows"], changed)
        if len(changed) > JOURNAL_LIMIT:
            self._save_base(seq, state, rows)
        else:
            journal = {"base": saved["token"], "seq": seq, "state": state, "changed": changed}
            _replace(self.journal_path, marshal.dumps(journal))
        return rows

    def _whole(self) -> list[tuple]:
        rows = [
            self._summary(row_id, data, seq, version)
            for row_id, data, seq, version, _ in item_rows(self.db, self.event.slug)
        ]
        return sorted(rows, key=TIME_ORDER)

    def _summary(self, row_id: int, data: str, seq: int, version: int) -> tuple:
        """The row's summary; the whole post goes to `decoded` (the build renders what it shows
        there and then) and is not kept: a full build holds summaries, not a million posts."""
        item = decode(data, seq)
        if not item.author.hidden:
            self.decoded(row_id, item)
        return summary(row_id, seq, version, item, place_of(self.event, item))


def merged(rows: list[tuple], changed: dict[int, tuple | None]) -> tuple[list[tuple], list[tuple]]:
    """(rows (in TIME_ORDER) with the changed ones (by row id; None for a row gone) put in their
    places, the rows they replaced): a few hundred rows are inserted by bisection, more are sorted
    in with the rest."""
    if not changed:
        return rows, []
    removed = [r for r in rows if r[0] in changed]
    if removed:
        rows = [r for r in rows if r[0] not in changed]
    else:
        rows = list(rows)
    fresh = [r for r in changed.values() if r is not None]
    if len(fresh) > MERGE_LIMIT:
        rows += fresh
        rows.sort(key=TIME_ORDER)
        return rows, removed
    for row in sorted(fresh, key=TIME_ORDER):
        insort(rows, row, key=TIME_ORDER)
    return rows, removed


def _read(path: Path) -> dict | None:
    try:
        found = marshal.loads(path.read_bytes())
    except (OSError, ValueError, EOFError, TypeError):
        return None
    return found if isinstance(found, dict) else None


def by_arrival(posts: Iterable[Post]) -> list[Post]:
    """Posts in the order the archive received them (row id): new posts only ever go last."""
    return sorted(posts, key=itemgetter(0))
