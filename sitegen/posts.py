"""Read an event's posts from the archive, reading only what changed since the last build.

A Post carries the few fields pages arrange and count by (time, place, author, links, media,
reactions); the whole Item is decoded from the archive only when a page shows it. The fields of
every visible post are kept in the build cache (output/.build-cache/posts-<event>.marshal) with
the sequence number and the archive state they reflect, so the next build reads just the rows
named in `changes` after that sequence. Before it trusts the result, the reader checks it against
the archive's own fingerprint (count, seqs, versions, ids): a change made without a sequence
number (say, moderation straight in SQLite) makes the two disagree, and the posts are read whole.
"""

from __future__ import annotations

import hashlib
import json
import marshal
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils

from core.archive import archive_state, changed_uris, item_rows, last_seq
from core.events import Event, Presentation
from core.items import Item, Media, item_from_dict

from .assign import Assignment, assign
from .writer import CACHE_DIR, _replace

FORMAT = 1
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DELTA_LIMIT = 20_000  # more changed rows than this: read the event whole instead


class Store:
    """Decodes whole Items by row id within the build's one read transaction."""

    def __init__(self, db: sqlite_utils.Database | None) -> None:
        self.db = db

    def load(self, row_id: int) -> Item:
        row = self.db.execute("SELECT data, seq FROM items WHERE id = ?", [row_id]).fetchone()
        return decode(row[0], row[1])


class Post:
    """One visible post: its summary fields here, everything else from the decoded Item."""

    __slots__ = ("id", "seq", "version", "created_at", "anchor", "place", "author_id", "noindex",
                 "sensitive", "links", "media", "boosts", "likes", "_item", "_store")  # fmt: skip

    def __init__(self, row: tuple, store: Store, item: Item | None = None) -> None:
        (self.id, self.seq, self.version, micros, self.anchor, self.place, self.author_id,
         self.noindex, self.sensitive, self.links, media, self.boosts, self.likes, _) = row  # fmt: skip
        self.created_at = EPOCH + timedelta(microseconds=micros)
        self.media = tuple(Media(*m) for m in media) if media else ()
        self._item = item
        self._store = store

    @property
    def item(self) -> Item:
        if self._item is None:
            self._item = self._store.load(self.id)
        return self._item

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.item, name)

    def __repr__(self) -> str:
        return f"Post({self.id}, seq={self.seq})"


def decode(data: str, seq: int) -> Item:
    item = item_from_dict(json.loads(data))
    item.extra["seq"] = seq
    return item


def anchor_of(uri: str) -> str:
    """A post's fragment id: derived from its identity, so it never moves when posts are added."""
    return "p-" + hashlib.sha1(uri.encode("utf-8")).hexdigest()[:12]


def summary(row_id: int, seq: int, version: int, item: Item, place: str | None) -> tuple:
    """The cached fields of one row; the last says whether pages may show it at all."""
    media = tuple((m.kind, m.url, m.preview_url, m.alt, m.width, m.height) for m in item.media)
    micros = (item.created_at - EPOCH) // timedelta(microseconds=1)
    return (row_id, seq, version, micros, anchor_of(item.uri), place, item.author.id,
            item.author.noindex, item.sensitive, item.links, media, item.boosts, item.likes,
            not item.author.hidden)  # fmt: skip


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
    talks, breaks = result.talks, result.breaks
    for post in posts:
        place = post.place
        if place is None:
            result.unplaced.append(post)
        elif place[0] == "t":
            talks[place[2:]].append(post)
        else:
            breaks[place[2:]].append(post)
    return result


class EventPosts:
    """Reads one event's visible posts into Posts, oldest first; see the module docstring."""

    def __init__(self, db: sqlite_utils.Database, event: Event, output: Path, key: str) -> None:
        self.db, self.event, self.key = db, event, key
        self.path = Path(output) / CACHE_DIR / f"posts-{event.slug}.marshal"
        self.store = Store(db)
        self.how = ""  # "cached", "delta" or "whole", for the build's log

    def read(self) -> tuple[list[Post], int]:
        seq, state = last_seq(self.db, self.event.slug), archive_state(self.db, self.event.slug)
        saved = self._load()
        rows: dict[int, tuple] | None = None
        items: dict[int, Item] = {}
        if saved is not None and saved["state"] == state:
            rows, self.how = saved["rows"], "cached"
        elif saved is not None:
            rows = self._delta(saved, items)
            if rows is not None and not _matches(rows, state):
                rows = None
            self.how = "delta"
        if rows is None:
            (rows, items), self.how = self._whole(), "whole"
        if saved is None or saved["state"] != state or self.how == "whole":
            self._save(seq, state, rows)
        ordered = sorted((r for r in rows.values() if r[-1]), key=lambda r: (r[3], r[0]))
        return [Post(r, self.store, items.get(r[0])) for r in ordered], seq

    def _load(self) -> dict | None:
        try:
            saved = marshal.loads(self.path.read_bytes())
        except (OSError, ValueError, EOFError, TypeError):
            return None
        if not isinstance(saved, dict) or saved.get("format") != FORMAT or saved["key"] != self.key:
            return None
        saved["rows"] = {r[0]: r for r in saved["rows"]}
        return saved

    def _save(self, seq: int, state: str, rows: dict[int, tuple]) -> None:
        data = {"format": FORMAT, "key": self.key, "seq": seq, "state": state,
                "rows": sorted(rows.values(), key=lambda r: (r[3], r[0]))}  # fmt: skip
        _replace(self.path, marshal.dumps(data))

    def _delta(self, saved: dict, items: dict[int, Item]) -> dict[int, tuple] | None:
        uris = changed_uris(self.db, self.event.slug, saved["seq"], DELTA_LIMIT)
        if uris is None:
            return None
        rows = dict(saved["rows"])
        for row_id, data, seq, version, status in item_rows(self.db, self.event.slug, uris):
            rows.pop(row_id, None)
            if status == "visible":
                item = decode(data, seq)
                rows[row_id] = summary(row_id, seq, version, item, place_of(self.event, item))
                items[row_id] = item
        return rows

    def _whole(self) -> tuple[dict[int, tuple], dict[int, Item]]:
        rows, items = {}, {}
        for row_id, data, seq, version, _ in item_rows(self.db, self.event.slug):
            item = items[row_id] = decode(data, seq)
            rows[row_id] = summary(row_id, seq, version, item, place_of(self.event, item))
        return rows, items


def _matches(rows: dict[int, tuple], state: str) -> bool:
    """The rows add up to the archive's fingerprint of the event (core.archive.archive_state)."""
    count, top, total, versions, last_id = state.split("/")[:5]
    seqs = [r[1] for r in rows.values()]
    return (
        len(rows) == int(count)
        and max(seqs, default=0) == int(top)
        and float(sum(seqs)) == float(total)
        and float(sum(r[2] for r in rows.values())) == float(versions)
        and max(rows, default=0) == int(last_id)
    )


def by_arrival(posts: Iterable[Post]) -> list[Post]:
    """Posts in the order the archive received them (row id): new posts only ever go last."""
    return sorted(posts, key=lambda p: p.id)
