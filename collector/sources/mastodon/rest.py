"""Mastodon REST: the instance's configuration, and one paced GET under every call
(X-RateLimit-* honoured, 429 waits for the reset, 5xx and network errors back off: the source
context's waits, collector/sources/base.py).
"""

from __future__ import annotations

import httpx

from core.errors import SourceError

from ... import jsontext
from ..base import Backoff, spent
from .instance import Feed
from .parse import SOURCE

# -- instance -----------------------------------------------------------------------------


async def fetch_instance(feed: Feed) -> None:
    """Streaming host and hashtag-feed access from /api/v2/instance; a disabled feed fails."""
    backoff = feed.ctx.backoff.fresh()
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
        await feed.ctx.back_off(f"{url}: not a JSON {expect.__name__}", backoff)


async def paced_get(
    feed: Feed, url: str, params: dict | None, backoff: Backoff, show: bool = True
) -> httpx.Response:
    """One paced GET: waits out the rate limit, retries a 429, a 5xx or a network error, and
    returns any other answer. `show`: the waits appear in the source's state."""
    ctx = feed.ctx
    while True:
        await ctx.wait_for_budget(show)
        try:
            response = await ctx.http.get(url, params=params, headers=feed.headers(),
                                          timeout=feed.opts.request_timeout)  # fmt: skip
        except httpx.TransportError as exc:
            await ctx.back_off(f"{url}: {type(exc).__name__}: {exc}", backoff, show=show)
            continue
        if response.status_code == 429:
            hold_for_reset(feed, response)
        elif response.status_code >= 500:
            await ctx.back_off(f"{url}: HTTP {response.status_code}", backoff, show=show)
        else:
            return response


def json_or_none(response: httpx.Response):
    try:
        return jsontext.loads(response.content)
    except ValueError:
        return None


def error_text(response: httpx.Response) -> str:
    payload = json_or_none(response)
    return str(payload.get("error")) if isinstance(payload, dict) else response.reason_phrase


def hold_for_reset(feed: Feed, response: httpx.Response) -> None:
    """A 429: no request until X-RateLimit-Reset (60 s when the instance does not say)."""
    feed.ctx.hold_for(response, feed.opts.max_rate_limit_wait, default=60.0)


def note_budget(feed: Feed, response: httpx.Response) -> None:
    """Remaining 0 on a success: the next request would be a 429, so wait for the reset."""
    if spent(response.headers):
        hold_for_reset(feed, response)
