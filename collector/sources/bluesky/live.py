"""Bluesky, live: Jetstream for the stream, authenticated searchPosts for the gaps it can't replay.

`run(ctx)` runs two tasks over one cursor. The Jetstream reader (jetstream.py) saves each
batch with `{"time_us", "clock"}` of the last frame it processed, and resumes from `time_us`
minus a buffer. A gap Jetstream cannot replay (a saved cursor older than the replay window, a
jump in time_us after a reconnect, or a first start with `backfill_from`) is recorded in the
same cursor as `"backfill": {"since", "until"}` and walked with searchPosts (search.py);
the key is dropped once the walk is done, so a crash mid-backfill redoes it after a restart.

Config keys (the source's entry in event.yaml), with their defaults in DEFAULTS below.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from core.errors import SourceError
from core.items import format_time, parse_time

from ...enrich.appview import AppView
from ...enrich.gaps import check_gap
from ..base import SourceContext, Stopping
from .jetstream import Options, fetch_jetstream
from .search import CredentialsError, Session, fetch_backfill

log = logging.getLogger("collector.bluesky")

DEFAULTS: dict[str, Any] = {
    "jetstream": "wss://jetstream1.us-east.bsky.network/subscribe",  # Jetstream v1 /subscribe
    "pds": "https://bsky.social",  # where createSession and searchPosts are called
    "identifier_env": "AFA_BLUESKY_HANDLE",  # env var holding the account's handle or DID
    "password_env": "AFA_BLUESKY_APP_PASSWORD",  # env var holding its app password
    "replay_window_hours": 24.0,  # how far back Jetstream replays; older cursors need search
    "cursor_buffer_seconds": 5.0,  # resume this far before the saved cursor (dupes are dropped)
    "gap_threshold_seconds": 300.0,  # first frame this much after the cursor = Jetstream clamped
    "watchdog_seconds": 60.0,  # no frame for this long: reconnect
    "batch_seconds": 0.3,  # frames gathered into one transaction
    "backfill_overlap_seconds": 300.0,  # search starts this far before the gap
    "backfill_from": None,  # ISO time: on a first start, search back to it
    "appview": "https://public.api.bsky.app",  # getProfiles / getPosts, unauthenticated
    "hydrate_seconds": 2.0,  # the longest a post waits for its author's profile
    "profile_ttl_seconds": 3600.0,  # a known profile is looked up again after this
}


def source_config(config: dict[str, Any]) -> dict[str, Any]:
    unknown = set(config) - set(DEFAULTS) - {"type", "key", "hashtags"}
    if unknown:
        log.warning("bluesky: unknown config keys ignored: %s", ", ".join(sorted(unknown)))
    return {**DEFAULTS, **{k: v for k, v in config.items() if v is not None}}


def _us_to_time(time_us: int) -> datetime:
    return datetime.fromtimestamp(time_us / 1_000_000, UTC)


def _now_us() -> int:
    return int(time.time() * 1_000_000)


@dataclass
class Window:
    since: datetime
    until: datetime | None

    def merge(self, other: Window) -> Window:
        until = None if self.until is None or other.until is None else max(self.until, other.until)
        return Window(min(self.since, other.since), until)

    def as_dict(self) -> dict[str, str | None]:
        return {"since": format_time(self.since), "until": format_time(self.until)}


class BlueskyLive:
    """The shared cursor of both tasks, the gap decisions, and the one lock around saving."""

    def __init__(self, ctx: SourceContext) -> None:
        self.ctx = ctx
        self.cfg = source_config(ctx.config)
        self.opts = Options(
            url=self.cfg["jetstream"],
            buffer_us=int(float(self.cfg["cursor_buffer_seconds"]) * 1_000_000),
            watchdog=float(self.cfg["watchdog_seconds"]),
            batch_seconds=float(self.cfg["batch_seconds"]),
        )
        self.overlap = timedelta(seconds=float(self.cfg["backfill_overlap_seconds"]))
        self.lock = asyncio.Lock()
        self.wanted = asyncio.Event()
        self.pending_gaps = 0
        self.open_gap = False  # disconnected, and no frame has shown the replay covered it yet
        cursor = ctx.cursor or {}
        self.time_us: int | None = cursor.get("time_us")
        self.backfill: Window | None = None
        if isinstance(cursor.get("backfill"), dict):  # a backfill a crash interrupted
            saved = cursor["backfill"]
            self.schedule(Window(parse_time(saved["since"]), parse_time(saved.get("until"))))
        elif ctx.cursor is None and self.cfg["backfill_from"]:
            self.schedule(Window(parse_time(str(self.cfg["backfill_from"])), None))

    # -- gap decisions (called by the Jetstream reader) -----------------------------------

    def resume_cursor(self) -> int | None:
        """Where to reconnect: the saved time_us less the buffer; None (the live tail) when
        the cursor is older than Jetstream's replay window, after scheduling a search."""
        if self.time_us is None:
            return None
        if not self.open_gap:  # one gap per disconnection, however many attempts it takes
            self.ctx.state.gaps_detected += 1
            self.open_gap = True
        window_us = float(self.cfg["replay_window_hours"]) * 3600 * 1_000_000
        if _now_us() - self.time_us > window_us:
            now = datetime.now(UTC)
            since = _us_to_time(self.time_us) - self.overlap
            self.schedule(Window(since, now + self.overlap), count=False)
            return None
        return max(self.time_us - self.opts.buffer_us, 0)

    def first_frame(self, requested: int | None, time_us: int) -> None:
        """The first frame after a resume: a jump past the cursor means Jetstream clamped it."""
        if requested is None or not self.open_gap:
            return
        self.open_gap = False
        resumed_at = requested + self.opts.buffer_us
        if time_us - resumed_at > float(self.cfg["gap_threshold_seconds"]) * 1_000_000:
            log.warning("Jetstream resumed %.0f s after the cursor: searching the gap",
                        (time_us - resumed_at) / 1e6)  # fmt: skip
            since, until = _us_to_time(resumed_at) - self.overlap, _us_to_time(time_us)
            self.schedule(Window(since, until + self.overlap), count=False)
        else:
            self.ctx.state.gaps_backfilled += 1  # the replay covered the disconnection

    def schedule(self, window: Window, count: bool = True) -> None:
        self.open_gap = False  # from here the search owns this gap
        self.backfill = window if self.backfill is None else self.backfill.merge(window)
        self.pending_gaps += 1
        if count:
            self.ctx.state.gaps_detected += 1
        self.wanted.set()

    # -- saving: one cursor, one lock ------------------------------------------------------

    def cursor(self, time_us: int | None) -> dict[str, Any]:
        clock = format_time(_us_to_time(time_us)) if time_us is not None else None
        cursor: dict[str, Any] = {"time_us": time_us, "clock": clock}
        if self.backfill is not None:
            cursor["backfill"] = self.backfill.as_dict()
        return cursor

    async def save_stream(self, changes, malformed, time_us: int | None) -> None:
        async with self.lock:
            time_us = time_us if time_us is not None else self.time_us
            await self.ctx.save(changes, self.cursor(time_us), malformed)
            self.time_us = time_us

    async def save_search(self, changes, malformed) -> None:
        async with self.lock:
            await self.ctx.save(changes, self.cursor(self.time_us), malformed)

    async def finish_backfill(self, window: Window, gaps: int) -> None:
        async with self.lock:
            if self.backfill == window:
                self.backfill = None
            await self.ctx.save([], self.cursor(self.time_us))
        self.pending_gaps -= gaps
        self.ctx.state.gaps_backfilled += gaps

    # -- the search task -------------------------------------------------------------------

    async def backfill_loop(self) -> None:
        ctx = self.ctx
        names = (self.cfg["identifier_env"], self.cfg["password_env"])
        session = Session(self.cfg["pds"], *(ctx.secrets(n) for n in names), names=names)
        while not ctx.stopping.is_set():
            if not self.wanted.is_set() and not await self._wait_wanted():
                return
            self.wanted.clear()
            window, gaps = self.backfill, self.pending_gaps
            if window is None:
                continue
            appview = AppView(ctx.http, str(self.cfg["appview"]))  # deletes the gap hid
            await check_gap(ctx, appview, window.since, window.until or datetime.now(UTC),
                            self.save_search)  # fmt: skip
            try:
                await fetch_backfill(ctx, session, window.since, window.until, self.save_search)
            except Stopping:
                return
            except CredentialsError as exc:
                log.error("%s; Jetstream goes on without the backfill", exc)
                ctx.state.error(exc)
                ctx.state.set("failing")
                return
            except SourceError as exc:
                self.wanted.set()
                try:
                    await ctx.back_off(str(exc), show=False)
                except Stopping:
                    return
                continue
            await self.finish_backfill(window, gaps)

    async def _wait_wanted(self) -> bool:
        stop = asyncio.create_task(self.ctx.stopping.wait())
        want = asyncio.create_task(self.wanted.wait())
        await asyncio.wait({stop, want}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        want.cancel()
        return not self.ctx.stopping.is_set()


async def run(ctx: SourceContext) -> None:
    """Stream Jetstream and backfill its gaps with searchPosts until ctx.stopping is set."""
    live = BlueskyLive(ctx)
    tasks = [
        asyncio.create_task(fetch_jetstream(ctx, live.opts, live), name="jetstream"),
        asyncio.create_task(live.backfill_loop(), name="searchPosts"),
    ]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        await tasks[0]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if ctx.state.state != "failing":
            ctx.state.set("stopped")
