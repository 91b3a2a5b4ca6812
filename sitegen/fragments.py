"""What one post renders to, kept between builds: its HTML (the `post` macro of _post.html) and its
JSON Lines line, keyed by row id and seq (any edit gives a new seq), with the records of the
large downloads' kept files (kept.py). A page lists posts by joining these, so a talk page with
2,000 posts costs 2,000 look-ups, not 2,000 renders, and a post shown on a talk page and an
archive page is rendered once.

It is a SQLite file in the build's cache folder (cache.cache_dir), emptied when sitegen's code changes (the same
digest that decides whether any cached page may be kept). A post's HTML depends on the post, the
event's time zone and the templates, and nothing else. What a post rendered to is dropped when a
build reads that it is gone (deleted, retracted, moderated or hidden), so the store holds the
posts the site shows, not every post it ever showed.
"""

from __future__ import annotations

import hashlib
import json
import marshal
import os
import sqlite3
import time
import zlib
from collections.abc import Callable
from operator import itemgetter
from pathlib import Path
from typing import Any

from markupsafe import Markup

from . import kept
from .kept import Slot
from .writer import KeptFile

FLUSH = 2000  # rows held before they are written
COMPRESS = 8192  # memo values this long or longer are kept compressed


class Fragments:
    def __init__(self, folder: Path, code: str) -> None:
        self.folder = Path(folder)
        path = self.folder / "posts.sqlite"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), isolation_level=None)
        self.db.executescript(
            """
            PRAGMA journal_mode=WAL;
            PRAGMA synchronous=OFF;
            CREATE TABLE IF NOT EXISTS code (digest TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS html (id INTEGER PRIMARY KEY, seq INTEGER NOT NULL,
                                             tz TEXT NOT NULL, html TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS line (id INTEGER PRIMARY KEY, seq INTEGER NOT NULL,
                                             line TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS memo (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            DROP TABLE IF EXISTS kept;
            DROP TABLE IF EXISTS member;
            DROP TABLE IF EXISTS member_index;
            CREATE TABLE IF NOT EXISTS kept_slot (name TEXT NOT NULL, slot INTEGER NOT NULL,
                                                  size INTEGER NOT NULL, mtime INTEGER NOT NULL,
                                                  made INTEGER NOT NULL, members BLOB NOT NULL,
                                                  PRIMARY KEY (name, slot));
            """
        )
        if self.db.execute("SELECT digest FROM code").fetchone() != (code,):
            self.db.executescript("DELETE FROM code; DELETE FROM html; DELETE FROM line;"
                                  "DELETE FROM memo; DELETE FROM kept_slot;")  # fmt: skip
            self.db.execute("INSERT INTO code VALUES (?)", [code])
        self.empty = {
            t: self.db.execute(f"SELECT 1 FROM {t} LIMIT 1").fetchone() is None
            for t in ("html", "line")
        }
        if not all(self.empty.values()):  # a build that reads from the store, not only fills it
            self.db.execute("PRAGMA mmap_size = 268435456")
        self.pending: dict[str, dict[int, tuple]] = {"html": {}, "line": {}}
        self.put: dict[str, set[int]] = {"html": set(), "line": set()}  # flushed by this build
        self.fetched: dict[str, dict[int, tuple]] = {"html": {}, "line": {}}  # by prefetch()
        self.absent: dict[str, set[int]] = {"html": set(), "line": set()}  # prefetch() found none

    def html(self, post, tz: str, render: Callable[[], str]) -> Markup:
        """The post's HTML in time zone tz: from the store when it has this version, else render()."""
        return Markup(self.html_text(post, tz, render))

    def html_text(self, post, tz: str, render: Callable[[], str]) -> str:
        """html() as a plain str, for joining many (the caller marks the whole safe)."""
        found = self._get("html", post[0], "seq, tz, html")
        if found is not None and found[0] == post[1] and found[1] == tz:
            return found[2]
        html = str(render())
        self._put("html", (post[0], post[1], tz, html))
        return html

    def html_texts(self, posts, tz: str, render: Callable[[object], str]) -> list[str]:
        """html_text() of many posts (a page's list), the prefetched ones looked up inline."""
        pending, fetched = self.pending["html"], self.fetched["html"]
        found = []
        for post in posts:
            held = pending.get(post[0]) or fetched.pop(post[0], None)
            if held is not None and held[1] == post[1] and held[2] == tz:
                found.append(held[3])
            else:
                found.append(self.html_text(post, tz, lambda post=post: render(post)))
        return found

    def line(self, post, make: Callable[[], str]) -> str:
        found = self._get("line", post.id, "seq, line")
        if found is not None and found[0] == post.seq:
            return found[1]
        text = make()
        self._put("line", (post.id, post.seq, text))
        return text

    def lines(self, posts, make: Callable[[object], str]) -> list[str]:
        """line() of many posts (a download's), the prefetched ones looked up inline."""
        pending, fetched = self.pending["line"], self.fetched["line"]
        found = []
        for post in posts:
            held = pending.get(post[0]) or fetched.pop(post[0], None)
            if held is not None and held[1] == post[1]:
                found.append(held[2])
            else:
                found.append(self.line(post, lambda post=post: make(post)))
        return found

    def keep_rendered(
        self, rows: list[tuple[int, int, Any]], tz: str, html: Callable, line: Callable
    ) -> None:
        """Store what these posts (row id, seq, whole post) render to, their HTML in time zone tz
        and their JSON line, where the store has not got it for that version: one look per table
        for the lot, then html(post) and line(post) for what is missing."""
        if not rows:
            return
        has = {table: self._have(table, rows, tz) for table in ("html", "line")}
        for row_id, seq, item in rows:
            if (row_id, seq) not in has["html"]:
                self._put("html", (row_id, seq, tz, str(html(item))))
            if (row_id, seq) not in has["line"]:
                self._put("line", (row_id, seq, line(item)))

    def keep_made(self, rows: list[tuple[int, int, str, str]], tz: str) -> None:
        """Store posts rendered elsewhere (render_pool.py): (row id, seq, HTML in tz, line)."""
        for row_id, seq, html, line in rows:
            self._put("html", (row_id, seq, tz, html))
            self._put("line", (row_id, seq, line))

    def filling(self) -> bool:
        """Whether the store had nothing and this build put nothing in it yet (a first build)."""
        return all(self.empty[t] and not self.put[t] and not self.pending[t] for t in self.empty)

    def _have(self, table: str, rows: list[tuple], tz: str) -> set[tuple[int, int]]:
        """(row id, seq) of the rows whose version the store (or this build) holds already."""
        found = set()
        pending = self.pending[table]
        for row_id, seq, _ in rows:
            held = pending.get(row_id)
            if held is not None and held[1] == seq and (table == "line" or held[2] == tz):
                found.add((row_id, seq))
        if self.empty[table] and not self.put[table]:
            return found
        ids = json.dumps([r[0] for r in rows])
        query = f"SELECT id, seq FROM {table} WHERE id IN (SELECT value FROM json_each(?))"
        if table == "html":
            found.update(self.db.execute(query + " AND tz = ?", [ids, tz]).fetchall())
        else:
            found.update(self.db.execute(query, [ids]).fetchall())
        wanted = {(r[0], r[1]) for r in rows}
        return found & wanted

    def memo(self, key: str, make: Callable[[], str]) -> Markup:
        """A chart (or any HTML) whose inputs digest to `key`: made once, then kept. A large
        value (a talk's first page of posts: 1 MB) is kept compressed, so reading it back from
        disk is a few dozen pages, not 250 scattered ones."""
        row = self.db.execute("SELECT value FROM memo WHERE key = ?", [key]).fetchone()
        if row is not None:
            value = row[0]
            return Markup(zlib.decompress(value).decode() if isinstance(value, bytes) else value)
        value = str(make())
        kept = zlib.compress(value.encode(), 1) if len(value) >= COMPRESS else value
        self.db.execute("INSERT OR REPLACE INTO memo VALUES (?, ?)", [key, kept])
        return Markup(value)

    def kept_slots(self, name: str) -> dict[int, Slot]:
        """The download `name`'s kept files (keep_file) that are still as written, by slot."""
        rows = self.db.execute(
            "SELECT slot, size, mtime, made, members FROM kept_slot WHERE name = ?", [name]
        )
        found = {}
        for slot, size, mtime, made, members in rows:
            path = self._kept_path(name, slot)
            try:
                st = os.stat(path)
                entries = marshal.loads(members)
            except (OSError, ValueError, EOFError, TypeError):
                continue
            if (st.st_size, st.st_mtime_ns) == (size, mtime):
                found[slot] = Slot(slot, path, made, entries, st.st_nlink)
        return found

    def unkeep(self, name: str, slot: int) -> None:
        """Forget a kept file of `name` (keep_file's `made` records it again once it is made)."""
        self.db.execute("DELETE FROM kept_slot WHERE name = ? AND slot = ?", [name, slot])

    def keep_file(self, name: str, slot: int, plan: kept.Plan) -> KeptFile:
        """The download `name` in its kept file `slot`, made as `plan` says (kept.py) by the
        writer's thread while pages render, and recorded for the next build once made."""
        path = self._kept_path(name, slot)
        path.parent.mkdir(parents=True, exist_ok=True)
        twin = self._kept_path(name, 1 - slot) if plan.twin else None
        entries: list[tuple] = []

        def make() -> str | None:
            sha, made = kept.make(path, plan, twin)
            entries[:] = made
            return sha

        def made() -> None:
            generation = time.time_ns()
            for n, where in ((slot, path), (1 - slot, twin)):
                if where is not None:
                    st = os.stat(where)
                    self.db.execute(
                        "INSERT OR REPLACE INTO kept_slot VALUES (?, ?, ?, ?, ?, ?)",
                        [name, n, st.st_size, st.st_mtime_ns, generation - (n != slot),
                         marshal.dumps(entries)],
                    )  # fmt: skip

        return KeptFile(path, make, made, sum(map(len, plan.tail)))

    def _kept_path(self, name: str, slot: int) -> Path:
        digest = hashlib.sha256(name.encode()).hexdigest()[:20]
        return self.folder / "downloads" / f"{digest}-{slot}.bin"

    def prefetch(self, posts, table: str = "html") -> None:
        """Read the stored HTML (or lines) of many posts in one query (a page's worth) before
        rendering; each is used once, then dropped."""
        if self.empty[table] and not self.put[table]:
            return
        pending = self.pending[table]
        ids = [i for i in map(itemgetter(0), posts) if i not in pending]  # Post.id at C speed
        columns = "id, seq, tz, html" if table == "html" else "id, seq, line"
        for start in range(0, len(ids), 20000):
            chunk = ids[start : start + 20000]
            rows = self.db.execute(
                f"SELECT {columns} FROM {table} WHERE id IN (SELECT value FROM json_each(?))",
                [json.dumps(chunk)],
            )
            fetched = {row[0]: row for row in rows}
            self.fetched[table].update(fetched)
            self.absent[table].update(i for i in chunk if i not in fetched)

    def drop(self, ids: list[int]) -> None:
        """Forget what the posts of these row ids rendered to: they are gone from every page
        (deleted, retracted, moderated or hidden), and a post shown again is rendered again."""
        if not ids:
            return
        self.db.execute("BEGIN")
        for table in ("html", "line"):
            self.db.execute(
                f"DELETE FROM {table} WHERE id IN (SELECT value FROM json_each(?))",
                [json.dumps(ids)],
            )
        self.db.execute("COMMIT")

    def _get(self, table: str, row_id: int, columns: str) -> tuple | None:
        held = self.pending[table].get(row_id)
        if held is not None:
            return held[1:]
        held = self.fetched[table].pop(row_id, None)
        if held is not None:
            return held[1:]
        if self.empty[table] and row_id not in self.put[table]:
            return None  # the store was empty when the build began: no need to look
        if row_id in self.absent[table]:
            return None  # prefetch() looked already
        return self.db.execute(f"SELECT {columns} FROM {table} WHERE id = ?", [row_id]).fetchone()

    def _put(self, table: str, row: tuple) -> None:
        self.pending[table][row[0]] = row
        self.absent[table].discard(row[0])
        if len(self.pending[table]) >= FLUSH:
            self.flush()

    def flush(self) -> None:
        for table, rows in self.pending.items():
            if rows:
                marks = ",".join("?" * len(next(iter(rows.values()))))
                self.db.execute("BEGIN")
                self.db.executemany(
                    f"INSERT OR REPLACE INTO {table} VALUES ({marks})", rows.values()
                )
                self.db.execute("COMMIT")
                self.put[table].update(rows)
                rows.clear()

    def close(self) -> None:
        self.flush()
        self.db.close()
