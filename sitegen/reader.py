"""Read an event's visible posts from the archive into its parts (parts.py), reading only what
changed since the last build.

The parts are saved with the archive state they reflect: the position in the archive's item_log
(core.archive m008), where triggers number every write to an item row, whoever made it (the
collector, moderation, a count refresh, an UPDATE in the sqlite3 shell). The next build reads
just the rows written after that position, and tells that nothing changed from one indexed
look-up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from operator import itemgetter
from pathlib import Path

from core.archive import archive_state, item_rows, last_seq, logged_items, rows_by_id
from core.events import Event
from core.items import Item

from . import render_pool
from .parts import Parts, spans_of
from .posts import TIME_ORDER, Post, Store, decode, place_of, summary

DELTA_LIMIT = 20_000  # more changed rows than this: read the event whole instead
Decoded = Callable[[int, Item], None]  # (row id, whole post): told of each post read
Many = Callable[[Iterator[tuple]], Iterable[tuple]]  # rows (id, data, seq, version) -> summaries
VISIBLE = itemgetter(12)


class EventPosts:
    """Reads one event's visible posts into its Parts; see the module docstring."""

    def __init__(
        self,
        store: Store,
        event: Event,
        folder: Path,
        key: str,
        decoded: Decoded | None = None,
        many: Many | None = None,
    ) -> None:
        self.db, self.event = store.db, event
        self.decoded = decoded or (lambda row_id, item: None)
        self.many = many  # summarises (and tells `decoded`'s owner of) many rows at once
        self.parts = Parts(folder, event.slug, key, spans_of(event))
        self.how = ""  # "cached", "delta" or "whole", for the build's log
        self.gone: list[int] = []  # rows pages may have shown and show no more

    def read(self, state: str | None = None) -> tuple[Parts, int]:
        """(the parts, the last seq they reflect); `state` is archive_state, if known."""
        slug = self.event.slug
        seq, state = last_seq(self.db, slug), state or archive_state(self.db, slug)
        parts = self.parts
        if parts.load():
            if parts.state == state:
                self.how = "cached"
                return parts, seq
            if self._delta(seq, state):
                self.how = "delta"
                parts.save()
                return parts, seq
            before = set(parts.ids)
            self.parts = parts = Parts(parts.folder.parent, slug, parts.key, parts.spans)
        else:
            before = set()
        posts = self._whole()
        parts.fill(posts, seq, state)
        parts.save()
        self.gone = sorted(before - set(parts.ids))
        self.how = "whole"
        return parts, seq

    def _delta(self, seq: int, state: str) -> bool:
        """Apply the rows written since the saved state; False when there are too many, or when
        the archive's log is behind the saved position (an archive restored from an older
        copy)."""
        before, now = int(self.parts.state.split("/")[0]), int(state.split("/")[0])
        ids = logged_items(self.db, self.event.slug, before, DELTA_LIMIT) if now >= before else None
        if ids is None:
            return False
        fresh: dict[int, Post | None] = dict.fromkeys(ids)  # a row no longer there is gone
        for row in rows_by_id(self.db, self.event.slug, ids):
            if row[4] == "visible":
                post = Post(self._summary(*row[:4]))
                fresh[row[0]] = post if post[12] else None
        self.gone = [i for i, post in fresh.items() if post is None]
        self.parts.apply(fresh, seq, state)
        return True

    def _whole(self) -> list[Post]:
        """Every visible post; past render_pool.POOL_MIN rows, `many` summarises the rest."""
        rows = (row[:4] for row in item_rows(self.db, self.event.slug))
        found = [self._summary(*row) for row in islice(rows, render_pool.POOL_MIN)]
        if len(found) == render_pool.POOL_MIN and self.many is not None:
            found += self.many(rows)
        else:
            found += [self._summary(*row) for row in rows]
        return list(map(Post, sorted(filter(VISIBLE, found), key=TIME_ORDER)))

    def _summary(self, row_id: int, data: str, seq: int, version: int) -> tuple:
        """The row's summary; the whole post goes to `decoded` (the build renders what it shows
        there and then) and is not kept: a full build holds summaries, not a million posts."""
        item = decode(data, seq)
        if not item.author.hidden:
            self.decoded(row_id, item)
        return summary(row_id, seq, version, item, place_of(self.event, item))
