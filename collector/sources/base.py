"""The contract between a live source and the collector's runner.

Each live source module exposes `async def run(ctx: SourceContext) -> None`, which retrieves
(`fetch_*`: network, cursors, rate limits, streaming) and parses (`parse_*`: pure) until
`ctx.stopping` is set. It hands parsed changes and the cursor that covers them to `ctx.save`,
which commits both in one transaction and then publishes: the source never touches SQLite or
Redis itself. It reports what it is doing through `ctx.state`, which the runner persists for
`python -m collector status` and the completeness report.

Errors: a source raises `core.errors.SourceError` for a configuration problem it cannot fix by
retrying (401, unknown tag, missing token); the runner marks it failing and leaves the other
sources running. Transient failures (network, 5xx, 429) are handled inside the source with
`ctx.backoff` and `ctx.sleep`, which wake up early when the collector stops.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx

from core.events import Event
from core.items import Item, format_time
from core.settings import Settings

from ..normalise import Change
from ..store import Malformed

STATES = ("starting", "streaming", "polling", "backing off", "rate limited", "failing", "stopped")


@dataclass
class SourceState:
    """What a source is doing and what it has seen: the status table and the completeness report."""

    state: str = "starting"
    last_post_at: str | None = None  # source time of the newest post received (UTC ISO)
    lag_seconds: float | None = None  # now - last_post_at when it arrived
    errors: int = 0
    last_error: str | None = None
    received: int = 0  # posts handed to the archive (duplicates included)
    malformed: int = 0
    gaps_detected: int = 0  # reconnects or cursor jumps after which a backfill ran
    gaps_backfilled: int = 0
    disconnected_seconds: float = 0.0
    rate_limited_seconds: float = 0.0
    since: float = field(default_factory=time.time)

    def set(self, state: str) -> None:
        if state not in STATES:
            raise ValueError(f"unknown source state {state!r}")
        self.state = state
        self.since = time.time()

    def error(self, exc: BaseException | str) -> None:
        self.errors += 1
        self.last_error = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"

    def count(self, changes: Iterable[Change], malformed: Iterable[Malformed] = ()) -> None:
        """Count one committed batch. Only the saver calls this (collect.py, or a test's), so a
        batch is counted once however the source reached it: stream, backfill or search."""
        items = [c for c in changes if isinstance(c, Item)]
        self.received += len(items)
        self.malformed += sum(1 for _ in malformed)
        if items:
            newest = max(i.created_at for i in items)
            if self.last_post_at is None or format_time(newest) > self.last_post_at:
                self.last_post_at = format_time(newest)
                self.lag_seconds = max(time.time() - newest.timestamp(), 0.0)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Backoff:
    """Exponential backoff with full jitter: 1 s, 2 s, 4 s … capped, reset after a success."""

    def __init__(self, base: float = 1.0, cap: float = 300.0, rng: random.Random | None = None):
        self.base, self.cap, self.attempt = base, cap, 0
        self.rng = rng or random.Random()

    def next_delay(self) -> float:
        delay = min(self.cap, self.base * 2**self.attempt)
        self.attempt += 1
        return self.rng.uniform(delay / 2, delay)

    def reset(self) -> None:
        self.attempt = 0


class Saver(Protocol):
    async def __call__(
        self, changes: Iterable[Change], cursor: dict[str, Any] | None,
        malformed: Iterable[Malformed] = (),
    ) -> int: ...  # fmt: skip


@dataclass
class SourceContext:
    event: Event
    key: str  # e.g. "mastodon:mastodon.social:northwind26"; the cursor's key in the archive
    config: dict[str, Any]  # this source's entry in event.yaml
    settings: Settings
    hashtags: set[str]  # every tag that makes a post the event's (event, rooms, talks)
    cursor: dict[str, Any] | None  # as saved with the last committed batch
    save: Saver  # commit changes + cursor in one transaction, then publish; returns new changes
    http: httpx.AsyncClient
    secrets: Callable[[str], str | None]  # name -> value from the environment, None if unset
    state: SourceState = field(default_factory=SourceState)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    backoff: Backoff = field(default_factory=Backoff)
    recorded: list[dict[str, Any]] | None = None  # deliveries for `run --record`, until saved
    # the uris of this source's visible archived posts written in [since, until), for a
    # re-check of what a gap may have deleted (None: the caller gives no archive access)
    archived: Callable[[datetime, datetime], Awaitable[list[str]]] | None = None

    def record(self, kind: str, payload: Any, origin: str, **more: Any) -> None:
        """Keep one raw delivery for the recording (afa-recording/1, see recording.py) when the
        collector records; the saver writes it with the batch that covers it."""
        if self.recorded is not None:
            line = {"at": format_time(datetime.now(UTC)), "source": self.config.get("type"),
                    "origin": origin, "type": kind, "payload": payload}  # fmt: skip
            self.recorded.append(line | more)

    def warn_unknown_options(self, known: set[str], logger: logging.Logger) -> None:
        """A misspelt option in event.yaml would otherwise be ignored without a word."""
        unknown = set(self.config) - known - {"type", "key"}
        if unknown:
            logger.warning("%s: unknown option(s) in event.yaml ignored: %s (known: %s)",
                           self.key, ", ".join(sorted(unknown)), ", ".join(sorted(known)))  # fmt: skip

    async def sleep(self, seconds: float) -> bool:
        """Sleep, waking early on stop. Returns False when the collector is stopping."""
        try:
            await asyncio.wait_for(self.stopping.wait(), timeout=max(seconds, 0))
            return False
        except TimeoutError:
            return True


SourceRun = Callable[[SourceContext], Awaitable[None]]
