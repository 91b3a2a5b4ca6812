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
Parsing is collector.sources.mastodon's; this module only fetches, paces and saves.

Cursor (ctx.key's, small JSON): {"clock": newest created_at, "tags": {tag: {"min_id": the
highest status id seen, "last_created_at": that status's created_at}}}.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as day_time
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from core.errors import ParseError, SourceError
from core.items import format_time, parse_time

from ..normalise import Delete, SkipItem
from ..store import Malformed
from .base import Backoff, SourceContext
from .mastodon import SOURCE, origin_host, parse_status, parse_stream_event
from .mastodon_stream import SSEEvent, StreamClosed, read_stream

log = logging.getLogger("collector.mastodon")
REFUSED = {400, 401, 403, 404}  # the streaming server will not serve us: poll instead
LOCAL_ID = re.compile(r'"?[0-9A-Za-z_-]{1,64}"?')  # what a delete event's data may be
SNOWFLAKE_EPOCH_MS = 1_451_606_400_000  # 2016-01-01: Mastodon ids below this are not snowflakes


@dataclass(frozen=True)
class Options:
    """What a `{type: mastodon, ...}` entry in event.yaml may set."""

    instance: str
    hashtags: tuple[str, ...]
    token_env: str | None = None
    streaming: bool = True  # false: always poll, even with a token
    streaming_url: str | None = None  # default: configuration.urls.streaming, over https
    poll_seconds: float = 30.0
    reconcile_seconds: float = 300.0  # polling: re-walk from the overlap floor this often
    overlap_seconds: float = 900.0  # how late a remote post may federate and still be caught
    watchdog_seconds: float = 45.0  # no byte for this long (3 heartbeats) → reconnect
    min_connected_seconds: float = 10.0  # a shorter connection backs off before reconnecting
    page_limit: int = 40
    backfill_from: str = "event"  # first run: "event" (its start), "newest" or an ISO time
    max_rate_limit_wait: float = 300.0
    request_timeout: float = 30.0
    recheck_deletes: bool = True  # after a reconnect, ask REST about posts the backfill missed
    recheck_max_posts: int = 100  # at most this many GET /statuses/:id per reconnect (newest)
    recheck_minutes: float = 180.0  # and only for posts created in the last this many minutes

    @classmethod
    def from_context(cls, ctx: SourceContext) -> Options:
        config = dict(ctx.config)
        instance = str(config.pop("instance", "") or "").rstrip("/")
        if not instance:
            raise SourceError(SOURCE, ctx.key, "no instance configured")
        if "//" not in instance:
            instance = "https://" + instance
        tags = config.pop("hashtags", None) or sorted(ctx.hashtags)
        tags = tuple(dict.fromkeys(str(t).lstrip("#").casefold() for t in tags))
        known = set(cls.__dataclass_fields__)
        ctx.warn_unknown_options(known | {"instance", "hashtags"}, log)
        return cls(instance, tags, **{k: v for k, v in config.items() if k in known})


@dataclass
class Feed:
    """One instance: its options, token, pacing and the committed per-tag cursors."""

    ctx: SourceContext
    opts: Options
    token: str | None
    stream_base: str = ""
    tags: dict[str, dict[str, str]] = field(default_factory=dict)
    clock: str | None = None
    not_before: float = 0.0  # monotonic: the rate limit is spent until then
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # per tag, the statuses this run archived (local id -> created_at), newest kept; the
    # candidates for a re-check after a reconnect. Not in the cursor: it must stay small.
    recent: dict[str, dict[str, datetime]] = field(default_factory=dict)
    walked: dict[str, set[str]] = field(default_factory=dict)  # ids a running backfill returned

    @property
    def host(self) -> str:
        return origin_host(self.opts.instance)  # items' origin: the host name, as parse_status

    @property
    def netloc(self) -> str:
        return urlsplit(self.opts.instance).netloc  # for messages: with the port, if any

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def load_cursor(self, cursor: dict[str, Any] | None) -> None:
        cursor = cursor or {}
        self.clock = cursor.get("clock")
        tags = cursor.get("tags") or {}
        self.tags = {t: dict(c) for t, c in tags.items() if isinstance(c, dict) and c.get("min_id")}

    def snapshot(self, tag: str, tag_cursor: dict[str, str], clock: str | None) -> dict:
        tags = {**self.tags, tag: tag_cursor}
        return {"clock": clock, "tags": tags}


@dataclass
class Seen:
    """What one batch saw, for the cursor: status ids and their created_at."""

    ids: list[tuple[str, datetime | None]] = field(default_factory=list)


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
    except _Stopped:
        pass
    ctx.state.set("stopped")


class _Stopped(Exception):
    """ctx.stopping was set while we waited."""


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
                    if not isinstance(task.exception(), _Stopped):
                        raise task.exception()
    finally:
        for task in [*tasks, stopper]:
            task.cancel()
        await asyncio.gather(*tasks, stopper, return_exceptions=True)


# -- instance -----------------------------------------------------------------------------


async def fetch_instance(feed: Feed) -> None:
    """Streaming host and hashtag-feed access from /api/v2/instance; a disabled feed fails."""
    backoff = Backoff(**_like(feed.ctx.backoff))
    info, _ = await fetch_json(feed, "/api/v2/instance", {}, backoff, expect=dict)
    configuration = (info or {}).get("configuration") or {}
    access = (configuration.get("timelines_access") or {}).get("hashtag_feeds") or {}
    disabled = sorted(k for k, v in access.items() if v == "disabled")
    if disabled:
        raise SourceError(SOURCE, feed.opts.instance,
                          f"hashtag feed disabled on {feed.netloc} ({', '.join(disabled)})")  # fmt: skip
    if "authenticated" in access.values() and not feed.token:
        raise SourceError(SOURCE, feed.opts.instance,
                          f"hashtag feed on {feed.netloc} needs a token: set "
                          f"{feed.opts.token_env or 'token_env'}")  # fmt: skip
    streaming = feed.opts.streaming_url or (configuration.get("urls") or {}).get("streaming")
    feed.stream_base = _http_base(streaming or feed.opts.instance)


def _http_base(url: str) -> str:
    """wss://streaming.example → https://streaming.example (SSE on the same host)."""
    url = url.rstrip("/")
    for ws, http in (("wss://", "https://"), ("ws://", "http://")):
        if url.startswith(ws):
            return http + url[len(ws) :]
    return url


# -- REST: one GET, paced ----------------------------------------------------------------


async def fetch_json(feed: Feed, path: str, params: dict, backoff: Backoff, expect=list):
    """GET a REST path: 429 waits for the reset, 5xx and network errors back off, 401 fails.

    Returns (payload, headers); payload is None for a 404 (an unknown tag is an empty one).
    """
    url = feed.opts.instance + path
    while True:
        response = await _get(feed, url, params, backoff)
        code = response.status_code
        if code == 404:
            return None, response.headers
        if code >= 400:
            raise SourceError(SOURCE, url, f"HTTP {code} {_error_text(response)}")
        payload = _json_or_none(response)
        if isinstance(payload, expect):
            backoff.reset()
            _note_budget(feed, response)
            return payload, response.headers
        await _back_off(feed.ctx, backoff, f"{url}: not a JSON {expect.__name__}")


async def _get(
    feed: Feed, url: str, params: dict | None, backoff: Backoff, show: bool = True
) -> httpx.Response:
    """One paced GET: waits out the rate limit, retries a 429, a 5xx or a network error, and
    returns any other answer. `show`: the waits appear in the source's state."""
    ctx = feed.ctx
    while True:
        await _wait_for_budget(feed, show)
        try:
            response = await ctx.http.get(url, params=params, headers=feed.headers(),
                                          timeout=feed.opts.request_timeout)  # fmt: skip
        except httpx.TransportError as exc:
            await _back_off(ctx, backoff, f"{url}: {type(exc).__name__}: {exc}", show)
            continue
        if response.status_code == 429:
            await _rate_limited(feed, response)
        elif response.status_code >= 500:
            await _back_off(ctx, backoff, f"{url}: HTTP {response.status_code}", show)
        else:
            return response


def _json_or_none(response: httpx.Response):
    try:
        return response.json()
    except ValueError:
        return None


def _error_text(response: httpx.Response) -> str:
    payload = _json_or_none(response)
    return str(payload.get("error")) if isinstance(payload, dict) else response.reason_phrase


async def _back_off(ctx: SourceContext, backoff: Backoff, reason: str, show: bool = True) -> None:
    """`show` False: back off without leaving the current state (only a side task waits)."""
    ctx.state.error(reason)
    if show:
        ctx.state.set("backing off")
    log.warning("mastodon: %s; %s", reason, "backing off" if show else "checking again later")
    if not await ctx.sleep(backoff.next_delay()):
        raise _Stopped


async def _rate_limited(feed: Feed, response: httpx.Response) -> None:
    wait = rate_limit_wait(response.headers, feed.opts.max_rate_limit_wait)
    feed.ctx.state.error(f"{response.url}: HTTP 429, waiting {wait:.1f}s")
    feed.not_before = max(feed.not_before, time.monotonic() + wait)


def _note_budget(feed: Feed, response: httpx.Response) -> None:
    """Remaining 0 on a success: the next request would be a 429, so wait for the reset."""
    if response.headers.get("x-ratelimit-remaining", "").strip() == "0":
        wait = rate_limit_wait(response.headers, feed.opts.max_rate_limit_wait)
        feed.not_before = max(feed.not_before, time.monotonic() + wait)


async def _wait_for_budget(feed: Feed, show: bool = True) -> None:
    wait = feed.not_before - time.monotonic()
    if wait <= 0:
        return
    state = feed.ctx.state
    if show:
        state.set("rate limited")
    started = time.monotonic()
    try:
        if not await feed.ctx.sleep(wait):
            raise _Stopped
    finally:
        state.rate_limited_seconds += time.monotonic() - started


def rate_limit_wait(headers: httpx.Headers, cap: float, now: datetime | None = None) -> float:
    """Seconds until X-RateLimit-Reset (ISO-8601, or epoch seconds as GoToSocial sends),
    measured against the server's Date header when it has one, capped; 60 s when unknown."""
    reset = parse_reset(headers.get("x-ratelimit-reset"))
    if reset is None:
        return min(cap, 60.0)
    server_now = _http_date(headers.get("date")) or now or datetime.now(UTC)
    return max(0.0, min(cap, (reset - server_now).total_seconds() + 0.05))


def parse_reset(value: str | None) -> datetime | None:
    value = (value or "").strip()
    try:
        if re.fullmatch(r"\d+(\.\d+)?", value):
            return datetime.fromtimestamp(float(value), UTC)
        return parse_time(value) if value else None
    except (ValueError, OverflowError):
        return None


def _http_date(value: str | None) -> datetime | None:
    try:
        return parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        return None


# -- following one tag --------------------------------------------------------------------


async def follow_tag(feed: Feed, tag: str) -> None:
    if feed.token and feed.opts.streaming:
        await follow_stream(feed, tag)
    else:
        await follow_polling(feed, tag)


async def follow_stream(feed: Feed, tag: str) -> None:
    """§1.5: connect, buffer, backfill, apply the buffer, go live; again after every drop."""
    ctx = feed.ctx
    rest, retry = Backoff(**_like(ctx.backoff)), Backoff(**_like(ctx.backoff))
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
                checker.add_done_callback(_log_failure)
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
            await _back_off(
                ctx, retry, f"stream #{tag} dropped after {dropped_at - connected:.1f}s"
            )
        else:
            retry.reset()


def _like(backoff: Backoff) -> dict:
    return {"base": backoff.base, "cap": backoff.cap, "rng": backoff.rng}


async def open_stream(feed: Feed, tag: str, backoff: Backoff) -> httpx.Response | None:
    """A 200 event stream, or None when the server refuses to stream this tag to us."""
    ctx, url = feed.ctx, feed.stream_base + "/api/v1/streaming/hashtag"
    timeout = httpx.Timeout(feed.opts.request_timeout, read=feed.opts.watchdog_seconds)
    while True:
        await _wait_for_budget(feed)
        request = ctx.http.build_request(
            "GET", url, params={"tag": tag}, timeout=timeout,
            headers={**feed.headers(), "Accept": "text/event-stream"},
        )  # fmt: skip
        try:
            response = await ctx.http.send(request, stream=True)
        except httpx.TransportError as exc:
            await _back_off(ctx, backoff, f"{url}: {type(exc).__name__}: {exc}")
            continue
        code = response.status_code
        if code == 200:
            return response
        await response.aread()
        await response.aclose()
        if code in REFUSED:
            ctx.state.error(f"streaming #{tag} refused: HTTP {code} {_error_text(response)}")
            log.warning("mastodon %s: %s; polling instead", feed.host, ctx.state.last_error)
            return None
        if code == 429:
            await _rate_limited(feed, response)
        else:
            await _back_off(ctx, backoff, f"{url}: HTTP {code}")


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


async def follow_polling(feed: Feed, tag: str) -> None:
    """No stream: walk the tag timeline forward every poll_seconds, re-walk the overlap now
    and then (a late-federated post gets an id below the cursor)."""
    ctx, backoff = feed.ctx, Backoff(**_like(feed.ctx.backoff))
    ctx.state.set("polling")
    since = await backfill(feed, tag, backoff, gap=tag in feed.tags)
    await recheck_missing(feed, tag, missed_by_backfill(feed, tag, since))
    reconciled = time.monotonic()
    while True:
        ctx.state.set("polling")
        if not await ctx.sleep(feed.opts.poll_seconds):
            raise _Stopped
        cursor = feed.tags.get(tag)
        if cursor is None or time.monotonic() - reconciled >= feed.opts.reconcile_seconds:
            since = await backfill(feed, tag, backoff, gap=False)
            await recheck_missing(feed, tag, missed_by_backfill(feed, tag, since))
            reconciled = time.monotonic()
        else:
            await walk_forward(feed, tag, cursor["min_id"], backoff)


# -- backfill -----------------------------------------------------------------------------


async def backfill(feed: Feed, tag: str, backoff: Backoff, gap: bool) -> datetime | None:
    """Walk the tag timeline from the saved cursor minus the overlap up to now. `gap`: after a
    disconnect or a restart, counted as a gap detected, then backfilled. Returns the time from
    which the walk re-read the timeline whole (None when there was no cursor)."""
    cursor = feed.tags.get(tag)
    state = feed.ctx.state
    since = None
    feed.walked[tag] = set()
    if gap:
        state.gaps_detected += 1
    if cursor:
        since = (parse_time(cursor.get("last_created_at")) or datetime.now(UTC)) - timedelta(
            seconds=feed.opts.overlap_seconds
        )
        floor = snowflake_floor(cursor["min_id"], since)
        if floor is not None:
            await walk_forward(feed, tag, floor, backoff)
        else:
            await walk_back(feed, tag, since, backoff)
    else:
        await walk_back(feed, tag, first_run_start(feed), backoff)
    if gap:
        state.gaps_backfilled += 1
    return since


def snowflake_floor(min_id: str, since: datetime) -> str | None:
    """The lowest id a status created at `since` can have, when ids are Mastodon snowflakes;
    None when they are not (the caller re-walks by time with max_id instead)."""
    if not str(min_id).isdigit() or int(min_id) >> 16 < SNOWFLAKE_EPOCH_MS:
        return None
    floor = int(since.timestamp() * 1000) << 16
    return str(min(floor, int(min_id)))


def first_run_start(feed: Feed) -> datetime | None:
    """Where a tag with no cursor starts: the event's first day, a given time, or now."""
    start = feed.opts.backfill_from
    if start == "newest":
        return None
    if start == "event":
        event = feed.ctx.event
        return datetime.combine(event.start, day_time(0), tzinfo=event.tz).astimezone(UTC)
    return parse_time(start)


async def walk_forward(feed: Feed, tag: str, min_id: str, backoff: Backoff) -> None:
    """min_id pages, oldest page first, each committed with its cursor, until []."""
    while True:
        page = await fetch_page(feed, tag, {"min_id": min_id}, backoff)
        if not page:
            return
        top = max((s["id"] for s in page), key=id_key)
        await save_statuses(feed, tag, page)
        if id_key(top) <= id_key(min_id):
            return  # the server ignored min_id: stop rather than loop
        min_id = top


async def walk_back(feed: Feed, tag: str, since: datetime | None, backoff: Backoff) -> None:
    """max_id pages from the newest back to `since` (one page when None); the cursor is saved
    once the walk is done, so a crash part-way walks it again."""
    max_id, newest = None, None
    while True:
        page = await fetch_page(feed, tag, {"max_id": max_id} if max_id else {}, backoff)
        if not page:
            break
        await save_statuses(feed, tag, page, advance=False)
        newest = newest or page
        oldest = min(page, key=lambda s: id_key(s["id"]))
        created = _created(oldest)
        if since is None or created is None or created < since or oldest["id"] == max_id:
            break
        max_id = oldest["id"]
    if newest:
        await save(feed, tag, [], [], _seen(newest), advance=True)


async def fetch_page(feed: Feed, tag: str, params: dict, backoff: Backoff) -> list[dict]:
    params = {"limit": feed.opts.page_limit, **params}
    page, _ = await fetch_json(feed, f"/api/v1/timelines/tag/{tag}", params, backoff)
    page = [s for s in page or [] if isinstance(s, dict) and isinstance(s.get("id"), str | int)]
    if tag in feed.walked:
        feed.walked[tag].update(str(s["id"]) for s in page)
    return page


def id_key(local_id) -> tuple:
    """Order instance-local ids: numerically when all digits, as text otherwise."""
    text = str(local_id)
    return (0, len(text), text) if text.isdigit() else (1, 0, text)


def _created(status: dict) -> datetime | None:
    try:
        return parse_time(status.get("created_at"))
    except (TypeError, ValueError):
        return None


def _seen(statuses: list[dict]) -> Seen:
    return Seen([(str(s["id"]), _created(s)) for s in statuses])


# -- deletes missed while disconnected ---------------------------------------------------

RECENT_KEPT = 2000  # per tag: what this run remembers as re-check candidates


def remember(feed: Feed, tag: str, changes: list) -> None:
    """Note the committed statuses of this tag (the re-check candidates); forget deleted ones."""
    recent = feed.recent.setdefault(tag, {})
    for change in changes:
        if isinstance(change, Delete) and change.local_id:
            recent.pop(change.local_id, None)
        elif getattr(change, "origin", None) == feed.host and change.local_id:
            recent[change.local_id] = change.created_at
    if len(recent) > RECENT_KEPT:
        newest = sorted(recent.items(), key=lambda pair: pair[1])[-RECENT_KEPT:]
        feed.recent[tag] = dict(newest)


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
    backoff, gone = Backoff(**_like(feed.ctx.backoff)), 0
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
    response = await _get(feed, url, None, backoff, show=False)  # the stream is live meanwhile
    _note_budget(feed, response)
    backoff.reset()
    code = response.status_code
    if code == 200 or code == 410:
        return code == 410
    if code == 404 and isinstance(_json_or_none(response), dict):
        return True  # {"error":"Record not found"}; a proxy's HTML 404 proves nothing
    feed.ctx.state.error(f"{url}: HTTP {code} {_error_text(response)}; not deleted")
    log.warning("mastodon: %s", feed.ctx.state.last_error)
    return None


def _log_failure(task: asyncio.Task) -> None:
    exc = None if task.cancelled() else task.exception()
    if exc is not None and not isinstance(exc, _Stopped):
        log.error("mastodon: re-checking deletes failed: %s: %s", type(exc).__name__, exc)


# -- saving -------------------------------------------------------------------------------


async def save_statuses(feed: Feed, tag: str, page: list[dict], advance: bool = True) -> None:
    items, bad = [], []
    for status in reversed(page):  # oldest first: the live tail reads in order
        try:
            items.append(parse_status(status, feed.host))
            feed.ctx.record("update", status, feed.host)
        except SkipItem:
            continue
        except ParseError as exc:
            bad.append(_malformed(feed, str(status.get("id")), str(exc), _json_text(status)))
            feed.ctx.record("update", status, feed.host)
    await save(feed, tag, items, bad, _seen(page), advance)


async def save_events(feed: Feed, tag: str, events: list[SSEEvent]) -> None:
    changes, bad, seen = [], [], Seen()
    for event in events:
        _record_event(feed.ctx, event, feed.host)
        if event.error:
            bad.append(_malformed(feed, _id_in(event.data), event.error, event.data))
            continue
        if event.name == "delete" and not LOCAL_ID.fullmatch(event.data.strip()):
            bad.append(_malformed(feed, None, "delete without a bare id", event.data))
            continue
        try:
            parsed = parse_stream_event(event.name, event.data, feed.host)
        except SkipItem:
            continue
        except ParseError as exc:
            bad.append(_malformed(feed, _id_in(event.data), str(exc), event.data))
            continue
        if parsed.change is not None:
            changes.append(parsed.change)
        if parsed.item is not None:
            seen.ids.append((parsed.item.local_id, parsed.item.created_at))
    if changes or bad:
        await save(feed, tag, changes, bad, seen, advance=bool(seen.ids))


def _record_event(ctx: SourceContext, event: SSEEvent, host: str) -> None:
    """A stream event for the recording: a status as its JSON object, a delete's bare id."""
    if ctx.recorded is None:
        return
    payload: Any = event.data
    if event.name in ("update", "status.update") and not event.error:
        try:
            payload = json.loads(event.data)
        except ValueError:
            pass
    ctx.record(event.name, payload, host)


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
    best = max(seen.ids, key=lambda pair: id_key(pair[0]), default=None)
    clock = max([feed.clock or "", *(format_time(c) or "" for _, c in seen.ids if c)]) or None
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


def _malformed(feed: Feed, local_id: str | None, reason: str, raw: str) -> Malformed:
    identity = f"{SOURCE}:{feed.host}/{local_id}" if local_id else f"{SOURCE}:{feed.host}"
    return Malformed(identity, reason, raw)


def _id_in(data: str) -> str | None:
    match = re.search(r'"id"\s*:\s*"([^"]{1,64})"', data or "")
    return match.group(1) if match else None


def _json_text(value) -> str:
    return json.dumps(value, ensure_ascii=False)
