"""Flickr, live: poll flickr.photos.search by tag and upload date within the key's hourly budget.

Gap-free as SOURCES.md §4 says: `sort=date-posted-asc&min_upload_date=<watermark - overlap>`,
paged until `page >= pages`, deduplicated by photo id (the archive's UNIQUE uri does the rest).
A query stops at Flickr's 4,000-result cap and starts again from the newest upload it reached.
Tags are added after upload and the index lags, so the whole event window is re-scanned on a
slow cycle. `fetch_page` talks to the network; parsing is `flickr.parse_photo`.

Config (event.yaml): tags, tag_mode (any|all), key_env (default AFA_FLICKR_KEY), base_url,
per_page, interval (s), overlap (s), budget_per_hour, rescan_seconds.
Cursor: {"min_upload": epoch, "seen": {id: [dateupload, lastupdate]}, "clock": iso, "rescan": epoch}.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from typing import Any

import httpx

from core.errors import ParseError, SourceError
from core.items import Item, format_time

from ..enrich.answers import FLICKR_NOT_FOUND, photo_info
from ..store import Malformed
from .base import SourceContext
from .flickr import EXTRAS, parse_photo

log = logging.getLogger("collector.flickr")
API = "https://api.flickr.com/services/rest/"
RESULT_CAP = 4000
CONFIG_CODES = {1, 2, 3, 4, 11, 12, 18, 100, 111, 112, 114, 115, 116}  # retrying cannot help
RECHECK_MAX = 50  # getInfo calls per pass at most (the rest wait for the next pass)


class Transient(Exception):
    """A failure worth retrying after a backoff (network, 5xx, a broken body, a Flickr hiccup)."""


class RateLimited(Exception):
    def __init__(self, wait: float | None) -> None:
        super().__init__(f"rate limited for {wait if wait is not None else '?'} s")
        self.wait = wait


@dataclass(frozen=True)
class Options:
    api_key: str
    tags: tuple[str, ...]
    tag_mode: str = "any"
    base_url: str = API
    per_page: int = 250
    interval: float = 60.0
    overlap: int = 900
    budget_per_hour: int = 3600
    rescan_seconds: float = 3600.0
    since: int = 0  # the event window starts here (epoch): a day before the event's first day
    request_timeout: float = 30.0  # seconds before a silent (stalled) request is given up


# what an entry may set: every option but the key itself, which comes from key_env
FLICKR_OPTIONS = (set(Options.__dataclass_fields__) - {"api_key"}) | {"key_env", "hashtags"}


def options(ctx: SourceContext) -> Options:
    c = ctx.config
    ctx.warn_unknown_options(FLICKR_OPTIONS, log)
    key_env = str(c.get("key_env") or "AFA_FLICKR_KEY")
    api_key = ctx.secrets(key_env)
    if not api_key:
        raise SourceError(ctx.key, key_env, "no Flickr API key: set the environment variable")
    tags = tuple(str(t).lstrip("#") for t in (c.get("tags") or c.get("hashtags") or []))
    if not tags:
        tags = tuple(sorted(ctx.hashtags))
    if not tags:
        raise SourceError(ctx.key, "event.yaml", "a Flickr source needs tags")
    start = datetime.combine(ctx.event.start, dtime.min, tzinfo=ctx.event.tz) - timedelta(days=1)
    return Options(
        api_key=api_key, tags=tags, tag_mode=str(c.get("tag_mode", "any")),
        base_url=str(c.get("base_url", API)), per_page=min(int(c.get("per_page", 250)), 500),
        interval=float(c.get("interval", 60)), overlap=int(c.get("overlap", 900)),
        budget_per_hour=int(c.get("budget_per_hour", 3600)),
        rescan_seconds=float(c.get("rescan_seconds", 3600)),
        since=int(c.get("since", start.timestamp())),
        request_timeout=float(c.get("request_timeout", 30)),
    )  # fmt: skip


class Budget:
    """At most `per_hour` calls in any sliding hour (the key's limit is across the whole key)."""

    def __init__(self, per_hour: int, clock=time.monotonic) -> None:
        self.per_hour, self.clock = max(per_hour, 1), clock
        self.calls: deque[float] = deque()

    def wait_seconds(self) -> float:
        now = self.clock()
        while self.calls and self.calls[0] <= now - 3600:
            self.calls.popleft()
        return 0.0 if len(self.calls) < self.per_hour else self.calls[0] + 3600 - now

    def spend(self) -> None:
        self.calls.append(self.clock())


async def run(ctx: SourceContext) -> None:
    opts = options(ctx)
    budget = Budget(opts.budget_per_hour)
    while not ctx.stopping.is_set():
        ctx.state.set("polling")
        try:
            await poll(ctx, opts, budget)
            ctx.backoff.reset()
        except RateLimited as exc:
            await _rate_limited(ctx, exc.wait)
            continue
        except Transient as exc:
            await _back_off(ctx, str(exc))
            continue
        if not await ctx.sleep(opts.interval):
            return


async def poll(ctx: SourceContext, opts: Options, budget: Budget) -> None:
    """One pass: from the watermark (or the event window on a re-scan) to the newest photo."""
    cursor = dict(ctx.cursor or {})
    rescan = time.time() - float(cursor.get("rescan", 0)) >= opts.rescan_seconds
    watermark = int(cursor.get("min_upload", opts.since))
    low = opts.since if rescan else max(watermark - opts.overlap, opts.since)
    max_pages = max(RESULT_CAP // opts.per_page, 1)
    page, covered = 1, _covered(cursor, low)  # what this pass must return again
    while not ctx.stopping.is_set():
        photos, pages = await fetch_page(ctx, opts, budget, low, page)
        items, malformed, newest = parse_page(photos, cursor.setdefault("seen", {}))
        _record(ctx, photos, items, malformed)
        covered -= {str(p.get("id")) for p in photos if isinstance(p, dict)}
        watermark = max(watermark, newest)
        cursor.update(min_upload=watermark, clock=format_time(datetime.now(UTC)))
        if rescan and page >= pages:
            cursor["rescan"] = int(time.time())
        cursor["seen"] = _prune(cursor["seen"], watermark - opts.overlap)
        await ctx.save(items, cursor, malformed)
        ctx.cursor = cursor
        if not photos or page >= pages:
            await recheck_missing(ctx, opts, budget, cursor, sorted(covered))
            return
        if page >= max_pages:  # Flickr shows the first 4,000 results only: restart from here
            if newest <= low:
                log.warning("%s: over %d photos uploaded in one second", ctx.key, RESULT_CAP)
                return
            low, page = newest, 1
            continue
        page += 1


def _covered(cursor: dict, low: int) -> set[str]:
    """The photos seen before whose upload time this pass searches again."""
    return {pid for pid, mark in (cursor.get("seen") or {}).items() if mark and mark[0] >= low}


def _record(
    ctx: SourceContext, photos: list, items: list[Item], malformed: list[Malformed]
) -> None:
    """The photos that were new or changed (the rest the recording has already)."""
    if ctx.recorded is None:
        return
    wanted = {i.local_id for i in items} | {m.identity.split(":", 1)[-1] for m in malformed}
    for photo in photos:
        if str(photo.get("id", "?") if isinstance(photo, dict) else "?") in wanted:
            ctx.record("photo", photo, "flickr")


async def recheck_missing(
    ctx: SourceContext, opts: Options, budget: Budget, cursor: dict, missing: list[str]
) -> None:
    """Photos a full pass no longer returned in a window it covers: deleted, made private, or
    untagged. flickr.photos.getInfo tells (error 1: not found); the gone ones are retracted."""
    gone = []
    for pid in missing[:RECHECK_MAX]:
        answer = await fetch_info(ctx, opts, budget, pid)
        if answer is None:
            return  # stopping, or Flickr failing: the next pass asks again
        ctx.record("photos.getInfo", answer, "flickr", request={"photo_id": pid})
        gone += photo_info(answer, pid)
    if gone:
        log.info("%s: %d photo(s) no longer on Flickr: retracted", ctx.key, len(gone))
        for delete in gone:
            cursor.get("seen", {}).pop(delete.local_id, None)
        await ctx.save(gone, cursor)


async def fetch_info(ctx: SourceContext, opts: Options, budget: Budget, pid: str) -> dict | None:
    """One flickr.photos.getInfo within the budget; None when it could not be asked."""
    if budget.wait_seconds() > 0:
        return None
    budget.spend()
    params = {"method": "flickr.photos.getInfo", "api_key": opts.api_key, "photo_id": pid,
              "format": "json", "nojsoncallback": "1"}  # fmt: skip
    try:
        response = await ctx.http.get(opts.base_url, params=params, timeout=opts.request_timeout)
        answer = response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None
    if not isinstance(answer, dict) or answer.get("stat") not in ("ok", "fail"):
        return None
    if answer.get("stat") == "fail" and answer.get("code") != FLICKR_NOT_FOUND:
        return None
    return answer


async def fetch_page(
    ctx: SourceContext, opts: Options, budget: Budget, min_upload: int, page: int
) -> tuple[list, int]:
    """One flickr.photos.search call within the budget: (photos, pages). Network only."""
    if (wait := budget.wait_seconds()) > 0:
        log.info("%s: hourly budget of %d calls spent, waiting %.0f s",
                 ctx.key, opts.budget_per_hour, wait)  # fmt: skip
        await _rate_limited(ctx, wait, error=False)
        if ctx.stopping.is_set():
            return [], 0
    budget.spend()
    params = {
        "method": "flickr.photos.search", "api_key": opts.api_key, "tags": ",".join(opts.tags),
        "tag_mode": opts.tag_mode, "min_upload_date": str(min_upload),
        "sort": "date-posted-asc", "extras": EXTRAS + ",last_update",
        "per_page": str(opts.per_page), "page": str(page),
        "format": "json", "nojsoncallback": "1",
    }  # fmt: skip
    try:
        response = await ctx.http.get(opts.base_url, params=params, timeout=opts.request_timeout)
    except httpx.HTTPError as exc:
        raise Transient(f"{type(exc).__name__}: {exc}") from exc
    return _read(ctx, opts, response)


def _read(ctx: SourceContext, opts: Options, response: httpx.Response) -> tuple[list, int]:
    if response.status_code == 429:
        raise RateLimited(_retry_after(response))
    if response.status_code != 200:
        raise Transient(f"HTTP {response.status_code} from {opts.base_url}")
    try:
        data = response.json()
    except ValueError as exc:
        raise Transient(f"response is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise Transient("response is not a JSON object")
    if data.get("stat") == "fail":
        code, message = data.get("code"), data.get("message", "")
        if code in CONFIG_CODES:
            raise SourceError(ctx.key, opts.base_url, f"Flickr error {code}: {message}")
        raise Transient(f"Flickr error {code}: {message}")
    photos = data.get("photos")
    if not isinstance(photos, dict) or not isinstance(photos.get("photo"), list):
        raise Transient("response has no photos list")
    try:
        pages = int(photos.get("pages") or 0)  # sometimes a string
    except (TypeError, ValueError):
        raise Transient(f"bad pages {photos.get('pages')!r}") from None
    return photos["photo"], pages


def parse_page(photos: list, seen: dict[str, list]) -> tuple[list[Item], list[Malformed], int]:
    """Photos not seen before (or updated since) → items; broken ones → Malformed, once each.
    Returns the newest upload time among them too. Updates `seen`."""
    items, malformed, newest = [], [], 0
    for photo in photos:
        pid = str(photo.get("id", "")) if isinstance(photo, dict) else ""
        uploaded = _int(photo.get("dateupload")) if isinstance(photo, dict) else 0
        marker = [uploaded, str(photo.get("lastupdate", ""))] if isinstance(photo, dict) else []
        newest = max(newest, uploaded)
        if pid and seen.get(pid) == marker:
            continue
        try:
            items.append(parse_photo(photo))
        except ParseError as exc:
            log.warning("Could not process flickr:%s: %s", pid or "?", exc)
            malformed.append(Malformed(f"flickr:{pid or '?'}", str(exc), json.dumps(photo)))
        if pid:
            seen[pid] = marker
    return items, malformed, newest


def _prune(seen: dict[str, list], floor: int) -> dict[str, list]:
    """Keep the cursor small: only ids the next poll's overlap can return again."""
    return {pid: m for pid, m in seen.items() if m and m[0] >= floor}


async def _back_off(ctx: SourceContext, why: str) -> None:
    log.warning("%s: %s; backing off", ctx.key, why)
    ctx.state.error(why)
    ctx.state.set("backing off")
    down = time.monotonic()
    await ctx.sleep(ctx.backoff.next_delay())
    ctx.state.disconnected_seconds += time.monotonic() - down


async def _rate_limited(ctx: SourceContext, wait: float | None, error: bool = True) -> None:
    wait = ctx.backoff.next_delay() if wait is None else wait
    if error:
        ctx.state.error(f"rate limited: waiting {wait:.0f} s")
    ctx.state.set("rate limited")
    started = time.monotonic()
    await ctx.sleep(wait)
    ctx.state.rate_limited_seconds += time.monotonic() - started
    ctx.state.set("polling")


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(float(response.headers.get("retry-after", "")), 0.0)
    except ValueError:
        return None


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
