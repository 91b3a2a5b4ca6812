"""Ask the sources how archived posts are doing now: reaction counts, and whether they exist.

    Bluesky   app.bsky.feed.getPosts, 25 at-uris a call (public AppView); left out = gone
    Mastodon  GET /api/v1/statuses?id[]=, 20 a call, where the instance has it (4.3 and
              later), else GET /api/v1/statuses/:id one by one; within X-RateLimit-*; the
              counts are the listening instance's view of the post (a remote post's home
              instance may know more); left out / 404 / 410 = gone
    Flickr    flickr.photos.search over the posts' upload window with the count_faves and
              count_comments extras; a photo the search no longer returns is asked about
              with flickr.photos.getInfo, whose error 1 means deleted or private
    Feeds     cannot tell: an entry that scrolled off looks like one deleted

`Refresher.refresh(posts)` returns the changes (Counts, Delete) and the answers as recording
lines; the caller commits both (refresh.py). Network here, parsing in answers.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import sqlite_utils

from core.errors import ParseError
from core.events import Event
from core.items import format_time

from .. import jsontext
from ..normalise import Change
from ..sources.base import rate_limit_wait, spent
from ..sources.flickr import EXTRAS
from ..sources.mastodon import origin_host
from . import answers
from .appview import PER_CALL, AppView, AppViewError

log = logging.getLogger("collector.enrich")
MASTODON_PER_CALL = 20  # DEFAULT_STATUSES_LIMIT
FLICKR_API = "https://api.flickr.com/services/rest/"
COUNT_EXTRAS = "count_faves,count_comments"
FLICKR_PER_PAGE = 500  # the most Flickr gives
FLICKR_CAP = 4000  # "Flickr will return at most the first 4,000 results for any given search"
MAX_WAIT = 300.0


@dataclass(frozen=True)
class Archived:
    """What a refresh needs of one archived post."""

    uri: str
    source: str
    origin: str
    local_id: str
    created_at: str


def archived_posts(
    db: sqlite_utils.Database, event: str, since: datetime | None = None,
    until: datetime | None = None,
) -> list[Archived]:  # fmt: skip
    """The event's visible posts, those written in [since, until) when given."""
    sql = "SELECT uri, source, origin, local_id, created_at FROM items WHERE event = ? AND status = 'visible'"
    params: list[Any] = [event]
    if since is not None:
        sql, params = sql + " AND created_at >= ?", [*params, format_time(since)]
    if until is not None:
        sql, params = sql + " AND created_at < ?", [*params, format_time(until)]
    return [Archived(*row) for row in db.execute(sql + " ORDER BY created_at", params)]


class Unavailable(Exception):
    """A source's refresh could not finish (network, 5xx, a refusal): the rest goes on."""


@dataclass
class Found:
    changes: list[Change] = field(default_factory=list)
    lines: list[dict[str, Any]] = field(default_factory=list)  # the answers, for a recording
    calls: int = 0
    failed: list[str] = field(default_factory=list)  # why a source's refresh stopped short

    def add(self, changes: Iterable[Change], line: dict[str, Any]) -> None:
        self.changes += changes
        self.lines.append(line)
        self.calls += 1


class Refresher:
    """One event's refresh: the sources it follows, each asked within its own limits."""

    def __init__(self, http: httpx.AsyncClient, event: Event, secrets: Callable[[str], str | None],
                 appview: Callable[[str | None], AppView], stopping: asyncio.Event | None = None,
                 concurrency: int = 4) -> None:  # fmt: skip
        self.http, self.event, self.secrets, self.appview = http, event, secrets, appview
        self.stopping, self.concurrency = stopping, concurrency
        self.paused_until: dict[str, float] = defaultdict(float)  # host -> time.time()

    async def refresh(self, posts: Sequence[Archived]) -> Found:
        """Every post's counts (and existence) from its source, the sources side by side."""
        found = Found()
        jobs = []
        for config in self.event.sources:
            mine = [p for p in posts if _belongs(p, config)]
            job = JOBS.get(str(config.get("type")))
            if mine and job is not None:
                jobs.append(self._guarded(job, config, mine, found))
        await asyncio.gather(*jobs)
        return found

    async def _guarded(
        self, job, config: Mapping[str, Any], posts: list[Archived], found: Found
    ) -> None:
        try:
            await job(self, config, posts, found)
        except (Unavailable, AppViewError, ParseError) as exc:
            log.warning("count refresh of %s posts (%s) stopped short: %s",
                        len(posts), config.get("type"), exc)  # fmt: skip
            found.failed.append(f"{config.get('type')}: {exc}")

    async def _in_parallel(self, calls: list) -> None:
        """Run the call factories with at most `concurrency` in flight, in order of start."""
        queue = list(reversed(calls))

        async def worker() -> None:
            while queue:
                await queue.pop()()

        await asyncio.gather(*(worker() for _ in range(min(self.concurrency, len(calls)))))

    # -- Bluesky ----------------------------------------------------------------------------

    async def bluesky(self, config: Mapping[str, Any], posts: list[Archived], found: Found) -> None:
        appview = self.appview(config.get("appview"))
        uris = [p.uri for p in posts]

        def call(chunk: list[str]):
            async def run() -> None:
                answer = await appview.posts(chunk, self.stopping)
                found.add(answers.post_counts(answer, chunk), line("bluesky", "appview", "getPosts",
                                                                   answer, uris=chunk))  # fmt: skip

            return run

        await self._in_parallel(
            [call(uris[i : i + PER_CALL]) for i in range(0, len(uris), PER_CALL)]
        )

    # -- Mastodon ---------------------------------------------------------------------------

    async def mastodon(
        self, config: Mapping[str, Any], posts: list[Archived], found: Found
    ) -> None:
        base = _instance(config)
        token = self.secrets(str(config["token_env"])) if config.get("token_env") else None
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        host, ids = origin_host(base), [p.local_id for p in posts]
        if await self._mastodon_batches(base, headers):
            chunks = [ids[i : i + MASTODON_PER_CALL] for i in range(0, len(ids), MASTODON_PER_CALL)]
            calls = [self._statuses_call(base, host, headers, chunk, found) for chunk in chunks]
        else:
            calls = [self._status_call(base, host, headers, one, found) for one in ids]
        await self._in_parallel(calls)

    async def _mastodon_batches(self, base: str, headers: dict) -> bool:
        """Whether the instance answers GET /api/v1/statuses?id[]= (Mastodon 4.3 and later)."""
        response = await self._paced_get(base, "/api/v2/instance", None, headers)
        version = response.json().get("version", "") if response.status_code == 200 else ""
        return _version(version) >= (4, 3)

    def _statuses_call(self, base, host, headers, chunk: list[str], found: Found):
        async def run() -> None:
            response = await self._paced_get(base, "/api/v1/statuses", [("id[]", i) for i in chunk],
                                             headers)  # fmt: skip
            answer = _json(response, list)
            found.add(answers.status_counts(answer, host, chunk),
                      line("mastodon", host, "statuses", answer, ids=chunk))  # fmt: skip

        return run

    def _status_call(self, base, host, headers, one: str, found: Found):
        async def run() -> None:
            response = await self._paced_get(base, f"/api/v1/statuses/{one}", None, headers)
            answer = [] if response.status_code in (404, 410) else [_json(response, dict)]
            found.add(answers.status_counts(answer, host, [one]),
                      line("mastodon", host, "statuses", answer, ids=[one]))  # fmt: skip

        return run

    async def _paced_get(self, base: str, path: str, params, headers: dict) -> httpx.Response:
        """One GET within the instance's X-RateLimit budget; a 429 waits for the reset."""
        host = urlsplit(base).netloc
        for _attempt in range(5):
            await self._pause(host)
            try:
                response = await self.http.get(base + path, params=params, headers=headers,
                                               timeout=30)  # fmt: skip
            except httpx.HTTPError as exc:
                raise Unavailable(f"{base}{path}: {type(exc).__name__}: {exc}") from exc
            if response.status_code == 429 or spent(response.headers):
                wait = rate_limit_wait(response.headers, MAX_WAIT)
                wait = 60.0 if wait is None else wait  # a 429 that does not say: a minute
                self.paused_until[host] = max(self.paused_until[host], time.time() + wait)
            if response.status_code != 429:
                if response.status_code >= 500 or response.status_code in (401, 403):
                    raise Unavailable(f"{base}{path}: HTTP {response.status_code}")
                return response
        raise Unavailable(f"{base}{path}: still rate limited")

    async def _pause(self, host: str) -> None:
        wait = self.paused_until[host] - time.time()
        if wait > 0:
            log.info("count refresh: %s rate limited, waiting %.0f s", host, wait)
            if self.stopping is None:
                await asyncio.sleep(wait)
                return
            try:
                await asyncio.wait_for(self.stopping.wait(), timeout=wait)
                raise Unavailable("stopping")
            except TimeoutError:
                pass

    # -- Flickr -----------------------------------------------------------------------------

    async def flickr(self, config: Mapping[str, Any], posts: list[Archived], found: Found) -> None:
        key = self.secrets(str(config.get("key_env") or "AFA_FLICKR_KEY"))
        if not key:
            raise Unavailable("no Flickr API key")
        base = str(config.get("base_url") or FLICKR_API)
        tags = [str(t).lstrip("#") for t in (config.get("tags") or config.get("hashtags") or
                                              self.event.hashtags)]  # fmt: skip
        low, high = _epoch(posts[0].created_at), _epoch(posts[-1].created_at)
        seen = await self._flickr_search(base, key, tags, low, high, found)
        gone = [p for p in posts if p.local_id not in seen]
        await self._in_parallel([self._photo_info(base, key, p.local_id, found) for p in gone])

    async def _flickr_search(self, base, key, tags, low: int, high: int, found: Found) -> set[str]:
        """Search pages over [low, high] (upload times): the ids returned. Flickr shows the
        first 4,000 results of a query only, so a bigger window is searched in halves."""
        seen: set[str] = set()
        page = pages = 1
        while page <= pages:
            answer = await self._flickr(base, {
                "method": "flickr.photos.search", "api_key": key, "tags": ",".join(tags),
                "min_upload_date": str(low), "max_upload_date": str(high),
                "sort": "date-posted-asc", "extras": f"{EXTRAS},{COUNT_EXTRAS}",
                "per_page": str(FLICKR_PER_PAGE), "page": str(page)})  # fmt: skip
            if page == 1 and _int(answer["photos"].get("total")) > FLICKR_CAP and high > low:
                middle = (low + high) // 2
                return (await self._flickr_search(base, key, tags, low, middle, found)
                        | await self._flickr_search(base, key, tags, middle + 1, high, found))  # fmt: skip
            found.add(
                answers.photo_counts(answer), line("flickr", "flickr", "photos.search", answer)
            )
            seen |= {str(p.get("id")) for p in answer["photos"]["photo"] if isinstance(p, dict)}
            pages = min(_int(answer["photos"].get("pages")), FLICKR_CAP // FLICKR_PER_PAGE)
            page += 1
        return seen

    def _photo_info(self, base: str, key: str, photo_id: str, found: Found):
        async def run() -> None:
            answer = await self._flickr(base, {"method": "flickr.photos.getInfo", "api_key": key,
                                               "photo_id": photo_id})  # fmt: skip
            found.add(answers.photo_info(answer, photo_id),
                      line("flickr", "flickr", "photos.getInfo", answer, photo_id=photo_id))  # fmt: skip

        return run

    async def _flickr(self, base: str, params: dict[str, str]) -> dict:
        params = {**params, "format": "json", "nojsoncallback": "1"}
        try:
            response = await self.http.get(base, params=params, timeout=30)
        except httpx.HTTPError as exc:
            raise Unavailable(f"Flickr: {type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise Unavailable(f"Flickr: HTTP {response.status_code}")
        answer = _json(response, dict)
        if answer.get("stat") == "fail" and answer.get("code") != answers.FLICKR_NOT_FOUND:
            raise Unavailable(f"Flickr error {answer.get('code')}: {answer.get('message')}")
        return answer


JOBS = {"bluesky": Refresher.bluesky, "mastodon": Refresher.mastodon, "flickr": Refresher.flickr}


def line(source: str, origin: str, kind: str, answer: Any, **request: Any) -> dict[str, Any]:
    """An answer as a delivery of the recording (afa-recording/1, see recording.py)."""
    found = {"at": format_time(datetime.now(UTC)), "source": source, "origin": origin,
             "type": kind, "payload": answer}  # fmt: skip
    return found | ({"request": request} if request else {})


def _belongs(post: Archived, config: Mapping[str, Any]) -> bool:
    kind = config.get("type")
    if post.source != kind:
        return False
    return kind != "mastodon" or post.origin == origin_host(_instance(config))


def _instance(config: Mapping[str, Any]) -> str:
    instance = str(config.get("instance") or "").rstrip("/")
    return instance if "//" in instance else "https://" + instance


def _epoch(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp())


def _int(value: Any) -> int:
    try:
        return int(value or 0)  # Flickr sends some numbers as strings
    except (TypeError, ValueError, OverflowError):
        return 0


def _version(text: str) -> tuple[int, int]:
    parts = text.split(".")
    try:
        return int(parts[0]), int("".join(c for c in parts[1] if c.isdigit()) or 0)
    except (IndexError, ValueError):
        return (0, 0)


def _json(response: httpx.Response, kind: type) -> Any:
    where = response.url.copy_with(query=None)  # Flickr's key is in the query: never in a message
    try:
        value = jsontext.loads(response.content)
    except ValueError:
        raise Unavailable(f"{where}: not JSON") from None
    if not isinstance(value, kind):
        raise Unavailable(f"{where}: not a JSON {kind.__name__}")
    return value
