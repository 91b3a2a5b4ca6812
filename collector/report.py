"""The completeness report of an event: per source, what was received, what gaps were found and
filled, what was malformed and skipped, and how long the source was cut off or rate-limited.

Built from the archive alone (source_state, malformed, items), so it works with Redis down. It is
written as JSON to a file and into the archive's `reports` table, where sitegen can read it with
core.archive.load_report.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from core.archive import count_items, source_states
from core.items import format_time

FIGURES = ("received", "gaps_detected", "gaps_backfilled", "malformed",
           "disconnected_seconds", "rate_limited_seconds", "errors")  # fmt: skip


def build_report(db: sqlite_utils.Database, event: str) -> dict[str, Any]:
    malformed = dict(db.execute(
        "SELECT source_key, count(*) FROM malformed WHERE event = ? GROUP BY source_key", [event]
    ).fetchall())  # fmt: skip
    sources = []
    for _event, key, state, updated in source_states(db, event):
        row = {"source": key, "state": state.get("state"), "updated_at": updated}
        row.update({name: state.get(name, 0) for name in FIGURES})
        row["malformed"] = max(row["malformed"] or 0, malformed.pop(key, 0))
        row["last_post_at"], row["last_error"] = state.get("last_post_at"), state.get("last_error")
        sources.append(row)
    for key, count in sorted(malformed.items()):  # replays and notes have no live state
        sources.append({"source": key, "state": None, "malformed": count})
    by_source = dict(db.execute(
        "SELECT source, count(*) FROM items WHERE event = ? GROUP BY source", [event]
    ).fetchall())  # fmt: skip
    return {
        "event": event,
        "generated_at": format_time(datetime.now(UTC)),
        "archive": {"items": count_items(db, event), "visible": count_items(db, event, "visible"),
                    "deleted": count_items(db, event, "deleted"), "by_source": by_source},
        "sources": sources,
    }  # fmt: skip


def save_report(db: sqlite_utils.Database, report: dict[str, Any]) -> None:
    with db.atomic():
        db.execute(
            "INSERT INTO reports (event, report, created_at) VALUES (?, ?, ?) ON CONFLICT (event) "
            "DO UPDATE SET report = excluded.report, created_at = excluded.created_at",
            [report["event"], json.dumps(report, ensure_ascii=False), report["generated_at"]],
        )


def write_report(report: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
