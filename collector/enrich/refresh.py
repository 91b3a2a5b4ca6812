"""When reaction counts are refreshed, and how a refresh is committed.

A running collector refreshes, by its own knowledge of the schedule (core.events):

* each session's posts halfway through its grace period (`end + grace / 2`), so the counts are
  in the archive before the site scheduler rebuilds at `end + grace`;
* every post of the event 6 hours, 1 day and 3 days after its last session.

What has been done is in the archive (`count_refreshes`), so a restarted collector runs only
what it missed. `python -m collector refresh-counts EVENT` runs one on demand (cron, or after
the collector has stopped). Counts change the archive and the pages' rankings, never the live
stream; deletes found on the way are retracted like any other.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from core.errors import AfaError
from core.events import Event
from core.items import format_time
from core.settings import Settings, secret

from ..normalise import Change, Counts, Delete, Refreshed
from ..pipeline import Pipeline
from . import Enrichment
from .counts import Archived, Found, Refresher, archived_posts

log = logging.getLogger("collector.enrich")
AFTER_EVENT = (("event+6h", timedelta(hours=6)), ("event+1d", timedelta(days=1)),
               ("event+3d", timedelta(days=3)))  # fmt: skip
COMMIT_CHUNK = 2_000

Read = Callable[..., Awaitable[Any]]  # runs fn(db, *args) in a thread, under the writer's lock
Commit = Callable[[list[Change], list[dict[str, Any]]], Awaitable[None]]


@dataclass(frozen=True)
class Due:
    scope: str  # a session slug, or event+6h …
    at: datetime  # when it is due (UTC)
    since: datetime | None  # the posts written in [since, until); None: all of them
    until: datetime | None


def schedule(event: Event) -> list[Due]:
    """Every refresh the event calls for, in time order."""
    sessions = sorted(event.sessions, key=lambda s: s.end)
    due = [Due(s.slug, s.end + event.grace / 2, s.start, s.end + event.grace / 2) for s in sessions]
    if sessions:
        last = sessions[-1].end
        due += [Due(scope, last + after, None, None) for scope, after in AFTER_EVENT]
    return sorted(due, key=lambda d: d.at)


def done_scopes(db, event: str) -> set[str]:
    return {r[0] for r in db.execute("SELECT scope FROM count_refreshes WHERE event = ?", [event])}


@dataclass
class Outcome:
    scope: str
    posts: int
    counted: int  # posts whose counts the sources told
    deleted: int
    calls: int
    seconds: float
    failed: list[str]

    def summary(self) -> str:
        text = (f"refreshed {self.scope}: {self.posts} posts, {self.counted} counted, "
                f"{self.deleted} gone, {self.calls} calls in {self.seconds:.1f} s")  # fmt: skip
        return text + (f"; stopped short: {'; '.join(self.failed)}" if self.failed else "")


async def refresh_scope(
    refresher: Refresher, read: Read, commit: Commit, event: Event, due: Due
) -> Outcome:
    """Ask the sources about the scope's posts and commit what they said, then mark it done
    (unless a source could not be asked: it is tried again next time)."""
    started = time.monotonic()
    posts: list[Archived] = await read(archived_posts, event.slug, due.since, due.until)
    found: Found = await refresher.refresh(posts) if posts else Found()
    lines = found.lines
    for start in range(0, len(found.changes), COMMIT_CHUNK):
        await commit(found.changes[start : start + COMMIT_CHUNK], lines)
        lines = []
    if not found.failed:
        now = datetime.now(UTC)
        marker = {"at": format_time(now), "source": "collector", "origin": "refresh",
                  "type": "refreshed", "payload": {"scope": due.scope, "posts": len(posts)}}  # fmt: skip
        await commit([Refreshed(due.scope, now, len(posts))], [*lines, marker])
    return Outcome(due.scope, len(posts), sum(isinstance(c, Counts) for c in found.changes),
                   sum(isinstance(c, Delete) for c in found.changes), found.calls,
                   time.monotonic() - started, found.failed)  # fmt: skip


async def run_schedule(
    refresher: Refresher, read: Read, commit: Commit, event: Event, stopping: asyncio.Event,
    catch_up: float = 120.0,
) -> None:  # fmt: skip
    """Refresh each scope when it is due until stopped. Those missed while no collector ran
    wait `catch_up` seconds, so that the sources' own backfills are in first."""
    done = await read(done_scopes, event.slug)
    pending = [d for d in schedule(event) if d.scope not in done]
    started = datetime.now(UTC)
    late = started + timedelta(seconds=catch_up)
    while pending and not stopping.is_set():
        at = pending[0].at if pending[0].at >= started else late
        wait = (at - datetime.now(UTC)).total_seconds()
        if wait > 0:
            try:
                await asyncio.wait_for(stopping.wait(), timeout=min(wait, 3600))
                return
            except TimeoutError:
                continue
        due = pending.pop(0)
        try:
            outcome = await refresh_scope(refresher, read, commit, event, due)
        except Exception as exc:  # noqa: BLE001 - a failed refresh must not stop the collector
            log.error("count refresh %s of %s failed: %s: %s", due.scope, event.slug,
                      type(exc).__name__, exc)  # fmt: skip
            continue
        log.info("%s: %s", event.slug, outcome.summary())


async def refresh_now(
    settings: Settings, event: Event, session: str | None = None, *, user_agent: str,
    environ: Mapping[str, str] | None = None,
) -> Outcome:  # fmt: skip
    """One refresh on demand (`python -m collector refresh-counts`): a session's posts, or all."""
    due = _on_demand(event, session)
    pipeline = Pipeline.open(settings)
    stop = asyncio.Event()
    try:
        async with httpx.AsyncClient(headers={"User-Agent": user_agent}) as http:
            enrichment = Enrichment(http, stop)
            refresher = Refresher(http, event, lambda name: secret(name, environ),
                                  enrichment.appview, stop)  # fmt: skip

            async def read(fn: Callable[..., Any], *args: Any) -> Any:
                return await asyncio.to_thread(_locked, pipeline, fn, *args)

            async def commit(changes: list[Change], _lines: list[dict[str, Any]]) -> None:
                await asyncio.to_thread(pipeline.commit, event.slug, "enrich", changes, None)

            return await refresh_scope(refresher, read, commit, event, due)
    finally:
        pipeline.close()


def _on_demand(event: Event, session: str | None) -> Due:
    now = datetime.now(UTC)
    if session is None:
        return Due("event", now, None, None)
    found = [s for s in event.sessions if s.slug == session]
    if not found:
        known = ", ".join(s.slug for s in event.sessions)
        raise AfaError(f"no session {session!r} in {event.slug} (sessions: {known})")
    return Due(session, now, found[0].start, found[0].end + event.grace)


def _locked(pipeline: Pipeline, fn: Callable[..., Any], *args: Any) -> Any:
    with pipeline.lock:
        return fn(pipeline.db, *args)
