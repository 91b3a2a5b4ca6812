"""Mastodon saving: statuses and stream events parsed into changes, handed with the cursor that
covers them to ctx.save; the cursor is adopted once committed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

from core.errors import ParseError
from core.items import Item, format_time

from ... import jsontext
from ...normalise import SkipItem
from ...store import Malformed
from ..base import SourceContext
from .instance import Feed, Seen, id_key, remember, seen_in
from .parse import SOURCE, is_local_id, parse_status, parse_stream_event
from .sse import SSEEvent

log = logging.getLogger("collector.mastodon")


LOCAL_ID = re.compile(r'"?[0-9A-Za-z_-]{1,64}"?')  # what a delete event's data may be


# -- saving -------------------------------------------------------------------------------


async def save_statuses(feed: Feed, tag: str, page: list[dict], advance: bool = True) -> None:
    items, bad, kept = parse_statuses(page, feed.host)
    for status in kept:
        feed.ctx.record("update", status, feed.host)
    await save(feed, tag, items, bad, seen_in(page), advance)


async def save_events(feed: Feed, tag: str, events: list[SSEEvent]) -> None:
    for event in events:
        _record_event(feed.ctx, event, feed.host)
    changes, bad, seen = parse_events(events, feed.host)
    if changes or bad:
        await save(feed, tag, changes, bad, seen, advance=bool(seen.ids))


def _record_event(ctx: SourceContext, event: SSEEvent, host: str) -> None:
    """A stream event for the recording: a status as its JSON object, a delete's bare id."""
    if ctx.recorded is None:
        return
    payload: Any = event.data
    if event.name in ("update", "status.update") and not event.error:
        try:
            payload = jsontext.loads(event.data)
        except ValueError:
            pass
    ctx.record(event.name, payload, host)


def parse_statuses(page: list[dict], host: str) -> tuple[list[Item], list[Malformed], list]:
    """A timeline page (newest first) → its items, oldest first (the live tail reads in
    order), the statuses that could not be read, and the statuses that gave either (what a
    recording keeps: not the ones deliberately skipped). Pure."""
    items, bad, kept = [], [], []
    for status in reversed(page):
        try:
            items.append(parse_status(status, host))
        except SkipItem:
            continue
        except ParseError as exc:
            bad.append(_malformed(host, _status_id(status), str(exc), _json_text(status)))
        kept.append(status)
    return items, bad, kept


def parse_events(events: list[SSEEvent], host: str) -> tuple[list, list[Malformed], Seen]:
    """Stream events → (changes, malformed events, the statuses seen for the cursor). Pure."""
    changes, bad, seen = [], [], Seen()
    for event in events:
        if event.error:
            bad.append(_malformed(host, _id_in(event.data), event.error, event.data))
            continue
        if event.name == "delete" and not LOCAL_ID.fullmatch(event.data.strip()):
            bad.append(_malformed(host, None, "delete without a bare id", event.data))
            continue
        try:
            parsed = parse_stream_event(event.name, event.data, host)
        except SkipItem:
            continue
        except ParseError as exc:
            bad.append(_malformed(host, _id_in(event.data), str(exc), event.data))
            continue
        if parsed.change is not None:
            changes.append(parsed.change)
        if parsed.item is not None:
            seen.ids.append((parsed.item.local_id, parsed.item.created_at))
    return changes, bad, seen


async def save(feed: Feed, tag: str, changes: list, bad: list[Malformed], seen: Seen,
               advance: bool) -> None:  # fmt: skip
    """Hand changes and the cursor covering them to ctx.save; adopt the cursor once committed."""
    ctx = feed.ctx
    async with feed.lock:
        tag_cursor, clock = _advance(feed, tag, seen) if advance else (None, feed.clock)
        snapshot = feed.snapshot(tag, tag_cursor, clock) if tag_cursor else None
        await _commit(ctx.save(changes, snapshot, bad))
        if tag_cursor:
            feed.tags[tag], feed.clock = tag_cursor, clock
        remember(feed, tag, changes)
    for bad_one in bad:  # counted by the saver, with the batch; logged here with the reason
        ctx.state.error(f"Could not process {bad_one.identity}: {bad_one.reason}")
        log.warning("Could not process %s: %s", bad_one.identity, bad_one.reason)


def _advance(feed: Feed, tag: str, seen: Seen) -> tuple[dict | None, str | None]:
    old = feed.tags.get(tag) or {}
    now = datetime.now(UTC)  # a created_at in the future (a remote server's clock) is now
    ids = [(i, min(c, now) if c else c) for i, c in seen.ids]
    best = max(ids, key=lambda pair: id_key(pair[0]), default=None)
    clock = max([feed.clock or "", *(format_time(c) or "" for _, c in ids if c)]) or None
    if best is None or (old and id_key(best[0]) <= id_key(old["min_id"])):
        return (dict(old) if old else None), clock
    created = format_time(best[1]) or old.get("last_created_at")
    return {"min_id": best[0], "last_created_at": created}, clock


async def _commit(saving) -> int:
    """Let a commit (and its publish) finish even when the task is cancelled meanwhile."""
    task = asyncio.ensure_future(saving)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await task
        raise


def _malformed(host: str, local_id: str | None, reason: str, raw: str) -> Malformed:
    identity = f"{SOURCE}:{host}/{local_id}" if local_id else f"{SOURCE}:{host}"
    return Malformed(identity, reason, raw)


def _status_id(status) -> str | None:
    local_id = status.get("id") if isinstance(status, dict) else None
    return str(local_id) if is_local_id(local_id) else None


def _id_in(data: str) -> str | None:
    match = re.search(r'"id"\s*:\s*"([^"]{1,64})"', data or "")
    return match.group(1) if match else None


def _json_text(value) -> str:
    return json.dumps(value, ensure_ascii=False)
