"""The archive: one SQLite file, the source of truth. Schema, migrations and shared read queries.

Writers (collector/store.py) and readers (sitegen) both go through the tables declared here.
An item's identity is UNIQUE(event, uri); every change a live page must see gets the next
number of the event's sequence, recorded in `changes` with the change itself.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils
from sqlite_utils import Migrations

from .errors import ArchiveError
from .items import Item, item_from_dict
from .paths import PRIVATE_FILE, private_dir, private_file, tighten

migrations = Migrations("afa")


@migrations()
def m001_initial(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE items (
            id INTEGER PRIMARY KEY,
            event TEXT NOT NULL,
            uri TEXT NOT NULL,              -- source data: canonical identity at the source
            source TEXT NOT NULL,
            origin TEXT NOT NULL,
            local_id TEXT NOT NULL,
            created_at TEXT NOT NULL,       -- UTC ISO 8601 with Z, the source's own time
            author_id TEXT NOT NULL,
            data TEXT NOT NULL,             -- the whole sanitised Item as JSON
            first_seen TEXT NOT NULL,       -- our data from here on
            seq INTEGER NOT NULL,           -- the change that last touched this item
            version INTEGER NOT NULL DEFAULT 1,
            status TEXT NOT NULL DEFAULT 'visible',  -- visible, deleted, hidden
            UNIQUE (event, uri)
        );
        CREATE INDEX items_event_time ON items (event, created_at);
        CREATE INDEX items_event_author ON items (event, author_id);

        CREATE TABLE item_versions (        -- earlier versions of edited items
            event TEXT NOT NULL,
            uri TEXT NOT NULL,
            version INTEGER NOT NULL,
            data TEXT NOT NULL,
            replaced_at TEXT NOT NULL,
            PRIMARY KEY (event, uri, version)
        );

        CREATE TABLE local_ids (            -- instance-local ids are cursors, mapped to identity
            event TEXT NOT NULL,
            origin TEXT NOT NULL,
            local_id TEXT NOT NULL,
            uri TEXT NOT NULL,
            PRIMARY KEY (event, origin, local_id)
        );

        CREATE TABLE changes (              -- the event's sequence: what live pages are sent
            event TEXT NOT NULL,
            seq INTEGER NOT NULL,
            kind TEXT NOT NULL,             -- post, edit, retract
            uri TEXT NOT NULL,
            at TEXT NOT NULL,
            data TEXT NOT NULL,             -- the live payload as JSON
            PRIMARY KEY (event, seq)
        );

        CREATE TABLE sequences (
            event TEXT PRIMARY KEY,
            last_seq INTEGER NOT NULL
        );

        CREATE TABLE cursors (              -- saved in the same transaction as the items they cover
            event TEXT NOT NULL,
            source_key TEXT NOT NULL,
            cursor TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (event, source_key)
        );

        CREATE TABLE malformed (            -- raw payloads kept so a parser fix can re-process them
            id INTEGER PRIMARY KEY,
            event TEXT NOT NULL,
            source_key TEXT NOT NULL,
            received_at TEXT NOT NULL,
            identity TEXT,
            reason TEXT NOT NULL,
            raw TEXT NOT NULL
        );
        """
    )


@migrations()
def m002_source_state(db: sqlite_utils.Database) -> None:
    """What each live source is doing (the status table), and each event's completeness report."""
    db.executescript(
        """
        CREATE TABLE source_state (         -- our data: persisted by `python -m collector run`
            event TEXT NOT NULL,
            source_key TEXT NOT NULL,
            state TEXT NOT NULL,            -- collector.sources.base.SourceState as JSON
            updated_at TEXT NOT NULL,
            PRIMARY KEY (event, source_key)
        );

        CREATE TABLE reports (              -- `python -m collector report`, for sitegen to show
            event TEXT PRIMARY KEY,
            report TEXT NOT NULL,           -- JSON
            created_at TEXT NOT NULL
        );
        """
    )


@migrations()
def m003_moderation(db: sqlite_utils.Database) -> None:
    """Organizer moderation (core/moderation/): decisions, rules, the approval queue, an audit log.

    Items gain two statuses: 'moderated' (hidden by a decision or rule) and 'held' (waiting for
    approval). 'hidden' stays the author's own choice (never shown, never moderated)."""
    db.executescript(
        """
        CREATE TABLE moderation (           -- one row per event with any moderation
            event TEXT PRIMARY KEY,
            approve_first INTEGER NOT NULL DEFAULT 0,
            version INTEGER NOT NULL DEFAULT 0  -- bumped by every decision: collectors reload
        );
        CREATE TABLE moderation_hidden (    -- posts hidden by an organizer (by uri)
            event TEXT NOT NULL, uri TEXT NOT NULL,
            origin TEXT NOT NULL,           -- organizer (CLI, dashboard) or content (moderation.yaml)
            who TEXT NOT NULL, at TEXT NOT NULL, why TEXT NOT NULL,
            PRIMARY KEY (event, uri)
        );
        CREATE TABLE moderation_blocks (    -- accounts blocked: author id or handle, casefolded
            event TEXT NOT NULL, account TEXT NOT NULL,
            origin TEXT NOT NULL, who TEXT NOT NULL, at TEXT NOT NULL, why TEXT NOT NULL,
            PRIMARY KEY (event, account)
        );
        CREATE TABLE moderation_rules (
            id INTEGER PRIMARY KEY,
            event TEXT NOT NULL,
            kind TEXT NOT NULL,             -- keyword, pattern
            pattern TEXT NOT NULL,
            action TEXT NOT NULL,           -- hide, hold
            origin TEXT NOT NULL, who TEXT NOT NULL, at TEXT NOT NULL, why TEXT NOT NULL,
            UNIQUE (event, kind, pattern)
        );
        CREATE TABLE moderation_queue (     -- posts waiting for an organizer's approval
            event TEXT NOT NULL, uri TEXT NOT NULL,
            held_at TEXT NOT NULL, reason TEXT NOT NULL,
            PRIMARY KEY (event, uri)
        );
        CREATE TABLE moderation_audit (     -- who, when, what, why: every decision, never updated
            id INTEGER PRIMARY KEY,
            event TEXT NOT NULL, at TEXT NOT NULL, who TEXT NOT NULL,
            action TEXT NOT NULL, target TEXT NOT NULL, why TEXT NOT NULL,
            changes INTEGER NOT NULL DEFAULT 0  -- live changes (retract/post) the decision made
        );
        CREATE INDEX moderation_audit_event ON moderation_audit (event, id);
        """
    )


@migrations()
def m004_items_state_index(db: sqlite_utils.Database) -> None:
    """archive_state (the site build's "did anything change?") from the index alone, without
    reading every row's JSON."""
    db.execute("CREATE INDEX items_event_status ON items (event, status, seq, version)")


@migrations()
def m005_rebuild_requests(db: sqlite_utils.Database) -> None:
    """Rebuild requests from moderation decisions to the site scheduler (core/rebuild.py)."""
    db.executescript(
        """
        CREATE TABLE rebuild_requests (     -- one row per event: its latest request
            event TEXT PRIMARY KEY,
            number INTEGER NOT NULL,        -- grows by one with each request
            at TEXT NOT NULL, reason TEXT NOT NULL,
            last_seq INTEGER NOT NULL       -- the sequence number the decision reached
        );
        """
    )


@migrations()
def m006_pins_and_boosts(db: sqlite_utils.Database) -> None:
    """Organizers' pinned posts (core/moderation/pins.py), and who boosted a post
    as the collector saw it (the meet-ups board counts them as going, core/meetups.py)."""
    db.executescript(
        """
        CREATE TABLE pins (                 -- our data: a post pinned on the walls and live pages
            event TEXT NOT NULL, uri TEXT NOT NULL,
            who TEXT NOT NULL, at TEXT NOT NULL, why TEXT NOT NULL,
            PRIMARY KEY (event, uri)
        );
        CREATE TABLE boosts (               -- source data: one row per account that boosted a post
            event TEXT NOT NULL,
            uri TEXT NOT NULL,              -- the boosted post's identity
            author_id TEXT NOT NULL,        -- who boosted it
            author TEXT NOT NULL,           -- their Author as JSON (name, handle, avatar)
            at TEXT NOT NULL,               -- the boost's own time, UTC
            PRIMARY KEY (event, uri, author_id)
        );
        """
    )


@migrations()
def m007_counts(db: sqlite_utils.Database) -> None:
    """Reaction counts refreshed from the sources (collector/enrich): not content, so no change
    in the event's sequence; `recounted` tells an incremental site build which rows to read again."""
    db.executescript(
        """
        CREATE TABLE recounted (            -- posts whose counts a refresh changed
            event TEXT NOT NULL,
            uri TEXT NOT NULL,
            after_seq INTEGER NOT NULL,     -- the event's last seq then: rows a build at it missed
            at TEXT NOT NULL,
            PRIMARY KEY (event, uri)
        );
        CREATE INDEX recounted_event_seq ON recounted (event, after_seq);

        CREATE TABLE count_refreshes (      -- each finished refresh: a session's posts or the event's
            event TEXT NOT NULL,
            scope TEXT NOT NULL,            -- a session slug, or "event"
            at TEXT NOT NULL,               -- source time (a replay's clock in a replay)
            posts INTEGER NOT NULL,
            PRIMARY KEY (event, scope)
        );
        """
    )


@migrations()
def m008_item_log(db: sqlite_utils.Database) -> None:
    """Every write to an item row numbered, by triggers: whoever writes (the collector, a
    moderation decision, a count refresh, an organizer in the sqlite3 shell), a reader that
    remembers the last number it saw finds exactly the rows to read again, and tells that
    nothing changed from one indexed look-up, however large the archive. One row per item (its
    latest write), so the log is as long as the archive, not as its history."""
    db.executescript(
        """
        CREATE TABLE item_log (
            item INTEGER PRIMARY KEY,   -- items.id (a row deleted from items keeps its entry)
            event TEXT NOT NULL,
            n INTEGER NOT NULL          -- the write's number: above every earlier write's
        );
        CREATE INDEX item_log_event ON item_log (event, n);
        CREATE INDEX item_log_n ON item_log (n);
        CREATE TRIGGER item_log_insert AFTER INSERT ON items BEGIN
            INSERT OR REPLACE INTO item_log (item, event, n)
                VALUES (NEW.id, NEW.event, (SELECT coalesce(max(n), 0) + 1 FROM item_log));
        END;
        CREATE TRIGGER item_log_update AFTER UPDATE ON items BEGIN  -- (id and event never change)
            INSERT OR REPLACE INTO item_log (item, event, n)
                VALUES (NEW.id, NEW.event, (SELECT coalesce(max(n), 0) + 1 FROM item_log));
        END;
        CREATE TRIGGER item_log_delete AFTER DELETE ON items BEGIN
            INSERT OR REPLACE INTO item_log (item, event, n)
                VALUES (OLD.id, OLD.event, (SELECT coalesce(max(n), 0) + 1 FROM item_log));
        END;
        """
    )


def open_archive(path: str | Path, *, create: bool = True) -> sqlite_utils.Database:
    """Open (and migrate) the archive in WAL mode; the file is 0600, and a folder made for it
    0700 (core.paths)."""
    path = Path(path)
    if not create and not path.exists():
        raise ArchiveError(f"archive not found: {path}")
    if not path.parent.exists():
        private_dir(path.parent)
    private_file(path)  # SQLite gives the WAL and shared-memory files the archive's mode
    for companion in (Path(f"{path}-wal"), Path(f"{path}-shm")):
        if companion.exists():
            tighten(companion, PRIVATE_FILE)
    try:
        conn = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=False)
        db = sqlite_utils.Database(conn)
        _into_wal(db)
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=30000")
        if migrations.pending(db):
            _migrate(db)
    except sqlite3.DatabaseError as exc:
        raise ArchiveError(f"cannot open archive {path}: {exc}") from exc
    return db


def _into_wal(db: sqlite_utils.Database, wait: float = 30.0) -> None:
    """Put the archive in WAL mode. Switching a new file's mode takes a lock SQLite does not
    wait for (no busy handler): a process that opens it while another switches it is told
    "database is locked" at once, so it tries again, for as long as busy_timeout would wait."""
    deadline = time.monotonic() + wait
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _migrate(db: sqlite_utils.Database) -> None:
    """Apply the pending migrations under the write lock, taken before they are looked up: the
    collector, sitegen and the live sidecar open a new archive at the same moment, and two that
    each found m001 pending would both apply it ("database is locked" when one's read
    snapshot cannot become a write, "table already exists" when it can). The others wait for
    the lock (busy_timeout) and find nothing left to do."""
    db.execute("BEGIN IMMEDIATE")
    try:
        migrations.apply(db)  # each migration in a savepoint of this transaction
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


@dataclass(frozen=True)
class Change:
    event: str
    seq: int
    kind: str
    uri: str
    at: str
    data: dict[str, Any]


def last_seq(db: sqlite_utils.Database, event: str) -> int:
    row = db.execute("SELECT last_seq FROM sequences WHERE event = ?", [event]).fetchone()
    return row[0] if row else 0


def changes_after(
    db: sqlite_utils.Database, event: str, seq: int, limit: int | None = None
) -> Iterator[Change]:
    sql = "SELECT event, seq, kind, uri, at, data FROM changes WHERE event = ? AND seq > ? ORDER BY seq"
    params: list[Any] = [event, seq]
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    for row in db.execute(sql, params):
        yield Change(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]))


def load_cursor(db: sqlite_utils.Database, event: str, source_key: str) -> dict[str, Any] | None:
    row = db.execute(
        "SELECT cursor FROM cursors WHERE event = ? AND source_key = ?", [event, source_key]
    ).fetchone()
    return json.loads(row[0]) if row else None


def visible_items(db: sqlite_utils.Database, event: str) -> list[Item]:
    """Every post of an event that pages may show, oldest first."""
    rows = db.execute(
        "SELECT data, seq FROM items WHERE event = ? AND status = 'visible' ORDER BY created_at, id",
        [event],
    )
    items = []
    for data, seq in rows:
        item = item_from_dict(json.loads(data))
        item.extra["seq"] = seq
        items.append(item)
    return items


def count_items(db: sqlite_utils.Database, event: str, status: str | None = None) -> int:
    sql = "SELECT count(*) FROM items WHERE event = ?"
    params = [event]
    if status:
        sql += " AND status = ?"
        params.append(status)
    return db.execute(sql, params).fetchone()[0]


def event_clock(db: sqlite_utils.Database, event: str) -> str | None:
    """The newest source time a collector has reached for an event (a replay's simulated clock)."""
    row = db.execute(
        "SELECT max(json_extract(cursor, '$.clock')) FROM cursors WHERE event = ?", [event]
    ).fetchone()
    return row[0] if row else None


def source_states(
    db: sqlite_utils.Database, event: str | None = None
) -> list[tuple[str, str, dict[str, Any], str]]:
    """(event, source key, state dict, updated_at) for every live source the collector ran."""
    sql = "SELECT event, source_key, state, updated_at FROM source_state"
    params: list[Any] = []
    if event is not None:
        sql += " WHERE event = ?"
        params.append(event)
    rows = db.execute(sql + " ORDER BY event, source_key", params).fetchall()
    return [(e, k, json.loads(s), u) for e, k, s, u in rows]


def load_report(db: sqlite_utils.Database, event: str) -> dict[str, Any] | None:
    """The event's latest completeness report, as `python -m collector report` wrote it."""
    row = db.execute("SELECT report FROM reports WHERE event = ?", [event]).fetchone()
    return json.loads(row[0]) if row else None


def archive_state(db: sqlite_utils.Database, event: str) -> str:
    """A short fingerprint of an event's rows: "<item_log position>/<last seq>". It changes with
    any write to one of its items (m008's triggers) and with any change in its sequence, and
    costs two indexed look-ups, not a pass over the rows."""
    return f"{log_position(db, event)}/{last_seq(db, event)}"


def log_position(db: sqlite_utils.Database, event: str) -> int:
    """The number of the event's last item write (0 before any)."""
    row = db.execute("SELECT max(n) FROM item_log WHERE event = ?", [event]).fetchone()
    return row[0] or 0


def logged_items(db: sqlite_utils.Database, event: str, after: int, limit: int) -> list[int] | None:
    """The ids of the event's items written after log position `after`, or None past `limit`."""
    rows = db.execute(
        "SELECT item FROM item_log WHERE event = ? AND n > ? LIMIT ?",
        [event, after, limit + 1],
    ).fetchall()
    return None if len(rows) > limit else [r[0] for r in rows]


def rows_by_id(
    db: sqlite_utils.Database, event: str, ids: list[int]
) -> Iterator[tuple[int, str, int, int, str]]:
    """(id, data, seq, version, status) of the event's rows with these ids, whatever their
    status (a row no longer there is simply missing). Looked up by primary key: `+event` keeps
    SQLite from choosing the event's index, which for a long list of ids it would scan whole (a
    million rows for a session's 300)."""
    yield from db.execute(ROWS_BY_ID_SQL, [event, json.dumps(ids)])


ROWS_BY_ID_SQL = (
    "SELECT id, data, seq, version, status FROM items "
    "WHERE +event = ? AND id IN (SELECT value FROM json_each(?))"
)


def changed_uris(db: sqlite_utils.Database, event: str, seq: int, limit: int) -> list[str] | None:
    """The uris of items changed after `seq` (added, edited, retracted) or recounted since a
    build at `seq` (a refresh at that same seq included: read again, to be sure), or None past
    `limit`."""
    rows = db.execute(
        "SELECT uri FROM changes WHERE event = ? AND seq > ? "
        "UNION SELECT uri FROM recounted WHERE event = ? AND after_seq >= ? LIMIT ?",
        [event, seq, event, seq, limit + 1],
    ).fetchall()
    return None if len(rows) > limit else [r[0] for r in rows]


def counts_as_of(db: sqlite_utils.Database, event: str) -> str | None:
    """When reaction counts were last refreshed from the sources (UTC ISO), None if never."""
    row = db.execute("SELECT max(at) FROM count_refreshes WHERE event = ?", [event]).fetchone()
    return row[0] if row else None


def item_rows(
    db: sqlite_utils.Database, event: str, uris: list[str] | None = None
) -> Iterator[tuple[int, str, int, int, str]]:
    """(id, data, seq, version, status): every visible row of an event, or the rows of `uris`
    whatever their status."""
    if uris is None:
        yield from db.execute(
            "SELECT id, data, seq, version, status FROM items WHERE event = ? AND status = 'visible'",
            [event],
        )
        return
    for i in range(0, len(uris), 500):
        chunk = uris[i : i + 500]
        yield from db.execute(
            "SELECT id, data, seq, version, status FROM items WHERE event = ? AND uri IN "
            f"({','.join('?' * len(chunk))})",
            [event, *chunk],
        )


@contextlib.contextmanager
def write_transaction(db: sqlite_utils.Database) -> Iterator[None]:
    """db.atomic(), but taking the write lock first (BEGIN IMMEDIATE). Moderation decisions and
    notes write from other processes: a batch that read the sequence and then found another
    writer had committed would fail with "database is locked" (a stale WAL snapshot); this way
    it waits its turn (busy_timeout) instead. Nested in a transaction it is a savepoint."""
    if db.conn.in_transaction:
        with db.atomic():
            yield
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.conn.in_transaction:
            db.execute("ROLLBACK")
        raise
