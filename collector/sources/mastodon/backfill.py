"""Mastodon backfill: the tag timeline walked from the saved cursor minus an overlap (the
backdated-id trap, SOURCES.md §1.3) up to now, each page committed with its cursor.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from datetime import time as day_time

from core.items import parse_time

from ..base import Backoff
from .instance import Feed, id_key, seen_in
from .rest import fetch_json
from .save import save, save_statuses

SNOWFLAKE_EPOCH_MS = 1_451_606_400_000  # 2016-01-01: Mastodon ids below this are not snowflakes


# -- backfill -----------------------------------------------------------------------------


async def backfill(feed: Feed, tag: str, backoff: Backoff, gap: bool) -> datetime | None:
    """Walk the tag timeline from the saved cursor minus the overlap up to now. `gap`: after a
    disconnect or a restart, counted as a gap detected, then backfilled. Returns the time from
    which the walk re-read the timeline whole (None when there was no cursor)."""
    cursor = feed.tags.get(tag)
    state = feed.ctx.state
    since = None
    feed.walked[tag] = set()
    if gap:
        state.gaps_detected += 1
    if cursor:
        since = (parse_time(cursor.get("last_created_at")) or datetime.now(UTC)) - timedelta(
            seconds=feed.opts.overlap_seconds
        )
        floor = snowflake_floor(cursor["min_id"], since)
        if floor is not None:
            await walk_forward(feed, tag, floor, backoff)
        else:
            await walk_back(feed, tag, since, backoff)
    else:
        await walk_back(feed, tag, first_run_start(feed), backoff)
    if gap:
        state.gaps_backfilled += 1
    return since


def snowflake_floor(min_id: str, since: datetime) -> str | None:
    """The lowest id a status created at `since` can have, when ids are Mastodon snowflakes;
    None when they are not (the caller re-walks by time with max_id instead)."""
    if not str(min_id).isdigit() or int(min_id) >> 16 < SNOWFLAKE_EPOCH_MS:
        return None
    floor = int(since.timestamp() * 1000) << 16
    return str(min(floor, int(min_id)))


def first_run_start(feed: Feed) -> datetime | None:
    """Where a tag with no cursor starts: the event's first day, a given time, or now."""
    start = feed.opts.backfill_from
    if start == "newest":
        return None
    if start == "event":
        event = feed.ctx.event
        return datetime.combine(event.start, day_time(0), tzinfo=event.tz).astimezone(UTC)
    return parse_time(start)


async def walk_forward(feed: Feed, tag: str, min_id: str, backoff: Backoff) -> None:
    """min_id pages, oldest page first, each committed with its cursor, until []."""
    while True:
        page = await fetch_page(feed, tag, {"min_id": min_id}, backoff)
        if not page:
            return
        top = max((i for i, _ in seen_in(page).ids), key=id_key, default=min_id)
        await save_statuses(feed, tag, page)
        if id_key(top) <= id_key(min_id):
            return  # the server ignored min_id: stop rather than loop
        min_id = top


async def walk_back(feed: Feed, tag: str, since: datetime | None, backoff: Backoff) -> None:
    """max_id pages from the newest back to `since` (one page when None); the cursor is saved
    once the walk is done, so a crash part-way walks it again."""
    max_id, newest = None, None
    while True:
        page = await fetch_page(feed, tag, {"max_id": max_id} if max_id else {}, backoff)
        if not page:
            break
        await save_statuses(feed, tag, page, advance=False)
        newest = newest or page
        ids = seen_in(page).ids
        if not ids:
            break
        oldest, created = min(ids, key=lambda pair: id_key(pair[0]))
        if since is None or created is None or created < since or oldest == max_id:
            break
        max_id = oldest
    if newest:
        await save(feed, tag, [], [], seen_in(newest), advance=True)


async def fetch_page(feed: Feed, tag: str, params: dict, backoff: Backoff) -> list[dict]:
    params = {"limit": feed.opts.page_limit, **params}
    payload, _ = await fetch_json(feed, f"/api/v1/timelines/tag/{tag}", params, backoff)
    page = page_statuses(payload)
    if tag in feed.walked:
        feed.walked[tag].update(str(s["id"]) for s in page)
    return page


def page_statuses(payload) -> list[dict]:
    """The statuses of a timeline answer: its objects with an id (a list of anything else is
    not a page). Pure."""
    page = payload if isinstance(payload, list) else []
    return [s for s in page if isinstance(s, dict) and isinstance(s.get("id"), str | int)]
