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

from core.items import format_time

from ..base import SourceContext, Stopping
from .fetch import Budget, RateLimited, Transient, fetch_page
from .options import Options, options
from .parse import parse_page

log = logging.getLogger("collector.flickr")
RESULT_CAP = 4000


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
    page = 1
    while not ctx.stopping.is_set():
        photos, pages = await fetch_page(ctx, opts, budget, low, page)
        items, malformed, newest = parse_page(photos, cursor.setdefault("seen", {}))
        watermark = max(watermark, newest)
        cursor.update(min_upload=watermark, clock=format_time(datetime.now(UTC)))
        if rescan and page >= pages:
            cursor["rescan"] = int(time.time())
        cursor["seen"] = _prune(cursor["seen"], watermark - opts.overlap)
        await ctx.save(items, cursor, malformed)
        ctx.cursor = cursor
        if not photos or page >= pages:
            return
        if page >= max_pages:  # Flickr shows the first 4,000 results only: restart from here
            if newest <= low:
                log.warning("%s: over %d photos uploaded in one second", ctx.key, RESULT_CAP)
                return
            low, page = newest, 1
            continue
        page += 1


def _prune(seen: dict[str, list], floor: int) -> dict[str, list]:
    """Keep the cursor small: only ids the next poll's overlap can return again."""
    return {pid: m for pid, m in seen.items() if m and m[0] >= floor}
