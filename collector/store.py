"""Save parsed changes into the archive: items, edits, retractions, their sequence numbers and
the source cursor, all in one transaction. Nothing is published from here: the caller publishes
the returned changes after the commit, so Redis never shows what SQLite might not hold."""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from core.archive import Change, last_seq, write_transaction
from core.items import Author, Item, format_time, item_from_dict, item_to_dict, parse_time
from core.moderation.rules import Gate
from core.tail import live_payload

from . import jsontext, reactions
from .gate import admit, current_gate
from .normalise import AuthorUpdate, Counts, Delete, Refreshed

log = logging.getLogger("collector.store")


@dataclass(frozen=True)
class Malformed:
    """A payload we could not parse, kept raw so a fixed parser can re-process it."""

    identity: str
    reason: str
    raw: str

    def __post_init__(self) -> None:
        for name in ("identity", "reason", "raw"):  # whatever a source sent, storable as UTF-8
            object.__setattr__(self, name, storable_text(getattr(self, name)))


def storable_text(value: Any) -> str:
    """Text UTF-8 can hold: a lone surrogate (hostile JSON may escape one) kept as its
    backslash escape, which reads back the same inside a JSON text."""
    text = value if isinstance(value, str) else str(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


@dataclass(frozen=True)
class SavedChange(Change):
    """A change as saved, with its payload's JSON text, so publishing need not encode it again."""

    text: str = field(default="", compare=False, repr=False)


@dataclass
class _Batch:
    """The state of one transaction: the next sequence number and the changes made.

    New items (the common case) are queued and written with executemany; anything that reads
    the archive (an edit, a resend, a delete) writes the queue first."""

    db: sqlite_utils.Database
    event: str
    now: str
    seq: int
    changes: list[Change] = field(default_factory=list)
    gate: Gate | None = None  # moderation hook: None when the event has none
    known: set[str] = field(default_factory=set)  # uris in the archive or queued
    queued_ids: list[tuple] = field(default_factory=list)
    queued_changes: list[tuple] = field(default_factory=list)
    queued_items: list[tuple] = field(default_factory=list)

    def record(self, kind: str, uri: str, item: Item | None, more: dict | None = None) -> int:
        self.flush()
        self.seq += 1
        payload = live_payload(kind, self.seq, uri, item_to_dict(item) if item else None)
        payload.update(more or {})
        text = _json(payload)
        self.db.execute(
            "INSERT INTO changes (event, seq, kind, uri, at, data) VALUES (?, ?, ?, ?, ?, ?)",
            [self.event, self.seq, kind, uri, self.now, text],
        )
        self.changes.append(SavedChange(self.event, self.seq, kind, uri, self.now, payload, text))
        return self.seq

    def queue_post(self, item: Item, data: dict, core: str) -> int:
        """Queue a new item's `post` change; `core` is the JSON of `data` without "extra"."""
        self.seq += 1
        payload = live_payload("post", self.seq, item.uri, data)
        text = _payload_json(payload, core)
        self.queued_changes.append((self.event, self.seq, "post", item.uri, self.now, text))
        self.changes.append(
            SavedChange(self.event, self.seq, "post", item.uri, self.now, payload, text)
        )
        return self.seq

    def flush(self) -> None:
        db = self.db
        if self.queued_ids:
            db.conn.executemany(
                "INSERT OR IGNORE INTO local_ids (event, origin, local_id, uri) VALUES (?, ?, ?, ?)",
                self.queued_ids,
            )
            self.queued_ids = []
        if self.queued_changes:
            db.conn.executemany(
                "INSERT INTO changes (event, seq, kind, uri, at, data) VALUES (?, ?, ?, ?, ?, ?)",
                self.queued_changes,
            )
            self.queued_changes = []
        if self.queued_items:
            db.conn.executemany(
                "INSERT INTO items (event, uri, source, origin, local_id, created_at, author_id, "
                "data, first_seen, seq, version, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)",
                self.queued_items,
            )
            self.queued_items = []


def tune_for_writing(db: sqlite_utils.Database) -> None:
    """Settings of this connection (not of the file) for a collector that writes batches: a
    page cache that holds the hot index pages of a large event (SQLite's default is 2 MiB)."""
    db.execute("PRAGMA cache_size = -32768")  # KiB


class Checkpointer:
    """WAL checkpoints off the writer's path, for a replay that writes flat out: the writing
    connection stops checkpointing at commit (with 2,000 posts a batch, every commit would copy
    and fsync some 5 MB before the next batch could start) and a thread checkpoints PASSIVE on
    its own connection every `every` seconds. Leaving restores SQLite's automatic checkpoints."""

    def __init__(self, db: sqlite_utils.Database, path: str | Path, every: float = 0.5) -> None:
        self.db, self.path, self.every = db, str(path), every
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="checkpointer", daemon=True)

    def __enter__(self) -> Checkpointer:
        self.db.execute("PRAGMA wal_autocheckpoint = 0")
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopping.set()
        self.thread.join()
        self.db.execute("PRAGMA wal_autocheckpoint = 1000")

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, timeout=30)
        try:
            while not self.stopping.wait(self.every):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:  # busy or locked: the next round tries again
                    log.debug("checkpoint skipped: %s", exc)
        finally:
            conn.close()


def save_batch(
    db: sqlite_utils.Database,
    event: str,
    changes: Iterable[Item | Delete],
    source_key: str,
    cursor: dict[str, Any] | None,
    malformed: Iterable[Malformed] = (),
) -> list[Change]:
    """Apply changes and save the cursor in ONE transaction; return the changes to publish."""
    changes = list(changes)
    with write_transaction(db):
        changes, boosts = reactions.prepare(db, event, changes)  # replies resolved, boosts apart
        batch = _Batch(db, event, _now(), last_seq(db, event))
        batch.gate = current_gate(db, event)  # moderation hook: one lookup per batch
        batch.known = _archived_uris(db, event, [c.uri for c in changes if isinstance(c, Item)])
        for change in changes:
            if isinstance(change, Item):
                if change.uri in batch.known:
                    batch.flush()
                    _save_item(batch, change)
                else:
                    _queue_item(batch, change)
            elif type(change) in _SAVERS:  # what reads the archive sees the queue written first
                batch.flush()
                _SAVERS[type(change)](batch, change)
        batch.flush()
        reactions.save_boosts(batch, boosts)
        for bad in malformed:
            save_malformed(db, event, source_key, bad, batch.now)
        if cursor is not None:
            save_cursor(db, event, source_key, cursor, batch.now)
        if batch.changes:
            db.execute(
                "INSERT INTO sequences (event, last_seq) VALUES (?, ?) "
                "ON CONFLICT (event) DO UPDATE SET last_seq = excluded.last_seq",
                [event, batch.seq],
            )
    return batch.changes


def _archived_uris(db: sqlite_utils.Database, event: str, uris: list[str]) -> set[str]:
    found: set[str] = set()
    unique = list(dict.fromkeys(uris))
    for start in range(0, len(unique), 500):
        chunk = unique[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        rows = db.execute(
            f"SELECT uri FROM items WHERE event = ? AND uri IN ({marks})", [event, *chunk]
        )
        found.update(row[0] for row in rows)
    return found


def _queue_item(batch: _Batch, item: Item) -> None:
    """A new item: as _insert_item, queued for executemany."""
    batch.known.add(item.uri)
    batch.queued_ids.append((batch.event, item.origin, item.local_id, item.uri))
    status = "hidden" if item.author.hidden else "visible"
    if batch.gate is not None and status == "visible":  # moderation hook: held or moderated
        status = admit(batch.db, batch.event, batch.gate, item, batch.now)
    data = item_to_dict(item)
    core, text = _item_json(data)
    seq = batch.queue_post(item, data, core) if status == "visible" else 0
    batch.queued_items.append(
        (batch.event, item.uri, item.source, item.origin, item.local_id,
         data["created_at"], item.author.id, text, batch.now, seq, status)
    )  # fmt: skip


def _item_json(data: dict) -> tuple[str, str]:
    """(JSON of the item without "extra", JSON of the whole item), encoding it once: the post's
    stream payload embeds the first (see _payload_json). Relies on item_to_dict putting
    "extra" last; checked on the first call, with plain encoding as the fallback."""
    global _JOIN_OK
    if _JOIN_OK is False:
        return "", _json(data)
    core = _json({k: v for k, v in data.items() if k != "extra"})
    text = f'{core[:-1]},"extra":{_json(data["extra"])}}}'
    if _JOIN_OK is None:
        _JOIN_OK = text == _json(data) and _payload_join_ok(data, core)
        if not _JOIN_OK:
            return "", _json(data)
    return core, text


def _payload_json(payload: dict, core: str) -> str:
    """The payload's JSON, its "item" (the last key) spliced in already encoded."""
    if not core:
        return _json(payload)
    head = {k: v for k, v in payload.items() if k != "item"}
    return f'{_json(head)[:-1]},"item":{core}}}'


def _payload_join_ok(data: dict, core: str) -> bool:
    payload = live_payload("post", 1, data["uri"], data)
    return _payload_json(payload, core) == _json(payload)


_JOIN_OK: bool | None = None  # None: not yet checked against plain encoding


def _save_item(batch: _Batch, item: Item) -> None:
    db, event = batch.db, batch.event
    db.execute(
        "INSERT OR IGNORE INTO local_ids (event, origin, local_id, uri) VALUES (?, ?, ?, ?)",
        [event, item.origin, item.local_id, item.uri],
    )
    row = db.execute(
        "SELECT data, status, version FROM items WHERE event = ? AND uri = ?", [event, item.uri]
    ).fetchone()
    if row is None:
        _insert_item(batch, item)
        return
    old_data, status, version = jsontext.loads(row[0]), row[1], row[2]
    if status == "deleted" or not _is_newer_content(item, old_data):
        return  # a retraction wins over resends; a duplicate or an older version changes nothing
    db.execute(
        "INSERT OR IGNORE INTO item_versions (event, uri, version, data, replaced_at) "
        "VALUES (?, ?, ?, ?, ?)",
        [event, item.uri, version, row[0], batch.now],
    )
    if status == "visible" and batch.gate is not None and batch.gate.edit_suppressed(item):
        status = "moderated"  # moderation hook: the edited post now breaks a hide rule
        seq = batch.record("retract", item.uri, None)
    else:
        seq = batch.record("edit", item.uri, item) if status == "visible" else 0
    db.execute(
        "UPDATE items SET data = ?, version = version + 1, seq = CASE WHEN ? > 0 THEN ? ELSE seq END, "
        "status = ? WHERE event = ? AND uri = ?",
        [_json(item_to_dict(item)), seq, seq, status, event, item.uri],
    )


def _insert_item(batch: _Batch, item: Item) -> None:
    # Hidden authors (Bluesky "!no-unauthenticated") are kept for the record, never published.
    status = "hidden" if item.author.hidden else "visible"
    if batch.gate is not None and status == "visible":  # moderation hook: held or moderated
        status = admit(batch.db, batch.event, batch.gate, item, batch.now)
    seq = batch.record("post", item.uri, item) if status == "visible" else 0
    batch.db.execute(
        "INSERT INTO items (event, uri, source, origin, local_id, created_at, author_id, data, "
        "first_seen, seq, version, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)",
        [batch.event, item.uri, item.source, item.origin, item.local_id,
         format_time(item.created_at), item.author.id, _json(item_to_dict(item)), batch.now, seq,
         status],
    )  # fmt: skip


def _save_delete(batch: _Batch, delete: Delete) -> None:
    db, event = batch.db, batch.event
    uri = delete.uri
    if uri is None:
        row = db.execute(
            "SELECT uri FROM local_ids WHERE event = ? AND origin = ? AND local_id = ?",
            [event, delete.origin, delete.local_id],
        ).fetchone()
        uri = row[0] if row else None
    status = db.execute(
        "SELECT status FROM items WHERE event = ? AND uri = ?", [event, uri]
    ).fetchone()
    if uri is None or status is None or status[0] == "deleted":
        return  # never seen, or already retracted: nothing a live page must hear
    seq = batch.record("retract", uri, None) if status[0] == "visible" else 0
    db.execute(
        "UPDATE items SET status = 'deleted', seq = CASE WHEN ? > 0 THEN ? ELSE seq END "
        "WHERE event = ? AND uri = ?",
        [seq, seq, event, uri],
    )


def _save_author(batch: _Batch, update: AuthorUpdate) -> None:
    """Every archived post by the author takes what enrichment learned: an `edit` where a live
    page shows it, a `retract` when the author now asks not to be shown to logged-out readers,
    and a `post` again (through the moderation gate) when that label is gone."""
    db, event, author = batch.db, batch.event, update.author
    rows = db.execute(
        "SELECT uri, data, status FROM items WHERE event = ? AND author_id = ?", [event, author.id]
    ).fetchall()
    for uri, text, status in rows:
        data = jsontext.loads(text)
        new = _with_author(data["author"], author)
        if new == data["author"]:
            continue
        data["author"] = new
        status, seq = _author_status(batch, uri, data, status, author.hidden)
        db.execute(
            "UPDATE items SET data = ?, version = version + 1, status = ?, "
            "seq = CASE WHEN ? > 0 THEN ? ELSE seq END WHERE event = ? AND uri = ?",
            [_json(data), status, seq, seq, event, uri],
        )


def _with_author(old: dict, author: Author) -> dict:
    """The stored author with what the update knows (an empty field never erases a known one)."""
    new = dict(old)
    for name in ("handle", "name", "url", "avatar"):
        value = getattr(author, name)
        if value:
            new[name] = value
    new["hidden"] = author.hidden
    return new


def _author_status(batch: _Batch, uri: str, data: dict, status: str, hidden: bool) -> tuple:
    """(new status, seq of the live change made or 0) for a post whose author changed."""
    if hidden and status in ("visible", "held"):
        return "hidden", batch.record("retract", uri, None) if status == "visible" else 0
    if status == "visible":
        return status, batch.record("edit", uri, item_from_dict(data))
    if status == "hidden" and not hidden:  # the label is gone: the post may be shown again
        item = item_from_dict(data)
        if batch.gate is not None:  # moderation hook: held or moderated
            status = admit(batch.db, batch.event, batch.gate, item, batch.now)
        else:
            status = "visible"
        return status, batch.record("post", uri, item) if status == "visible" else 0
    return status, 0


def _save_counts(batch: _Batch, counts: Counts) -> None:
    """New reaction counts: the row's data and version change (pages re-rank and re-render
    it), and `recounted` names it for an incremental build; nothing goes to the live stream."""
    db, event = batch.db, batch.event
    row = db.execute(
        "SELECT data FROM items WHERE event = ? AND uri = ?", [event, counts.uri]
    ).fetchone()
    if row is None:
        return
    data = jsontext.loads(row[0])
    new = {"boosts": counts.boosts, "likes": counts.likes, "replies": counts.replies}
    if all(data.get(k) == v for k, v in new.items()):
        return
    data.update(new)
    db.execute(
        "UPDATE items SET data = ?, version = version + 1 WHERE event = ? AND uri = ?",
        [_json(data), event, counts.uri],
    )
    db.execute(
        "INSERT INTO recounted (event, uri, after_seq, at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (event, uri) DO UPDATE SET after_seq = excluded.after_seq, at = excluded.at",
        [event, counts.uri, batch.seq, batch.now],
    )


def _save_refreshed(batch: _Batch, done: Refreshed) -> None:
    batch.db.execute(
        "INSERT INTO count_refreshes (event, scope, at, posts) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (event, scope) DO UPDATE SET at = excluded.at, posts = excluded.posts",
        [batch.event, done.scope, format_time(done.at), done.posts],
    )


_SAVERS = {
    Delete: _save_delete,
    AuthorUpdate: _save_author,
    Counts: _save_counts,
    Refreshed: _save_refreshed,
}  # a ProfileHint is enrichment's alone: never saved


CONTENT_FIELDS = ("html", "text", "spoiler", "sensitive", "media", "tags", "links", "quote_of")


def _is_newer_content(item: Item, old: dict) -> bool:
    """True when `item` shows something different from the stored version and is not older.

    Counts (boosts, likes) and the origin we saw it through are not content: the same post
    reached through a second instance is a duplicate, not an edit.
    """
    new = item_to_dict(item)
    if new["source"] != old.get("source"):
        return False  # a Bridgy Fed mirror of a Bluesky post: the same post, told differently
    if all(new[k] == old.get(k) for k in CONTENT_FIELDS):
        return False
    old_edit, new_edit = parse_time(old.get("edited_at")), item.edited_at
    if old_edit and (new_edit is None or new_edit < old_edit):
        return False
    return True


def save_cursor(db, event: str, source_key: str, cursor: dict, now: str | None = None) -> None:
    db.execute(
        "INSERT INTO cursors (event, source_key, cursor, updated_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (event, source_key) DO UPDATE SET cursor = excluded.cursor, "
        "updated_at = excluded.updated_at",
        [event, source_key, _json(cursor), now or _now()],
    )


def fresh_malformed(
    db: sqlite_utils.Database, event: str, source_key: str, malformed: Iterable[Malformed]
) -> list[Malformed]:
    """The payloads not kept yet. A backfill overlap, a replay or a restart re-reads the same
    broken post, maybe serialised differently (the stream and REST): a post named by its
    identity and failing for the same reason is one malformed payload, kept and counted once.
    Payloads with no post identity (a cut frame) are the same only when their bytes are."""
    fresh: dict[tuple, Malformed] = {}
    for bad in malformed:
        key = _malformed_key(bad)
        if key in fresh:
            continue
        column = "reason" if key[0] == "post" else "raw"
        kept = db.execute(
            f"SELECT 1 FROM malformed WHERE event = ? AND source_key = ? AND identity = ? "
            f"AND {column} = ? LIMIT 1",
            [event, source_key, bad.identity, key[2]],
        ).fetchone()
        if kept is None:
            fresh[key] = bad
    return list(fresh.values())


_POST_IDENTITY = re.compile(r"^[a-z]+:((//)?[^/]*/.+|\d+)$")


def _malformed_key(bad: Malformed) -> tuple[str, str, str]:
    """("post", identity, reason) when the identity names one post, else ("raw", identity, raw)."""
    if _POST_IDENTITY.match(bad.identity or ""):
        return ("post", bad.identity, bad.reason)
    return ("raw", bad.identity, bad.raw)


def save_malformed(db, event: str, source_key: str, bad: Malformed, now: str | None = None) -> None:
    db.execute(
        "INSERT INTO malformed (event, source_key, received_at, identity, reason, raw) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [event, source_key, now or _now(), bad.identity, bad.reason, bad.raw],
    )


def _now() -> str:
    return format_time(datetime.now(UTC))


def _json(value) -> str:
    return jsontext.dumps(value)
