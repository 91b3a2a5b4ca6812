"""flickr.photos.search, one call at a time within the key's hourly budget. Network only."""

from __future__ import annotations

import logging
import time
from collections import deque

import httpx

from core.errors import SourceError

from ... import jsontext
from ..base import SourceContext
from .options import Options
from .parse import EXTRAS

log = logging.getLogger("collector.flickr")
CONFIG_CODES = {1, 2, 3, 4, 11, 12, 18, 100, 111, 112, 114, 115, 116}  # retrying cannot help
NOT_FOUND = 1  # flickr.photos.getInfo: the photo is deleted, or private


class Transient(Exception):
    """A failure worth retrying after a backoff (network, 5xx, a broken body, a Flickr hiccup)."""


class RateLimited(Exception):
    """A 429: the source context holds the source until the time it gives."""


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


async def fetch_page(
    ctx: SourceContext, opts: Options, budget: Budget, min_upload: int, page: int
) -> tuple[list, int]:
    """One flickr.photos.search call within the budget: (photos, pages). Network only."""
    if (wait := budget.wait_seconds()) > 0:
        log.info("%s: hourly budget of %d calls spent, waiting %.0f s",
                 ctx.key, opts.budget_per_hour, wait)  # fmt: skip
        await ctx.wait_rate_limit(wait)
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
        ctx.hold_for(response)
        raise RateLimited()
    if response.status_code != 200:
        raise Transient(f"HTTP {response.status_code} from {opts.base_url}")
    try:
        data = jsontext.loads(response.content)
    except ValueError as exc:
        raise Transient(f"response is not JSON: {exc}") from exc
    try:
        return read_answer(data)
    except FlickrError as exc:
        if exc.code in CONFIG_CODES:
            raise SourceError(ctx.key, opts.base_url, str(exc)) from None
        raise Transient(str(exc)) from None


class FlickrError(Exception):
    """An answer with stat "fail"."""

    def __init__(self, code, message) -> None:
        self.code = code if type(code) is int else None
        super().__init__(f"Flickr error {str(code)[:20]}: {str(message)[:200]}")


def read_answer(data) -> tuple[list, int]:
    """A photos.search answer → (photos, pages). Pure: raises FlickrError for a "fail" and
    Transient for an answer that is not a search result."""
    if not isinstance(data, dict):
        raise Transient("response is not a JSON object")
    if data.get("stat") == "fail":
        raise FlickrError(data.get("code"), data.get("message", ""))
    photos = data.get("photos")
    if not isinstance(photos, dict) or not isinstance(photos.get("photo"), list):
        raise Transient("response has no photos list")
    try:
        pages = int(photos.get("pages") or 0)  # sometimes a string
    except (TypeError, ValueError, OverflowError):
        raise Transient(f"bad pages {str(photos.get('pages'))[:40]!r}") from None
    return photos["photo"], pages


async def fetch_info(ctx: SourceContext, opts: Options, budget: Budget, pid: str) -> dict | None:
    """One flickr.photos.getInfo within the budget: its answer (error 1 included: the photo is
    gone), or None when it could not be asked now (budget spent, network, another error)."""
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
    if answer.get("stat") == "fail" and answer.get("code") != NOT_FOUND:
        return None
    return answer
