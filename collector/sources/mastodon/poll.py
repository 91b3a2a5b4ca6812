"""Mastodon polling: the tag timeline walked forward every poll_seconds, when there is no
stream (no token, streaming off, or the streaming server refuses).
"""

from __future__ import annotations

import time

from ..base import Stopping
from .backfill import backfill, walk_forward
from .deletes import missed_by_backfill, recheck_missing
from .instance import Feed


async def follow_polling(feed: Feed, tag: str) -> None:
    """No stream: walk the tag timeline forward every poll_seconds, re-walk the overlap now
    and then (a late-federated post gets an id below the cursor)."""
    ctx, backoff = feed.ctx, feed.ctx.backoff.fresh()
    ctx.state.set("polling")
    since = await backfill(feed, tag, backoff, gap=tag in feed.tags)
    await recheck_missing(feed, tag, missed_by_backfill(feed, tag, since))
    reconciled = time.monotonic()
    while True:
        ctx.state.set("polling")
        if not await ctx.sleep(feed.opts.poll_seconds):
            raise Stopping
        cursor = feed.tags.get(tag)
        if cursor is None or time.monotonic() - reconciled >= feed.opts.reconcile_seconds:
            since = await backfill(feed, tag, backoff, gap=False)
            await recheck_missing(feed, tag, missed_by_backfill(feed, tag, since))
            reconciled = time.monotonic()
        else:
            await walk_forward(feed, tag, cursor["min_id"], backoff)
