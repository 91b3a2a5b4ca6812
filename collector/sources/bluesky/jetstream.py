"""Jetstream v1 over a websocket: connect with a cursor, read frames, batch them, save each
batch with the cursor that covers it, watch for silence, reconnect with backoff.

The frame → change step (`parse_frame`) is pure; `fetch_jetstream` owns the socket. Gap
decisions (a cursor older than the replay window, a jump in time_us after a reconnect) are
the orchestrator's: this module reports them through the `Live` protocol it is handed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlencode

import websockets
from websockets.asyncio.client import connect

from core.errors import ParseError, SourceError

from ... import jsontext
from ...normalise import Change, Delete
from ...store import Malformed
from ..base import SourceContext, Stopping
from .parse import MAX_TIME_US, POST, PROFILE, at_uri, parse_jetstream

log = logging.getLogger("collector.bluesky")
MAX_HANDLES = 100_000


class Live(Protocol):
    """What the Jetstream reader needs from the orchestrator."""

    def resume_cursor(self) -> int | None: ...
    def first_frame(self, requested: int | None, time_us: int) -> None: ...
    async def save_stream(self, changes, malformed, time_us: int | None) -> None: ...


@dataclass
class Options:
    url: str
    buffer_us: int = 5_000_000
    watchdog: float = 60.0
    batch_seconds: float = 0.3
    batch_size: int = 500
    idle_save: float = 10.0  # save the cursor alone this often when nothing matched


def jetstream_url(base: str, cursor_us: int | None) -> str:
    params = [("wantedCollections", POST), ("wantedCollections", PROFILE)]
    if cursor_us is not None:
        params.append(("cursor", str(cursor_us)))
    return f"{base}{'&' if '?' in base else '?'}{urlencode(params)}"


def parse_frame(
    raw: str | bytes, hashtags: set[str], handles: dict[str, str]
) -> tuple[Change | None, Malformed | None, int | None]:
    """One text frame → (change or None, malformed or None, its time_us if it has one)."""
    if isinstance(raw, bytes):
        return None, Malformed("jetstream", "binary frame", raw.decode("utf-8", "replace")), None
    try:
        event = jsontext.loads(raw)
    except ValueError as exc:
        return None, Malformed("jetstream", f"invalid JSON: {exc}", raw), None
    time_us = frame_time_us(event)
    try:
        return parse_jetstream(event, hashtags, handles), None, time_us
    except ParseError as exc:
        return None, Malformed(_identity(event), str(exc), raw), time_us


def frame_time_us(event) -> int | None:
    """The frame's time_us when it is one (the cursor moves only to a time it can be)."""
    time_us = event.get("time_us") if isinstance(event, dict) else None
    return time_us if type(time_us) is int and 0 < time_us < MAX_TIME_US else None


def _identity(event) -> str:
    if not isinstance(event, dict) or not isinstance(event.get("did"), str):
        return "jetstream"
    commit = event.get("commit") if isinstance(event.get("commit"), dict) else {}
    rkey = commit.get("rkey")
    return at_uri(event["did"], rkey) if isinstance(rkey, str) and rkey else event["did"]


@dataclass
class _Batch:
    changes: list[Change] = field(default_factory=list)
    malformed: list[Malformed] = field(default_factory=list)
    time_us: int | None = None
    frames: int = 0
    started: float = field(default_factory=time.monotonic)


async def fetch_jetstream(ctx: SourceContext, opts: Options, live: Live) -> None:
    """Read Jetstream until ctx.stopping; every drop or silence reconnects with backoff."""
    handles: dict[str, str] = {}
    seen = _Recent()  # malformed frames already kept: a replay after a reconnect resends them
    dropped_at: float | None = None
    while not ctx.stopping.is_set():
        requested = live.resume_cursor()
        url = jetstream_url(opts.url, requested)
        try:
            async with connect(url, open_timeout=10, max_size=2**22, close_timeout=2) as ws:
                if dropped_at is not None:
                    ctx.state.disconnected_seconds += time.monotonic() - dropped_at
                _set_state(ctx, "streaming")
                why = await _read(ctx, ws, opts, live, requested, handles, seen)
        except websockets.InvalidStatus as exc:
            status = exc.response.status_code
            if 400 <= status < 500 and status != 429:
                raise SourceError(
                    "bluesky", url, f"Jetstream refused the connection ({status})"
                ) from exc
            why = f"Jetstream {opts.url} answered {status}"
        except (OSError, TimeoutError, websockets.WebSocketException) as exc:
            why = f"Jetstream {opts.url}: {type(exc).__name__}: {exc}"
        if ctx.stopping.is_set():
            break
        dropped_at = time.monotonic()
        try:  # a failing backfill (no credentials) stays visible while the stream goes on
            await ctx.back_off(why, show=ctx.state.state != "failing")
        except Stopping:
            break
    if dropped_at is not None:
        ctx.state.disconnected_seconds += time.monotonic() - dropped_at


def _set_state(ctx: SourceContext, state: str) -> None:
    """A failing backfill (no credentials) stays visible while the stream goes on."""
    if ctx.state.state != "failing":
        ctx.state.set(state)


async def _read(ctx, ws, opts: Options, live: Live, requested, handles, seen) -> str:
    """Frames of one connection, saved in batches; returns why it ended (stop or silence)."""
    batch, last_frame, last_save, first = _Batch(), time.monotonic(), time.monotonic(), True
    try:
        while not ctx.stopping.is_set():
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=min(opts.batch_seconds, 0.25))
            except TimeoutError:
                raw = None
            now = time.monotonic()
            if raw is not None:
                last_frame = now
                time_us = _take(ctx, batch, raw, handles, seen)
                if first and time_us is not None:
                    first = False
                    ctx.backoff.reset()
                    live.first_frame(requested, time_us)
            if _due(batch, opts, now, last_save):
                await _flush(ctx, live, batch)
                batch, last_save = _Batch(), now
            if now - last_frame > opts.watchdog:
                ws.transport.abort()  # a silent server would hold a closing handshake too
                return f"Jetstream silent for {opts.watchdog:g} s: reconnecting"
        return "stopping"
    finally:
        if batch.frames:
            await _flush(ctx, live, batch)


class _Recent:
    """The last few thousand malformed frames, so each is kept and counted once."""

    def __init__(self, size: int = 4096) -> None:
        self.size, self.keys = size, OrderedDict()

    def first_time(self, raw: str) -> bool:
        key = hash(raw)
        if key in self.keys:
            return False
        self.keys[key] = None
        if len(self.keys) > self.size:
            self.keys.popitem(last=False)
        return True


def _take(ctx: SourceContext, batch: _Batch, raw, handles, seen: _Recent) -> int | None:
    if len(handles) > MAX_HANDLES:
        handles.clear()
    change, bad, time_us = parse_frame(raw, ctx.hashtags, handles)
    batch.frames += 1
    if ctx.recorded is not None and (change is not None or bad is not None):
        _record(ctx, raw, change)
    if change is not None:
        batch.changes.append(change)
    if bad is not None and seen.first_time(bad.raw):
        log.warning("Could not process bluesky:%s: %s", bad.identity, bad.reason)
        batch.malformed.append(bad)
    if time_us is not None:
        batch.time_us = time_us
    return time_us


def _record(ctx: SourceContext, raw, change) -> None:
    """A frame that mattered, for the recording: deletes only when they hit an archived post."""
    try:
        payload = jsontext.loads(raw)  # too deep: kept as its text, as a broken frame is
    except (TypeError, ValueError):
        payload = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
    more = {"deletes": change.uri} if isinstance(change, Delete) else {}
    ctx.record("jetstream", payload, "jetstream", **more)


def _due(batch: _Batch, opts: Options, now: float, last_save: float) -> bool:
    if not batch.frames:
        return False
    if batch.changes or batch.malformed:
        return now - batch.started >= opts.batch_seconds or batch.frames >= opts.batch_size
    return now - last_save >= opts.idle_save


async def _flush(ctx: SourceContext, live: Live, batch: _Batch) -> None:
    """Save one batch; the saver counts it (received, malformed, last post), not this reader."""
    await live.save_stream(batch.changes, batch.malformed, batch.time_us)
