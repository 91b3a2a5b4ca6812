"""RSS and Atom feeds: polled with conditional GET, parsed by feedparser, sanitised by us.

`fetch.fetch_feed` talks to the network (ETag / Last-Modified revalidation, 301 moves the stored
URL, 410 stops the source); `parse.parse_feed` is pure: bytes → Items. This module polls: new or
changed entries are saved with the validators that cover them.

Config (event.yaml): url, interval (s, default 300), name (shown as the origin).
Cursor: {"url", "etag", "modified", "seen": {identity: content hash}, "clock"}.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from datetime import UTC, datetime

from core.errors import SourceError
from core.items import Item, format_time

from ...sanitise import safe_url
from ...store import Malformed
from ..base import SourceContext, Stopping
from .fetch import NotWellFormed, Transient, fetch_feed
from .parse import read_feed

log = logging.getLogger("collector.feeds")
SEEN_LIMIT = 1000
BOZO_RETRIES = 3  # a feed that stays malformed this many polls is read as it is


async def run(ctx: SourceContext) -> None:
    ctx.warn_unknown_options({"url", "interval", "request_timeout"}, log)
    url = str(ctx.config.get("url") or "")
    if not safe_url(url):
        raise SourceError(ctx.key, url or "event.yaml", "a feed source needs an http(s) url")
    interval = float(ctx.config.get("interval", 300))
    strikes = 0
    try:
        while not ctx.stopping.is_set():
            ctx.state.set("polling")
            try:
                await poll(ctx, url, accept_bozo=strikes >= BOZO_RETRIES)
                ctx.backoff.reset()
                strikes = 0
            except Transient as exc:  # NotWellFormed too: maybe a cut response
                strikes += isinstance(exc, NotWellFormed)
                await ctx.back_off(str(exc), down=True)
                continue
            if not await ctx.sleep(interval):
                return
    except Stopping:
        return


async def poll(ctx: SourceContext, config_url: str, accept_bozo: bool = False) -> int:
    """One revalidation; new or changed entries are saved with the new validators. Returns
    how many entries were handed to the archive.

    A document that is not well formed may be a cut or truncated response (a half entry would
    be archived and its ETag would hide the rest), so it is retried before its entries are
    taken as they are."""
    cursor = dict(ctx.cursor or {})
    url = cursor.get("url") or config_url
    fetched = await fetch_feed(ctx, url, cursor.get("etag"), cursor.get("modified"))
    cursor.update(url=fetched.url, etag=fetched.etag, modified=fetched.modified,
                  clock=format_time(datetime.now(UTC)))  # fmt: skip
    items: list[Item] = []
    malformed: list[Malformed] = []
    if fetched.body is not None:
        found, malformed, bozo = read_feed(
            fetched.body, config_url, content_type=fetched.content_type
        )
        if bozo and not accept_bozo:
            raise NotWellFormed(f"feed is not well formed ({bozo})")
        if found or malformed:
            body = base64.b64encode(fetched.body).decode("ascii")  # bytes as sent: any charset
            ctx.record("document", {"body_base64": body, "content_type": fetched.content_type},
                       config_url)  # fmt: skip
        seen = dict(cursor.get("seen") or {})
        for item in found:
            digest = _digest(item)
            if seen.get(item.uri) != digest:
                items.append(item)
                seen[item.uri] = digest
        cursor["seen"] = dict(list(seen.items())[-SEEN_LIMIT:])
    elif ctx.cursor and ctx.cursor.get("url") == fetched.url:
        return 0  # 304 and nothing moved: nothing to commit
    await ctx.save(items, cursor, malformed)
    ctx.cursor = cursor
    return len(items)


def _digest(item: Item) -> str:
    content = [item.html, item.text, item.tags, [m.url for m in item.media], item.url]
    return hashlib.sha1(json.dumps(content).encode()).hexdigest()[:16]
