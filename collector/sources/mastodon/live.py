"""Mastodon, live: hashtag streaming (SSE) with a REST backfill after every (re)connect.

One task per hashtag. With a user token each tag follows the streaming server; on every
connect the stream's events are buffered while the tag timeline is walked forward with min_id
from the saved cursor minus a time overlap (SOURCES.md §1.5, the backdated-id trap of §1.3),
each page committed with its cursor; then the buffer is applied and the stream followed live.
Without a token, or when the streaming server refuses, the tag timeline is polled instead.
A `delete` sent while we were disconnected is never replayed: after a reconnect's backfill (and
a polling re-walk), the posts we archived from that tag in the window it re-read but that it did
not return are checked one by one with GET /api/v1/statuses/:id (SOURCES.md §1.5); a 404 or 410
is applied as the streamed `delete` would be, a 200 keeps the post, an error deletes nothing.

This module starts one task per tag and holds them together. The rest of the package:
instance.py (options, state and cursor of one instance), rest.py (the instance's configuration and one paced GET),
stream.py, poll.py, backfill.py, deletes.py (the re-check), save.py (changes and cursor to
ctx.save), parse.py (pure: payload → changes), sse.py (the event-stream wire format).
"""

from __future__ import annotations

import asyncio

from core.errors import SourceError

from ..base import SourceContext, Stopping
from .instance import Feed, Options
from .poll import follow_polling
from .rest import fetch_instance
from .stream import follow_stream


async def run(ctx: SourceContext) -> None:
    """Follow every configured hashtag of one instance until ctx.stopping is set."""
    try:
        opts = Options.from_context(ctx)
        token = ctx.secrets(opts.token_env) if opts.token_env else None
        feed = Feed(ctx, opts, token)
        feed.load_cursor(ctx.cursor)
        await fetch_instance(feed)
        await _supervise(ctx, [follow_tag(feed, tag) for tag in opts.hashtags])
    except SourceError as exc:
        ctx.state.set("failing")
        ctx.state.error(str(exc))
        raise
    except Stopping:
        pass
    ctx.state.set("stopped")


async def _supervise(ctx: SourceContext, coros) -> None:
    """Run the tag tasks until stop; the first one to fail takes the others down with it."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    stopper = asyncio.ensure_future(ctx.stopping.wait())
    try:
        pending = set(tasks)
        while pending and not stopper.done():
            done, pending = await asyncio.wait(
                pending | {stopper}, return_when=asyncio.FIRST_COMPLETED
            )
            pending.discard(stopper)
            for task in done - {stopper}:
                if not task.cancelled() and isinstance(task.exception(), Exception):
                    if not isinstance(task.exception(), Stopping):
                        raise task.exception()
    finally:
        for task in [*tasks, stopper]:
            task.cancel()
        await asyncio.gather(*tasks, stopper, return_exceptions=True)


async def follow_tag(feed: Feed, tag: str) -> None:
    if feed.token and feed.opts.streaming:
        await follow_stream(feed, tag)
    else:
        await follow_polling(feed, tag)
