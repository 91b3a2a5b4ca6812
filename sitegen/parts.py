"""An event's visible posts in parts, kept between builds in the build cache, so that a build after
a session reads and writes the posts that session touched, not the whole event.

A part holds the posts of one talk or break, or the rest of one day's span (unplaced posts), in
time order; its name says which ("t:<slug>|<date>", "b:<slug>|<date>", "u:|<date>", "u:|" for
posts outside every day's span). Beside each part is its tally (tallies.py): its seqs digest and
page digests (the keys of its pages), links, authors, first photos, posts per minute. The whole
event is ordered by a few arrays kept with the tallies: every visible row id in arrival order
with the part it is in, the posts with gallery photos and how many, and the digests of each
archive page, gallery page and search block. A build loads a part only when a page it renders
lists that part's posts: pages whose parts are untouched keep their keys without a post read,
and pages over many parts (the event, a day) are made from the tallies.

Files: parts-<event>/meta.marshal (the tallies and arrays, written last) and one marshal file
per part, named by the build that wrote it, with its last TAIL posts beside it (<file>.tail: the
live page, wall, feeds and the event's newest photos read those, not four talks of 18,000 posts);
files no meta names are removed after it is written. A session that only adds posts to a part
appends them to its file as one more marshal record (a talk of 18,000 posts is not written again
for 75 new ones); meta holds each file's length, so bytes after it (an append whose build did not
finish) are never read. The arrays of row ids and their parts are files of their own too
(12 MB at a million posts), appended to when a session only added posts after all the others.
"""

from __future__ import annotations

import marshal
import os
import time
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable
from datetime import datetime
from itertools import accumulate
from operator import itemgetter
from pathlib import Path

from core.errors import AfaError
from core.events import Day, Event

from . import paging, search
from .posts import Post, micros, seqs
from .stats import photo_rows
from .tallies import grown, tally
from .writer import _replace, write_at

FORMAT = 4
TAIL = 1000  # a part's newest posts, in a file of their own: enough for newest(600) (the wall)
APPENDS = 16  # a part file takes this many appended records before it is written whole again
ID, T = itemgetter(0), itemgetter(3)
TIME_ORDER = itemgetter(3, 0)
NONE = "u:"  # the place of a post in no talk or break


class DamagedCache(AfaError):
    """A part file the saved tallies name is missing or unreadable."""


def day_span(event: Event, day: Day) -> tuple[datetime, datetime] | None:
    """From the day's first start to its last end plus grace."""
    spans = [(s.start, s.end) for s in day.sessions] + [(b.start, b.end) for b in day.breaks]
    if not spans:
        return None
    return min(s for s, _ in spans), max(e for _, e in spans) + event.grace


def spans_of(event: Event) -> list[tuple[int, int, str]]:
    """(first, last, date) of each day's span, in microseconds."""
    found = []
    for day in event.days:
        span = day_span(event, day)
        if span is not None:
            found.append((micros(span[0]), micros(span[1]), day.date.isoformat()))
    return found


def part_name(post: tuple, spans: list[tuple[int, int, str]]) -> str:
    t = post[3]
    return f"{post[4] or NONE}|{','.join(d for a, b, d in spans if a <= t < b)}"


def place_of_part(name: str) -> str:
    return name.split("|", 1)[0]


def days_of_part(name: str) -> list[str]:
    days = name.split("|", 1)[1]
    return days.split(",") if days else []


def gallery_count(post: tuple) -> int:
    """How many gallery photos (stats.photo_rows) the post has."""
    return len(photo_rows([post])) if post[9] else 0


class Parts:
    """One event's parts: see the module docstring."""

    def __init__(self, folder: Path, slug: str, key: str, spans: list[tuple[int, int, str]]):
        self.folder = Path(folder) / f"parts-{slug}"
        self.key, self.spans = key, spans
        self.seq, self.state = 0, ""
        self.names: list[str] = []  # part number -> name (numbers in `where`)
        self.tallies: dict[str, dict] = {}
        self.files: dict[str, str] = {}  # part name -> its file in folder
        self.sizes: dict[str, int] = {}  # part name -> the length of its file meta vouches for
        self.ids = array("q")  # every visible row id, ascending (arrival order)
        self.where = array("I")  # the part number of each
        self._arrays: tuple[str, str, int] = ("", "", 0)  # their files, and the entries saved
        self._intact = 0  # how many of the first entries are as saved
        self.photo_ids = array("q")  # the rows with gallery photos, ascending
        self.photo_n = array("I")  # how many each
        self.chunks: list[list] = []  # archive pages: [seqs digest, first post, last post, count]
        self.gallery: list[str] = []  # gallery pages: seqs digest of each page's photos' posts
        self.blocks: dict[int, list] = {}  # search block -> [indexable posts, digest]
        self.loaded: dict[str, list[Post]] = {}
        self._tails: dict[str, list[Post]] = {}
        self.dirty: set[str] = set()  # parts to write
        self.added: dict[str, list[Post]] = {}  # dirty parts that only gained posts: those
        self._records: dict[str, int] = {}  # part name -> marshal records in its file
        self._by_id: dict[str, dict[int, Post]] = {}
        self._places: dict[str, list[Post]] = {}
        self._pages_of: dict[str, dict[int, int]] = {}
        self._newest: dict[tuple, list[Post]] = {}
        self.stale = False  # block digests made since the last save

    # --- reading ---------------------------------------------------------------------------

    @property
    def count(self) -> int:
        return len(self.ids)

    def rows(self, name: str) -> list[Post]:
        """A part's posts in time order (read from its file the first time a build asks)."""
        found = self.loaded.get(name)
        if found is None:
            file = self.files.get(name)
            if file is None:
                found = []
            else:
                records = _records(self.folder / file, self.sizes.get(name))
                self._records[name] = len(records)
                found = list(map(Post, records[0]))
                ordered = True
                for more in records[1:]:
                    if more and found and TIME_ORDER(more[0]) < TIME_ORDER(found[-1]):
                        ordered = False  # a late post: among the others in time
                    found += map(Post, more)
                if not ordered:
                    found.sort(key=TIME_ORDER)
            self.loaded[name] = found
        return found

    def tail(self, name: str) -> list[Post]:
        """A part's last TAIL posts (all of them when it has fewer), time order."""
        found = self.loaded.get(name)
        if found is not None:
            return found[-TAIL:]
        found = self._tails.get(name)
        if found is None:
            file = self.files.get(name)
            try:
                tail = _records(self.folder / f"{file}.tail") if file else [[]]
                found = list(map(Post, tail[0]))
            except DamagedCache:
                return self.rows(name)[-TAIL:]
            self._tails[name] = found
        return found

    def part_names(self, place: str | None = None, day: str | None = None) -> list[str]:
        """The parts of a place (or of the posts in no talk or break: NONE), or in a day's span."""
        return [
            n for n in self.names
            if (place is None or place_of_part(n) == place)
            and (day is None or day in days_of_part(n))
        ]  # fmt: skip

    def place(self, place: str) -> list[Post]:
        """Every post of a talk ("t:slug"), a break ("b:slug") or of none (NONE), time order."""
        found = self._places.get(place)
        if found is None:
            names = self.part_names(place)
            if len(names) == 1:
                found = self.rows(names[0])
            else:
                found = sorted((p for n in names for p in self.rows(n)), key=TIME_ORDER)
            self._places[place] = found
        return found

    def place_tally(self, place: str, field: str):
        """A field of a place's tally (its seqs, pages or feed digest), without reading its
        posts when it is in one part (as a talk's or break's always is)."""
        names = [n for n in self.part_names(place) if self.tallies[n]["n"]]
        if len(names) == 1:
            return self.tallies[names[0]][field]
        if not names:
            return tally([])[field]
        return tally(self.place(place))[field]

    def all(self) -> list[Post]:
        """Every post in time order: reads every part (tools and the benchmark's floor)."""
        return sorted((p for n in self.names for p in self.rows(n)), key=TIME_ORDER)

    def newest(self, n: int, keep: Callable[[Post], bool] | None = None) -> list[Post]:
        """In time order, the last n posts `keep` keeps, and every post at the same time as the
        first of them: the parts are read newest first, until no other can hold a newer one."""
        if n <= 0:
            return []
        memo = (n, keep)
        if memo in self._newest:
            return self._newest[memo]
        order = sorted(
            ((t["last"], name) for name, t in self.tallies.items() if t["n"]), reverse=True
        )
        found: list[Post] = []
        for last, name in order:
            if len(found) >= n and last[0] < found[-n][3]:
                break
            rows = self.tail(name)
            taken, certain = _newest_of(rows, n, keep)
            if not certain and len(rows) < self.tallies[name]["n"]:
                taken = _newest_of(self.rows(name), n, keep)[0]  # the tail ran out: read all
            found += taken
            found.sort(key=TIME_ORDER)
        if found:
            found = found[bisect_left(found, found[-min(n, len(found))][3], key=T) :]
        self._newest[memo] = found
        return found

    def posts_at(self, lo: int, hi: int) -> list[Post]:
        """The posts at arrival positions lo to hi."""
        names = self.names
        return [self._find(names[number], row_id)
                for row_id, number in zip(self.ids[lo:hi], self.where[lo:hi], strict=True)]  # fmt: skip

    def position(self, row_id: int) -> int:
        """A visible row's place in arrival order."""
        return bisect_left(self.ids, row_id)

    def chunk_posts(self, n: int) -> list[Post]:
        """Archive page n's posts (from 1), in time order."""
        size = paging.ARCHIVE_PAGE
        return sorted(self.posts_at((n - 1) * size, n * size), key=T)

    def gallery_rows(self, n: int) -> list[tuple[Post, tuple]]:
        """Gallery page n's photo rows (post, media row), in time order."""
        size = paging.GALLERY_PAGE
        rows = self._photo_rows((n - 1) * size, n * size)
        return paging.cut(rows, size, key=_post_time)[0] if rows else []

    def _photo_rows(self, lo: int, hi: int) -> list[tuple[Post, tuple]]:
        """The gallery's photo rows lo to hi, in arrival order."""
        ends = list(accumulate(self.photo_n))  # photo rows up to and including each post
        first = bisect_left(ends, lo + 1)
        last = bisect_left(ends, hi)
        rows = []
        for k in range(first, min(last + 1, len(ends))):
            pos = self.position(self.photo_ids[k])
            rows += photo_rows(self.posts_at(pos, pos + 1))
        skip = lo - (ends[first - 1] if first else 0)
        return rows[skip : skip + hi - lo]

    def pages_of(self, place: str) -> dict[int, int]:
        """Row id -> its page of its talk or break, for the posts after a first page."""
        found = self._pages_of.get(place)
        if found is None:
            posts = self.place(place)
            found = {}
            if place != NONE and len(posts) > paging.PAGE:  # pages are slices in arrival order
                size = paging.PAGE
                ids = sorted(map(ID, posts))
                found = {ids[k]: k // size + 1 for k in range(size, len(ids))}
            self._pages_of[place] = found
        return found

    def block_posts(self, block: int) -> list[Post]:
        """The posts search may show (not from `noindex` accounts) in one block, by row id."""
        lo = bisect_left(self.ids, block * search.BLOCK)
        hi = bisect_left(self.ids, (block + 1) * search.BLOCK)
        return [p for p in self.posts_at(lo, hi) if not p[6]]

    def block_pages(self, posts: Iterable[Post]) -> list[int]:
        """The page of its talk or break each post is on (1 for every other post)."""
        out = []
        for post in posts:
            out.append(self.pages_of(post[4] or NONE).get(post[0], 1))
        return out

    # --- the saved state ------------------------------------------------------------------

    def load(self) -> bool:
        """The saved parts of this event and key; False when there are none (or another key's)."""
        try:
            data = marshal.loads((self.folder / "meta.marshal").read_bytes())
        except (OSError, ValueError, EOFError, TypeError):
            return False
        if not isinstance(data, dict) or data.get("format") != FORMAT or data["key"] != self.key:
            return False
        if any(not (self.folder / f).is_file() for f in data["files"].values()):
            return False
        self.seq, self.state, self.names = data["seq"], data["state"], data["names"]
        self.tallies, self.files, self.sizes = data["tallies"], data["files"], data["sizes"]
        ids_file, where_file, count = self._arrays = data["arrays"]
        for file, values in ((ids_file, self.ids), (where_file, self.where)):
            try:
                values.frombytes((self.folder / file).read_bytes()[: count * values.itemsize])
            except (OSError, ValueError) as exc:
                raise DamagedCache(f"{self.folder / file}: {exc}") from exc
            if len(values) != count:
                raise DamagedCache(f"{self.folder / file}: {len(values)} entries, not {count}")
        self._intact = count
        self.photo_ids.frombytes(data["photo_ids"])
        self.photo_n.frombytes(data["photo_n"])
        self.chunks, self.gallery, self.blocks = data["chunks"], data["gallery"], data["blocks"]
        return True

    def save(self) -> None:
        """Write the parts changed since loading, then the tallies and arrays, then remove the
        files no longer named."""
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = time.time_ns()
        for k, name in enumerate(sorted(self.dirty)):
            rows = self.rows(name)
            file = self.files.get(name)
            if not self._appended_to(name, file):
                file = f"{stamp}-{k}.marshal"
                whole = _record(rows)
                _replace(self.folder / file, whole)
                self.files[name], self.sizes[name], self._records[name] = file, len(whole), 1
            _replace(self.folder / f"{file}.tail", _record(rows[-TAIL:]))
            self._tails.pop(name, None)
        self.dirty.clear()
        self.added.clear()
        self._save_arrays(stamp)
        data = {
            "format": FORMAT, "key": self.key, "seq": self.seq, "state": self.state,
            "names": self.names, "tallies": self.tallies, "files": self.files, "sizes": self.sizes,
            "arrays": self._arrays,
            "photo_ids": self.photo_ids.tobytes(), "photo_n": self.photo_n.tobytes(),
            "chunks": self.chunks, "gallery": self.gallery, "blocks": self.blocks,
        }  # fmt: skip
        _replace(self.folder / "meta.marshal", marshal.dumps(data))
        self.stale = False
        named = {*self.files.values(), *(f"{f}.tail" for f in self.files.values()),
                 *self._arrays[:2], "meta.marshal"}  # fmt: skip
        for entry in os.scandir(self.folder):
            if entry.name not in named:
                os.unlink(entry.path)

    def _save_arrays(self, stamp: int) -> None:
        """Append the entries added after all the saved ones to the arrays' files; write new
        files when an entry the saved meta vouches for changed (a crash then leaves the old)."""
        ids_file, where_file, count = self._arrays
        if ids_file and self._intact >= count and self._append(ids_file, self.ids, count):
            if self._append(where_file, self.where, count):
                self._arrays = (ids_file, where_file, len(self.ids))
                self._intact = len(self.ids)
                return
        ids_file, where_file = f"{stamp}-ids.bin", f"{stamp}-where.bin"
        _replace(self.folder / ids_file, self.ids.tobytes())
        _replace(self.folder / where_file, self.where.tobytes())
        self._arrays = (ids_file, where_file, len(self.ids))
        self._intact = len(self.ids)

    def _append(self, file: str, values: array, count: int) -> bool:
        return write_at(self.folder / file, count * values.itemsize, [values[count:].tobytes()])

    def _appended_to(self, name: str, file: str | None) -> bool:
        """Append a part's added posts to its file, when that is all that changed and the file
        is as meta left it; False when the part must be written whole."""
        added = self.added.get(name)
        size = self.sizes.get(name)
        if (
            added is None
            or file is None
            or size is None
            or self._records.get(name, APPENDS) >= APPENDS
        ):
            return False
        if not write_at(self.folder / file, size, [record := _record(added)]):
            return False
        self.sizes[name] = size + len(record)
        self._records[name] += 1
        return True

    # --- filling and changing ---------------------------------------------------------------

    def fill(self, posts: list[Post], seq: int, state: str) -> None:
        """Every visible post (time order), as read whole from the archive."""
        self.files, self.sizes, self._intact = {}, {}, 0  # every file written anew
        groups: dict[str, list[Post]] = {}
        number: dict[int, str] = {}
        spans = self.spans
        for post in posts:
            name = part_name(post, spans)
            found = groups.get(name)
            if found is None:
                found = groups[name] = []
            found.append(post)
            number[post[0]] = name
        self.names = sorted(groups)
        index = {name: k for k, name in enumerate(self.names)}
        self.loaded, self.dirty, self.added = groups, set(groups), {}
        self.tallies = {name: tally(rows) for name, rows in groups.items()}
        arrival = sorted(posts, key=ID)
        self.ids = array("q", map(ID, arrival))
        self.where = array("I", (index[number[i]] for i in self.ids))
        counts = [gallery_count(p) for p in arrival]
        self.photo_ids = array("q", (p[0] for p, c in zip(arrival, counts, strict=True) if c))
        self.photo_n = array("I", (c for c in counts if c))
        self.chunks = []
        self._chunks_from(0)
        self.gallery = []
        self._gallery_from(0)
        self.blocks = {}
        for post in arrival:
            if not post[6]:
                found = self.blocks.setdefault(search.block_of(post[0]), [0, ""])
                found[0] += 1
        self._digest_blocks(set(self.blocks))
        self.seq, self.state = seq, state

    def apply(self, changed: dict[int, Post | None], seq: int, state: str) -> None:
        """Rows read again since the saved state: a Post, or None for a row no longer shown."""
        old: dict[int, Post] = {}
        touched: dict[str, None] = {}
        changed_in: set[str] = set()  # parts where a post already there changed or went
        for row_id in changed:
            pos = self.position(row_id)
            if pos < len(self.ids) and self.ids[pos] == row_id:
                name = self.names[self.where[pos]]
                touched[name] = None
                old[row_id] = self._find(name, row_id)
                changed_in.add(name)
        fresh: dict[str, list[Post]] = {}
        for post in changed.values():
            if post is not None:
                fresh.setdefault(part_name(post, self.spans), []).append(post)
                touched[part_name(post, self.spans)] = None
        before = {}  # the pages of the posts of each place where posts may move between pages
        for place in {place_of_part(name) for name in touched} - {NONE}:
            if not self._appended(place, old, fresh):
                before[place] = self.pages_of(place)
        for name in touched:
            if name not in self.tallies:
                self.names.append(name)
            if name in changed_in or (name in self.dirty and name not in self.added):
                self.added.pop(name, None)  # a post in it changed or went: written whole
            else:
                self.added.setdefault(name, []).extend(fresh.get(name, []))
            rows = [p for p in self.rows(name) if p[0] not in changed] + fresh.get(name, [])
            rows.sort(key=TIME_ORDER)
            counted = None
            if name not in changed_in and name in self.tallies:
                counted = grown(self.tallies[name], rows, fresh.get(name, []))
            self.loaded[name], self.tallies[name] = rows, counted or tally(rows)
            self._by_id.pop(name, None)
            self.dirty.add(name)
        self._places.clear()
        self._pages_of.clear()
        self._newest.clear()
        moved = set()
        for place, pages in before.items():
            now = self.pages_of(place)
            moved.update(i for i in pages.keys() | now.keys() if pages.get(i, 1) != now.get(i, 1))
        self._move(changed, old)
        dirty_blocks = {search.block_of(i) for i in [*changed, *moved]}
        for row_id, post in old.items():
            if not post[6]:
                self.blocks[search.block_of(row_id)][0] -= 1
        for post in changed.values():
            if post is not None and not post[6]:
                self.blocks.setdefault(search.block_of(post[0]), [0, ""])[0] += 1
        self._digest_blocks(dirty_blocks)
        self.seq, self.state = seq, state

    def _appended(self, place: str, old: dict[int, Post], fresh: dict[str, list[Post]]) -> bool:
        """Whether the change only adds posts after every post of the place in arrival order
        (a session's new posts): then no post already there moves to another page."""
        if any((p[4] or NONE) == place for p in old.values()):
            return False
        rows = [self.rows(n) for n in self.part_names(place)]
        newest = max((max(map(ID, r)) for r in rows if r), default=0)
        added = [p for name, posts in fresh.items() if place_of_part(name) == place for p in posts]
        return all(p[0] > newest for p in added)

    def _find(self, name: str, row_id: int) -> Post:
        by_id = self._by_id.get(name)
        if by_id is None:
            by_id = self._by_id[name] = {p[0]: p for p in self.rows(name)}
        return by_id[row_id]

    def _move(self, changed: dict[int, Post | None], old: dict[int, Post]) -> None:
        """The arrays after the change, and the archive and gallery pages from the first
        position it moved (or the pages of posts changed in place)."""
        index = {name: k for k, name in enumerate(self.names)}
        gone = sorted(i for i in old if changed[i] is None)
        added = sorted(i for i, p in changed.items() if p is not None and i not in old)
        shift = len(self.ids)
        if gone:
            shift = self.position(gone[0])
            self.ids, self.where = _without(self.ids, self.where, gone, self.position)
            self._intact = min(self._intact, shift)
        for row_id in added:
            pos = self.position(row_id)
            shift = min(shift, pos)
            self._intact = min(self._intact, pos)
            name = part_name(changed[row_id], self.spans)
            self.ids.insert(pos, row_id)
            self.where.insert(pos, index[name])
        edited = set()
        for row_id, post in changed.items():
            if post is not None and row_id in old:
                pos = self.position(row_id)
                if self.where[pos] != index[part_name(post, self.spans)]:
                    self.where[pos] = index[part_name(post, self.spans)]
                    self._intact = min(self._intact, pos)
                edited.add(pos // paging.ARCHIVE_PAGE)
        self._by_id.clear()
        size = paging.ARCHIVE_PAGE
        moved = shift // size if gone or added else len(self.chunks)
        for n in sorted(edited):
            if n < moved:
                self.chunks[n] = _chunk(self.posts_at(n * size, (n + 1) * size))
        if gone or added:
            self._chunks_from(moved)
        photo_before = {i: gallery_count(p) for i, p in old.items()}
        photo_after = {i: gallery_count(p) for i, p in changed.items() if p is not None}
        touched = sorted(i for i in changed if photo_before.get(i, 0) or photo_after.get(i, 0))
        if touched:
            rows_before = sum(self.photo_n[: bisect_left(self.photo_ids, touched[0])])
            for row_id in touched:  # a session's photos go last: appended, nothing moved
                pos = bisect_left(self.photo_ids, row_id)
                there = pos < len(self.photo_ids) and self.photo_ids[pos] == row_id
                n = photo_after.get(row_id, 0)
                if there and n:
                    self.photo_n[pos] = n
                elif there:
                    del self.photo_ids[pos]
                    del self.photo_n[pos]
                elif n:
                    self.photo_ids.insert(pos, row_id)
                    self.photo_n.insert(pos, n)
            self._gallery_from(rows_before // paging.GALLERY_PAGE)

    def _chunks_from(self, first: int) -> None:
        """Archive pages' digests and ends from page `first` (from 0) on."""
        size = paging.ARCHIVE_PAGE
        del self.chunks[first:]
        for n in range(first, -(-len(self.ids) // size)):
            self.chunks.append(_chunk(self.posts_at(n * size, (n + 1) * size)))

    def _gallery_from(self, first: int) -> None:
        """Gallery pages' digests from page `first` (from 0) on."""
        size = paging.GALLERY_PAGE
        del self.gallery[first:]
        rows = self._photo_rows(first * size, sum(self.photo_n))
        for chunk in paging.cut(rows, size, key=_post_time):
            self.gallery.append(seqs([row[0] for row in chunk]))

    def _digest_blocks(self, blocks: set[int]) -> None:
        """Forget the digests of these blocks (block_digest makes them again when search asks)."""
        for block in blocks:
            found = self.blocks.get(block)
            if found is not None and found[0] <= 0:
                del self.blocks[block]
            elif found is not None:
                found[1] = ""

    def block_digest(self, block: int) -> str:
        """What a block's search records are made from: its posts' seqs and their pages (made
        when search first asks after the block changed, then saved with the parts)."""
        found = self.blocks[block]
        if not found[1]:
            posts = self.block_posts(block)
            found[1] = f"{seqs(posts)}/{hash(tuple(self.block_pages(posts))) & 0xFFFFFFFF:x}"
            self.stale = True
        return found[1]


def _record(rows: list[Post]) -> bytes:
    """One record of a part file: its length, then the posts as one marshal'd list."""
    data = marshal.dumps([tuple(p) for p in rows])
    return len(data).to_bytes(8, "little") + data


def _records(path: Path, size: int | None = None) -> list[list]:
    """The records of a part file (_record), up to `size` bytes (all of it when None)."""
    try:
        data = path.read_bytes()
        if size is not None:
            if len(data) < size:
                raise EOFError(f"{len(data)} bytes, not {size}")
        end, at, view, found = len(data) if size is None else size, 0, memoryview(data), []
        while at < end:
            length = int.from_bytes(view[at : at + 8], "little")
            if length <= 0 or at + 8 + length > end:
                raise EOFError(f"a record of {length} bytes at {at}")
            record = marshal.loads(view[at + 8 : at + 8 + length])
            if not isinstance(record, list):
                raise TypeError("not a list of posts")
            found.append(record)
            at += 8 + length
        return found or [[]]
    except (OSError, ValueError, EOFError, TypeError) as exc:
        raise DamagedCache(f"{path}: {exc}") from exc


def _newest_of(
    rows: list[Post], n: int, keep: Callable[[Post], bool] | None
) -> tuple[list[Post], bool]:
    """Newest first, the last n posts of rows (time order) `keep` keeps and the posts at the
    same time as the nth; and whether that is certain before the start of rows."""
    taken: list[Post] = []
    for post in reversed(rows):
        if len(taken) >= n and post[3] < taken[n - 1][3]:
            return taken, True
        if keep is None or keep(post):
            taken.append(post)
    return taken, False


def _chunk(posts: list[Post]) -> list:
    posts = sorted(posts, key=T)
    return [seqs(posts), tuple(posts[0]), tuple(posts[-1]), len(posts)]


def _post_time(row: tuple[Post, tuple]) -> int:
    """A photo row's place in time: its post's (a stable sort keeps ties in arrival order)."""
    return row[0][3]


def _without(ids: array, where: array, gone: list[int], position) -> tuple[array, array]:
    """The arrays less the rows in `gone` (ascending, each present)."""
    new_ids, new_where, start = array("q"), array("I"), 0
    for row_id in gone:
        pos = position(row_id)
        new_ids += ids[start:pos]
        new_where += where[start:pos]
        start = pos + 1
    new_ids += ids[start:]
    new_where += where[start:]
    return new_ids, new_where
