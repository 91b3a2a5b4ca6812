"""Flickr, live: poll flickr.photos.search by tag and upload date within the key's hourly budget.

Gap-free as SOURCES.md §4 says: `sort=date-posted-asc&min_upload_date=<watermark - overlap>`,
paged until `page >= pages`, deduplicated by photo id (the archive's UNIQUE uri does the rest).
A query stops at Flickr's 4,000-result cap and starts again from the newest upload it reached.
Tags are added after upload and the index lags, so the whole event window is re-scanned on a
slow cycle. fetch.py talks to the network, parse.py parses, options.py reads the entry.

Config (event.yaml): tags, tag_mode (any|all), key_env (default AFA_FLICKR_KEY), base_url,
per_page, interval (s), overlap (s), budget_per_hour, rescan_seconds.
Cursor: {"min_upload": epoch, "seen": {id: [dateupload, lastupdate]}, "clock": iso, "rescan": epoch}.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from core.items import Item, format_time

from ...enrich.answers import photo_info
from ...store import Malformed
from ..base import SourceContext, Stopping
from .fetch import Budget, RateLimited, Transient, fetch_info, fetch_page
from .options import Options, options
from .parse import parse_page

log = logging.getLogger("collector.flickr")
RESULT_CAP = 4000
RECHECK_MAX = 50  # getInfo calls per pass at most (the rest wait for the next pass)


async def run(ctx: SourceContext) -> None:
    opts = options(ctx)
    budget = Budget(opts.budget_per_hour)
    try:
        while not ctx.stopping.is_set():
            ctx.state.set("polling")
            try:
                await poll(ctx, opts, budget)
                ctx.backoff.reset()
            except RateLimited:
                await ctx.wait_for_budget()
                continue
            except Transient as exc:
                await ctx.back_off(str(exc), down=True)
                continue
            if not await ctx.sleep(opts.interval):
                return
    except Stopping:
        return


async def poll(ctx: SourceContext, opts: Options, budget: Budget) -> None:
    """One pass: from the watermark (or the event window on a re-scan) to the newest photo."""
    cursor = dict(ctx.cursor or {})
    rescan = time.time() - float(cursor.get("rescan", 0)) >= opts.rescan_seconds
    watermark = int(cursor.get("min_upload", opts.since))
    low = opts.since if rescan else max(watermark - opts.overlap, opts.since)
    max_pages = max(RESULT_CAP // opts.per_page, 1)
    page, covered = 1, _covered(cursor, low)  # what this pass must return again
    while not ctx.stopping.is_set():
        photos, pages = await fetch_page(ctx, opts, budget, low, page)
        items, malformed, newest = parse_page(photos, cursor.setdefault("seen", {}))
        _record(ctx, photos, items, malformed)
        covered -= {str(p.get("id")) for p in photos if isinstance(p, dict)}
        watermark = max(watermark, newest)
        cursor.update(min_upload=watermark, clock=format_time(datetime.now(UTC)))
        if rescan and page >= pages:
            cursor["rescan"] = int(time.time())
        cursor["seen"] = _prune(cursor["seen"], watermark - opts.overlap)
        await ctx.save(items, cursor, malformed)
        ctx.cursor = cursor
        if not photos or page >= pages:
            await recheck_missing(ctx, opts, budget, cursor, sorted(covered))
            return
        if page >= max_pages:  # Flickr shows the first 4,000 results only: restart from here
            if newest <= low:
                log.warning("%s: over %d photos uploaded in one second", ctx.key, RESULT_CAP)
                return
            low, page = newest, 1
            continue
        page += 1


def _covered(cursor: dict, low: int) -> set[str]:
    """The photos seen before whose upload time this pass searches again."""
    return {pid for pid, mark in (cursor.get("seen") or {}).items() if mark and mark[0] >= low}


def _record(
    ctx: SourceContext, photos: list, items: list[Item], malformed: list[Malformed]
) -> None:
    """The photos that were new or changed, for a recording (it has the others already)."""
    if ctx.recorded is None:
        return
    wanted = {i.local_id for i in items} | {m.identity.split(":", 1)[-1] for m in malformed}
    for photo in photos:
        if str(photo.get("id", "?") if isinstance(photo, dict) else "?") in wanted:
            ctx.record("photo", photo, "flickr")


async def recheck_missing(
    ctx: SourceContext, opts: Options, budget: Budget, cursor: dict, missing: list[str]
) -> None:
    """Photos a full pass no longer returned in a window it covers: deleted, made private, or
    untagged. flickr.photos.getInfo tells (error 1: not found); the gone ones are retracted."""
    gone = []
    for pid in missing[:RECHECK_MAX]:
        answer = await fetch_info(ctx, opts, budget, pid)
        if answer is None:
            return  # stopping, or Flickr failing: the next pass asks again
        ctx.record("photos.getInfo", answer, "flickr", request={"photo_id": pid})
        gone += photo_info(answer, pid)
    if gone:
        log.info("%s: %d photo(s) no longer on Flickr: retracted", ctx.key, len(gone))
        for delete in gone:
            cursor.get("seen", {}).pop(delete.local_id, None)
        await ctx.save(gone, cursor)


def _prune(seen: dict[str, list], floor: int) -> dict[str, list]:
    """Keep the cursor small: only ids the next poll's overlap can return again."""
    return {pid: m for pid, m in seen.items() if m and m[0] >= floor}
