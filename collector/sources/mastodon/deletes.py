"""Mastodon deletes missed while disconnected: a `delete` is never replayed, so after a
reconnect's backfill (and a polling re-walk) the posts archived from that tag in the window it
re-read but that it did not return are checked one by one with GET /api/v1/statuses/:id
(SOURCES.md §1.5); a 404 or 410 is applied as the streamed `delete` would be, a 200 keeps the
post, an error deletes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from ...normalise import Delete
from ..base import Backoff, Stopping
from .instance import Feed, Seen
from .rest import error_text, json_or_none, note_budget, paced_get
from .save import save

log = logging.getLogger("collector.mastodon")


def missed_by_backfill(feed: Feed, tag: str, since: datetime | None) -> list[str]:
    """Archived statuses of this tag created in the window the backfill re-read (bounded by
    recheck_minutes and recheck_max_posts, newest first) that it did not return."""
    walked = feed.walked.pop(tag, set())
    if since is None or not feed.opts.recheck_deletes:
        return []
    floor = max(since, datetime.now(UTC) - timedelta(minutes=feed.opts.recheck_minutes))
    recent = feed.recent.get(tag) or {}
    missing = [(c, i) for i, c in recent.items() if c >= floor and i not in walked]
    missing.sort(reverse=True)
    return [local_id for _, local_id in missing[: max(feed.opts.recheck_max_posts, 0)]]


async def recheck_missing(feed: Feed, tag: str, local_ids: list[str]) -> int:
    """GET each status: gone (404/410) → the streamed delete's path; there (200) → kept and
    not asked again; anything else → deleted nothing. Returns how many were gone."""
    backoff, gone = feed.ctx.backoff.fresh(), 0
    for local_id in local_ids:
        verdict = await fetch_status_gone(feed, local_id, backoff)
        if verdict:
            await save(feed, tag, [Delete(feed.host, local_id=local_id)], [], Seen(), False)
            gone += 1
        elif verdict is False:
            (feed.recent.get(tag) or {}).pop(local_id, None)
    if gone:
        log.info("%s #%s: %d post%s deleted while disconnected",
                 feed.host, tag, gone, "" if gone == 1 else "s")  # fmt: skip
    return gone


async def fetch_status_gone(feed: Feed, local_id: str, backoff: Backoff) -> bool | None:
    """True when the instance says the status is gone (404 with Mastodon's JSON error, or 410),
    False when it serves it, None for any other answer; 429, 5xx and network errors retry."""
    url = f"{feed.opts.instance}/api/v1/statuses/{local_id}"
    response = await paced_get(feed, url, None, backoff, show=False)  # the stream is live meanwhile
    note_budget(feed, response)
    backoff.reset()
    code = response.status_code
    if code == 200 or code == 410:
        return code == 410
    if code == 404 and isinstance(json_or_none(response), dict):
        return True  # {"error":"Record not found"}; a proxy's HTML 404 proves nothing
    feed.ctx.state.error(f"{url}: HTTP {code} {error_text(response)}; not deleted")
    log.warning("mastodon: %s", feed.ctx.state.last_error)
    return None


def log_failure(task: asyncio.Task) -> None:
    exc = None if task.cancelled() else task.exception()
    if exc is not None and not isinstance(exc, Stopping):
        log.error("mastodon: re-checking deletes failed: %s: %s", type(exc).__name__, exc)
