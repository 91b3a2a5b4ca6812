"""The contract between a live source and the collector's runner.

Each live source module exposes `async def run(ctx: SourceContext) -> None`, which retrieves
(`fetch_*`: network, cursors, rate limits, streaming) and parses (`parse_*`: pure) until
`ctx.stopping` is set.

Parsing: a source's `parse_*` functions are wrapped in `@parser`, which holds them to the
contract whatever a payload holds: they return changes whose text is clean (collector.normalise.
clean_change), or raise SkipItem (a payload deliberately not archived) or ParseError. Any other
exception, a shape nobody foresaw, becomes a ParseError naming it; the source keeps the payload
as one malformed record (counted by the saver) and goes on after it. The replay parses
recordings with the same functions, so it is held to the same contract. It hands parsed changes and the cursor that covers them to `ctx.save`,
which commits both in one transaction and then publishes: the source never touches SQLite or
Redis itself. It reports what it is doing through `ctx.state`, which the runner persists for
`python -m collector status` and the completeness report.

Errors: a source raises `core.errors.SourceError` for a configuration problem it cannot fix by
retrying (401, unknown tag, missing token); the runner marks it failing and leaves the other
sources running. Transient failures are the context's to wait out, the same way for every
source: `ctx.back_off(reason)` after a network error, a 5xx or a broken answer (exponential
backoff with jitter), `ctx.hold_for(response)` after a 429 or a spent budget (until the reset
the headers give) and `ctx.wait_for_budget()` before the next request. Every wait shows in
`ctx.state` and wakes up when the collector stops, raising `Stopping`, which a source's `run`
lets end it quietly.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ParamSpec, Protocol, TypeVar

import httpx

from core.errors import ParseError
from core.events import Event
from core.items import Item, format_time, parse_time
from core.settings import Settings

from ..normalise import Change, SkipItem, clean_change
from ..store import Malformed, storable_text

log = logging.getLogger("collector.sources")
MAX_RATE_LIMIT_WAIT = 900.0  # never hold a source longer than this on one answer's word
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
        text = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
        self.last_error = storable_text(text[:2000])  # it may quote a payload: keep it storable

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

    def fresh(self) -> Backoff:
        """Another backoff with the same base, cap and random source: for a loop of its own,
        whose failures must not lengthen another loop's waits."""
        return Backoff(self.base, self.cap, self.rng)


class Stopping(Exception):
    """The collector stopped while a source waited: it unwinds without an error."""


P = ParamSpec("P")
R = TypeVar("R")


def parser(parse: Callable[P, R]) -> Callable[P, R]:
    """Hold a parse function to the contract (see the module's docstring): the changes it
    returns come out clean, and nothing but ParseError and SkipItem comes out of it."""

    @functools.wraps(parse)
    def parse_one(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            result = parse(*args, **kwargs)
        except (ParseError, SkipItem):
            raise
        except Exception as exc:  # noqa: BLE001 - one bad payload spoils one post, no more
            raise ParseError(f"{type(exc).__name__}: {exc}"[:500]) from exc
        if isinstance(result, list):  # an answer's changes
            return [clean_change(change) for change in result]  # type: ignore[return-value]
        return clean_change(result)

    return parse_one


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
    not_before: float = 0.0  # monotonic: the source's rate limit is spent until then
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

    # -- waiting out failures and rate limits: the one way every source does it ------------

    async def back_off(self, reason: str, backoff: Backoff | None = None, *, show: bool = True,
                       down: bool = False) -> None:  # fmt: skip
        """A transient failure (network, 5xx, a broken answer): recorded as the source's last
        error, logged, then the next delay of `backoff` (default ctx.backoff) slept.

        `show` False: the state stays as it is (a side task waits, the source goes on).
        `down`: the wait counts as time disconnected (a polled source has no connection whose
        drop is timed otherwise). Raises Stopping when the collector stops meanwhile."""
        self.state.error(reason)
        if show:
            self.state.set("backing off")
        log.warning("%s: %s; %s", self.key, reason, "backing off" if show else "trying again later")
        started = time.monotonic()
        awake = await self.sleep((backoff or self.backoff).next_delay())
        if down:
            self.state.disconnected_seconds += time.monotonic() - started
        if not awake:
            raise Stopping

    def hold(self, seconds: float) -> None:
        """The rate limit is spent for `seconds` from now: wait_for_budget waits it out."""
        self.not_before = max(self.not_before, time.monotonic() + max(seconds, 0.0))

    def hold_for(self, response: httpx.Response, cap: float = MAX_RATE_LIMIT_WAIT,
                 default: float | None = None) -> float:  # fmt: skip
        """After a 429, or an answer that spent the last request of the window: hold the
        source until the reset its headers give (capped at `cap`; when they give none,
        `default`, else the next backoff delay). A 429 is recorded as an error. Returns the
        wait."""
        wait = rate_limit_wait(response.headers, cap)
        if wait is None:
            wait = min(cap, default if default is not None else self.backoff.next_delay())
        if response.status_code == 429:
            where = response.url.copy_with(query=None)  # a query may carry a key
            self.state.error(f"{where}: HTTP 429, waiting {wait:.1f} s")
        self.hold(wait)
        return wait

    async def wait_for_budget(self, show: bool = True) -> None:
        """Sleep until the rate limit held is over: "rate limited" in the state meanwhile
        (unless `show` is False), then the state before; the time is counted in
        rate_limited_seconds. Raises Stopping when the collector stops meanwhile."""
        wait = self.not_before - time.monotonic()
        if wait <= 0:
            return
        previous = self.state.state
        if show:
            self.state.set("rate limited")
        started = time.monotonic()
        try:
            awake = await self.sleep(wait)
        finally:
            self.state.rate_limited_seconds += time.monotonic() - started
        if show and self.state.state == "rate limited" and previous != "rate limited":
            self.state.set(previous)
        if not awake:
            raise Stopping

    async def wait_rate_limit(self, seconds: float, show: bool = True) -> None:
        """hold(seconds), then wait_for_budget: a wait the source knows the length of."""
        self.hold(seconds)
        await self.wait_for_budget(show)


SourceRun = Callable[[SourceContext], Awaitable[None]]


# -- rate-limit headers ------------------------------------------------------------------------


def rate_limit_wait(headers: Mapping[str, str], cap: float = MAX_RATE_LIMIT_WAIT,
                    now: datetime | None = None) -> float | None:  # fmt: skip
    """Seconds the headers ask a client to wait, capped; None when they do not say.

    Retry-After (seconds or an HTTP date) first, then the reset of the window: Bluesky's
    RateLimit-Reset (epoch seconds), Mastodon's X-RateLimit-Reset (ISO-8601, or epoch seconds
    as GoToSocial sends it). Times are measured against the server's Date header when there is
    one (clocks differ), else `now`."""
    server_now = _http_date(headers.get("date")) or now or datetime.now(UTC)
    retry_after = (headers.get("retry-after") or "").strip()
    if re.fullmatch(r"\d+(\.\d+)?", retry_after):
        return min(cap, float(retry_after))
    reset = _http_date(retry_after) if retry_after else None
    for name in ("ratelimit-reset", "x-ratelimit-reset"):
        reset = reset or parse_reset(headers.get(name))
    if reset is None:
        return None
    return max(0.0, min(cap, (reset - server_now).total_seconds() + 0.05))


def spent(headers: Mapping[str, str]) -> bool:
    """The answer used the window's last request: the next one would be a 429."""
    remaining = headers.get("ratelimit-remaining") or headers.get("x-ratelimit-remaining")
    return (remaining or "").strip() == "0"


def parse_reset(value: str | None) -> datetime | None:
    """A reset time as epoch seconds or ISO-8601; None when it is neither."""
    value = (value or "").strip()
    try:
        if re.fullmatch(r"\d+(\.\d+)?", value):
            return datetime.fromtimestamp(float(value), UTC)
        return parse_time(value) if value else None
    except (ValueError, OverflowError):
        return None


def _http_date(value: str | None) -> datetime | None:
    try:
        parsed = parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed is None or parsed.tzinfo else parsed.replace(tzinfo=UTC)
