"""Mastodon streaming: connect, buffer, backfill, apply the buffer, go live (SOURCES.md §1.5);
again after every drop. The SSE wire format is sse.py's.
"""

from __future__ import annotations

import asyncio
import logging
import time

import httpx

from ..base import Backoff
from .backfill import backfill
from .deletes import log_failure, missed_by_backfill, recheck_missing
from .instance import Feed
from .poll import follow_polling
from .rest import error_text, hold_for_reset
from .save import save_events
from .sse import SSEEvent, StreamClosed, read_stream

log = logging.getLogger("collector.mastodon")


REFUSED = {400, 401, 403, 404}  # the streaming server will not serve us: poll instead


async def follow_stream(feed: Feed, tag: str) -> None:
    """§1.5: connect, buffer, backfill, apply the buffer, go live; again after every drop."""
    ctx = feed.ctx
    rest, retry = ctx.backoff.fresh(), ctx.backoff.fresh()
    dropped_at: float | None = None
    while True:
        response = await open_stream(feed, tag, retry)
        if response is None:
            return await follow_polling(feed, tag)
        connected = time.monotonic()
        if dropped_at is not None:
            ctx.state.disconnected_seconds += connected - dropped_at
        queue: asyncio.Queue = asyncio.Queue()
        reader = asyncio.ensure_future(read_stream(response, queue))
        checker = None
        try:
            since = await backfill(feed, tag, rest, gap=dropped_at is not None or tag in feed.tags)
            missing = missed_by_backfill(feed, tag, since)
            if missing:  # beside the live tail, which must not wait for it
                checker = asyncio.ensure_future(recheck_missing(feed, tag, missing))
                checker.add_done_callback(log_failure)
            ctx.state.set("streaming")  # live once the gap is filled, not before
            closed = await apply_live(feed, tag, queue)
        finally:
            # an unfinished re-check is redone after the next backfill
            tasks = [reader] + ([checker] if checker else [])
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        dropped_at = closed.at  # when the reader saw it, maybe during the backfill
        ctx.state.error(f"stream #{tag} dropped: {closed.reason}")
        log.info("mastodon %s #%s: %s; reconnecting", feed.host, tag, closed.reason)
        if dropped_at - connected < feed.opts.min_connected_seconds:
            await ctx.back_off(f"stream #{tag} dropped after {dropped_at - connected:.1f}s", retry)
        else:
            retry.reset()


async def open_stream(feed: Feed, tag: str, backoff: Backoff) -> httpx.Response | None:
    """A 200 event stream, or None when the server refuses to stream this tag to us."""
    ctx, url = feed.ctx, feed.stream_base + "/api/v1/streaming/hashtag"
    timeout = httpx.Timeout(feed.opts.request_timeout, read=feed.opts.watchdog_seconds)
    while True:
        await ctx.wait_for_budget()
        request = ctx.http.build_request(
            "GET", url, params={"tag": tag}, timeout=timeout,
            headers={**feed.headers(), "Accept": "text/event-stream"},
        )  # fmt: skip
        try:
            response = await ctx.http.send(request, stream=True)
        except httpx.TransportError as exc:
            await ctx.back_off(f"{url}: {type(exc).__name__}: {exc}", backoff)
            continue
        code = response.status_code
        if code == 200:
            return response
        await response.aread()
        await response.aclose()
        if code in REFUSED:
            ctx.state.error(f"streaming #{tag} refused: HTTP {code} {error_text(response)}")
            log.warning("mastodon %s: %s; polling instead", feed.host, ctx.state.last_error)
            return None
        if code == 429:
            hold_for_reset(feed, response)
        else:
            await ctx.back_off(f"{url}: HTTP {code}", backoff)


async def apply_live(feed: Feed, tag: str, queue: asyncio.Queue) -> StreamClosed:
    """Apply what the stream delivered (the buffer first), a batch per wake-up, until it ends."""
    while True:
        batch = [await queue.get()]
        while not queue.empty():
            batch.append(queue.get_nowait())
        await save_events(feed, tag, [e for e in batch if isinstance(e, SSEEvent)])
        closed = [e for e in batch if isinstance(e, StreamClosed)]
        if closed:
            return closed[0]
