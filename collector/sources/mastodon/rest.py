"""Mastodon REST: the instance's configuration, and one paced GET under every call
(X-RateLimit-* honoured, 429 waits for the reset, 5xx and network errors back off).
"""

from __future__ import annotations

import logging
import re
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from core.errors import SourceError
from core.items import parse_time

from ..base import Backoff, SourceContext
from .instance import Feed, Stopped, backoff_like
from .parse import SOURCE

log = logging.getLogger("collector.mastodon")


# -- instance -----------------------------------------------------------------------------


async def fetch_instance(feed: Feed) -> None:
    """Streaming host and hashtag-feed access from /api/v2/instance; a disabled feed fails."""
    backoff = Backoff(**backoff_like(feed.ctx.backoff))
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
        response = await paced_get(feed, url, params, backoff)
        code = response.status_code
        if code == 404:
            return None, response.headers
        if code >= 400:
            raise SourceError(SOURCE, url, f"HTTP {code} {error_text(response)}")
        payload = json_or_none(response)
        if isinstance(payload, expect):
            backoff.reset()
            note_budget(feed, response)
            return payload, response.headers
        await back_off(feed.ctx, backoff, f"{url}: not a JSON {expect.__name__}")


async def paced_get(
    feed: Feed, url: str, params: dict | None, backoff: Backoff, show: bool = True
) -> httpx.Response:
    """One paced GET: waits out the rate limit, retries a 429, a 5xx or a network error, and
    returns any other answer. `show`: the waits appear in the source's state."""
    ctx = feed.ctx
    while True:
        await wait_for_budget(feed, show)
        try:
            response = await ctx.http.get(url, params=params, headers=feed.headers(),
                                          timeout=feed.opts.request_timeout)  # fmt: skip
        except httpx.TransportError as exc:
            await back_off(ctx, backoff, f"{url}: {type(exc).__name__}: {exc}", show)
            continue
        if response.status_code == 429:
            await rate_limited(feed, response)
        elif response.status_code >= 500:
            await back_off(ctx, backoff, f"{url}: HTTP {response.status_code}", show)
        else:
            return response


def json_or_none(response: httpx.Response):
    try:
        return response.json()
    except ValueError:
        return None


def error_text(response: httpx.Response) -> str:
    payload = json_or_none(response)
    return str(payload.get("error")) if isinstance(payload, dict) else response.reason_phrase


async def back_off(ctx: SourceContext, backoff: Backoff, reason: str, show: bool = True) -> None:
    """`show` False: back off without leaving the current state (only a side task waits)."""
    ctx.state.error(reason)
    if show:
        ctx.state.set("backing off")
    log.warning("mastodon: %s; %s", reason, "backing off" if show else "checking again later")
    if not await ctx.sleep(backoff.next_delay()):
        raise Stopped


async def rate_limited(feed: Feed, response: httpx.Response) -> None:
    wait = rate_limit_wait(response.headers, feed.opts.max_rate_limit_wait)
    feed.ctx.state.error(f"{response.url}: HTTP 429, waiting {wait:.1f}s")
    feed.not_before = max(feed.not_before, time.monotonic() + wait)


def note_budget(feed: Feed, response: httpx.Response) -> None:
    """Remaining 0 on a success: the next request would be a 429, so wait for the reset."""
    if response.headers.get("x-ratelimit-remaining", "").strip() == "0":
        wait = rate_limit_wait(response.headers, feed.opts.max_rate_limit_wait)
        feed.not_before = max(feed.not_before, time.monotonic() + wait)


async def wait_for_budget(feed: Feed, show: bool = True) -> None:
    wait = feed.not_before - time.monotonic()
    if wait <= 0:
        return
    state = feed.ctx.state
    if show:
        state.set("rate limited")
    started = time.monotonic()
    try:
        if not await feed.ctx.sleep(wait):
            raise Stopped
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
