"""Items' statuses recomputed from the decisions, and the live changes that makes.

Each scoped item's status is worked out again with the event's Gate (rules.Gate.status_of): a
visible post that becomes moderated or held gets a `retract` change with the event's next
sequence number, and a post that becomes visible again (unhide, unblock, rule removed, approved)
gets a `post` change carrying its current version, so open live pages drop or insert it. A scope
is (SQL condition on items, its parameters).
"""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from ..archive import Change, last_seq
from ..tail import live_payload
from .rules import MATCH_COLUMNS_SQL, Gate, load_gate, match_text


def refresh(db: sqlite_utils.Database, event: str, scope, now: str, keep=None) -> list[Change]:
    """Bring the scoped items' statuses in line with the decisions, recording a live change for
    each that appears or disappears; oldest first, so approved posts arrive in order."""
    moves = _moves(db, event, scope, keep)
    shown = [item_id for item_id, _uri, _old, new in moves if new == "visible"]
    data = dict(db.execute("SELECT id, data FROM items WHERE id IN (SELECT value FROM json_each(?))",
                           [json.dumps(shown)]).fetchall()) if shown else {}  # fmt: skip
    seq = last_seq(db, event)
    changes: list[Change] = []
    updates = []
    for item_id, uri, old, new in moves:
        kind = "retract" if old == "visible" else "post" if new == "visible" else None
        if kind:
            seq += 1
            item = json.loads(data[item_id]) if kind == "post" else None
            changes.append(Change(event, seq, kind, uri, now, live_payload(kind, seq, uri, item)))
        updates.append((new, kind is not None, seq, item_id))
    db.conn.executemany(
        "INSERT INTO changes (event, seq, kind, uri, at, data) VALUES (?, ?, ?, ?, ?, ?)",
        [(event, c.seq, c.kind, c.uri, now, _json(c.data)) for c in changes],
    )
    db.conn.executemany(
        "UPDATE items SET status = ?, seq = CASE WHEN ? THEN ? ELSE seq END WHERE id = ?", updates
    )
    if changes:
        db.execute(
            "INSERT INTO sequences (event, last_seq) VALUES (?, ?) "
            "ON CONFLICT (event) DO UPDATE SET last_seq = excluded.last_seq",
            [event, seq],
        )
    return changes


def _moves(
    db: sqlite_utils.Database, event: str, scope, keep=None
) -> list[tuple[int, str, str, str]]:
    """(id, uri, status, new status) of the scoped items whose status must change, oldest first.
    Sorted here, not in SQL, so SQLite picks the index the scope needs (uri, author). `keep`
    passes over the posts whose text it refuses without weighing every rule for them."""
    where, params = scope
    gate = load_gate(db, event) or Gate()
    queued = {r[0] for r in db.execute("SELECT uri FROM moderation_queue WHERE event = ?", [event])}
    rows = db.execute(
        "SELECT created_at, id, uri, status, source, author_id, "
        f"json_extract(data, '$.author.handle'), {MATCH_COLUMNS_SQL} FROM items WHERE event = ? "
        f"AND status IN ('visible', 'moderated', 'held') AND ({where})",
        [event, *params],
    ).fetchall()
    moves = []
    for _created, item_id, uri, status, source, author_id, handle, *fields in sorted(rows):
        text = match_text(*fields)
        if keep is not None and not keep(text):
            continue
        new = gate.status_of(uri, author_id, handle or "", text,
                             queued=uri in queued, note=source == "note")  # fmt: skip
        if new != status:
            moves.append((item_id, uri, status, new))
    return moves


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
