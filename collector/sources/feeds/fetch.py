"""A feed's conditional GET: ETag / Last-Modified revalidation, 301 moves the stored URL,
410 stops the source. Network only.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from core.errors import SourceError

from ..base import SourceContext


class Transient(Exception):
    """Worth retrying after a backoff: network, 5xx, 429."""


class NotWellFormed(Transient):
    """The document is not well formed: maybe a cut response, maybe the feed is like that."""


@dataclass
class Fetched:
    body: bytes | None  # None: not modified
    url: str
    etag: str | None
    modified: str | None
    content_type: str = "application/xml"


async def fetch_feed(
    ctx: SourceContext, url: str, etag: str | None, modified: str | None
) -> Fetched:
    """A conditional GET. Network only; raises Transient, or SourceError on 410/404/401."""
    headers = {
        "Accept": "application/atom+xml, application/rss+xml, application/xml;q=0.9, */*;q=0.5"
    }
    if etag:
        headers["If-None-Match"] = etag
    if modified:
        headers["If-Modified-Since"] = modified
    try:
        timeout = float(ctx.config.get("request_timeout", 30))  # a stalled server is given up
        response = await ctx.http.get(url, headers=headers, follow_redirects=True, timeout=timeout)
    except httpx.HTTPError as exc:
        raise Transient(f"{type(exc).__name__}: {exc}") from exc
    url = _moved(response, url)
    status = response.status_code
    if status == 304:
        return Fetched(None, url, etag, modified)
    if status in (410, 404, 401, 403):
        raise SourceError(ctx.key, url, f"HTTP {status}: the feed is not available")
    if status != 200:
        raise Transient(f"HTTP {status} from {url}")
    return Fetched(response.content, url, response.headers.get("etag"),
                   response.headers.get("last-modified"),
                   response.headers.get("content-type", "application/xml"))  # fmt: skip


def _moved(response: httpx.Response, url: str) -> str:
    """After a permanent redirect (301/308) the feed lives at the new URL from now on."""
    for hop in response.history:
        if hop.status_code not in (301, 308):
            break
        url = str(response.url)
    return url
