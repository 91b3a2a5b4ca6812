"""What the dashboard shows besides processes: each source's health, live viewers, posts per minute.

Sources and posts come from the archive (the collector saves every source's state there every few
seconds, and a replay its cursor); viewers from each live sidecar's /stats.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlite_utils

from core.archive import source_states
from core.items import format_time, parse_time
from core.settings import Settings

STALE_SECONDS = 30  # a source state older than this means its collector is not saving it
PPM_MINUTES = 15


@dataclass(frozen=True)
class SourceRow:
    event: str
    key: str
    state: str
    last_post_at: str | None
    lag: float | None
    received: int
    errors: int
    last_error: str | None
    gaps: str  # "backfilled/detected"
    malformed: int
    updated: str
    stale: bool


@dataclass
class Viewers:
    per_event: dict[str, int] = field(default_factory=dict)
    sidecars: int = 0
    problems: list[str] = field(default_factory=list)


def now_utc() -> datetime:
    return datetime.now(UTC)


def age_seconds(when: str | None, now: datetime) -> float | None:
    parsed = parse_time(when) if when else None
    return (now - parsed).total_seconds() if parsed else None


def source_row(
    event: str, key: str, state: dict[str, Any], updated: str, now: datetime
) -> SourceRow:
    age = age_seconds(updated, now)
    stopped = state.get("state") in ("stopped", "failing")
    return SourceRow(
        event=event,
        key=key,
        state=str(state.get("state", "?")),
        last_post_at=state.get("last_post_at"),
        lag=state.get("lag_seconds"),
        received=int(state.get("received", 0)),
        errors=int(state.get("errors", 0)),
        last_error=state.get("last_error"),
        gaps=f"{state.get('gaps_backfilled', 0)}/{state.get('gaps_detected', 0)}",
        malformed=int(state.get("malformed", 0)),
        updated=updated,
        stale=age is not None and age > STALE_SECONDS and not stopped,
    )


def replay_rows(db: sqlite_utils.Database, now: datetime) -> list[SourceRow]:
    """A replay keeps no source state, only its cursor: show how far it has read."""
    rows = db.execute(
        "SELECT event, source_key, cursor, updated_at FROM cursors "
        "WHERE source_key LIKE 'replay:%' ORDER BY event, source_key"
    ).fetchall()
    found = []
    for event, key, cursor, updated in rows:
        age = age_seconds(updated, now)
        state = {"state": "replaying" if age is not None and age < STALE_SECONDS else "idle",
                 "last_post_at": json.loads(cursor).get("clock")}  # fmt: skip
        found.append(source_row(event, key, state, updated, now))
    return found


def sources(db: sqlite_utils.Database, now: datetime | None = None) -> list[SourceRow]:
    now = now or now_utc()
    live = [source_row(e, k, s, u, now) for e, k, s, u in source_states(db)]
    return live + replay_rows(db, now)


def posts_per_minute(
    db: sqlite_utils.Database, minutes: int = PPM_MINUTES, now: datetime | None = None
) -> dict[str, list[int]]:
    """Posts first seen in each of the last `minutes` minutes, oldest first, per event."""
    now = (now or now_utc()).replace(second=0, microsecond=0) + timedelta(minutes=1)
    since = now - timedelta(minutes=minutes)
    rows = db.execute(
        "SELECT event, substr(first_seen, 1, 16), count(*) FROM items WHERE first_seen >= ? "
        "GROUP BY 1, 2",
        [format_time(since)],
    ).fetchall()
    found: dict[str, list[int]] = defaultdict(lambda: [0] * minutes)
    for event, minute, count in rows:
        at = datetime.fromisoformat(minute).replace(tzinfo=UTC)
        index = int((at - since).total_seconds() // 60)
        if 0 <= index < minutes:
            found[event][index] += count
    return dict(found)


def stats_urls(settings: Settings) -> list[str]:
    if settings.admin_live_stats.strip():
        return [u.strip() for u in settings.admin_live_stats.split(",") if u.strip()]
    host = settings.live_host if settings.live_host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    return [f"http://{host}:{settings.live_port}/stats"]


async def viewers(client: httpx.AsyncClient, urls: list[str]) -> Viewers:
    """Viewers per event summed over every sidecar; one that does not answer is named."""
    found = Viewers()
    for url in urls:
        try:
            response = await client.get(url, timeout=2.0)
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            found.problems.append(f"{url}: {type(exc).__name__}")
            continue
        found.sidecars += 1
        for event, count in document.get("viewers", {}).items():
            found.per_event[event] = found.per_event.get(event, 0) + int(count)
    return found
