"""The save path's moderation gate: the one part of moderation the collector holds.

collector/store.py calls `current_gate` once per batch: one primary-key lookup when the event
has no moderation, a cached precompiled Gate otherwise (reloaded when the `moderation.version` a
decision bumps has changed). `admit` decides a new item's status and queues it when it must
wait for approval: held and moderated posts get no change, so they never reach the tail until a
decision (core.moderation.decisions) releases them, in created order.
"""

from __future__ import annotations

import weakref

import sqlite_utils

from core.items import Item
from core.moderation.rules import Gate, load_gate, moderation_version

_GATES: weakref.WeakKeyDictionary[sqlite_utils.Database, dict[str, tuple[int, Gate | None]]] = (
    weakref.WeakKeyDictionary()
)


def current_gate(db: sqlite_utils.Database, event: str) -> Gate | None:
    """The event's Gate, None when it has no moderation; cached until a decision bumps the version."""
    version = moderation_version(db, event)
    if version is None:
        return None
    gates = _GATES.setdefault(db, {})
    cached = gates.get(event)
    if cached is None or cached[0] != version:
        cached = gates[event] = (version, load_gate(db, event))
    return cached[1]


def admit(db: sqlite_utils.Database, event: str, gate: Gate, item: Item, now: str) -> str:
    """The status a new item is stored with; one that must wait is put in the approval queue."""
    status, reason = gate.admit(item)
    if reason:
        db.execute(
            "INSERT OR IGNORE INTO moderation_queue (event, uri, held_at, reason) VALUES (?, ?, ?, ?)",
            [event, item.uri, now, reason],
        )
    return status
