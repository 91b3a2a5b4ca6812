"""RSS and Atom feeds: polled with conditional GET, parsed by feedparser, sanitised by us.

`fetch_feed` talks to the network (ETag / Last-Modified revalidation, 301 moves the stored URL,
410 stops the source); `parse_feed` is pure: bytes → Items. Identity is the entry's id (RSS
guid, Atom id) or link, else a hash of what the entry says. A Mastodon tag feed's status URL is
mapped to the status's ActivityPub uri, so a post read both ways is one item.

Config (event.yaml): url, interval (s, default 300), name (shown as the origin).
Cursor: {"url", "etag", "modified", "seen": {identity: content hash}, "clock"}.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import json
import logging
import re
import time
import xml.sax
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import feedparser
import httpx

from core.errors import SourceError
from core.items import Author, Item, Media, format_time

from ..normalise import html_to_text, links_in_html, normalise_tags
from ..sanitise import safe_url, sanitise_html
from ..store import Malformed
from .base import SourceContext

log = logging.getLogger("collector.feeds")
SOURCE = "feed"
SEEN_LIMIT = 1000
BOZO_RETRIES = 3  # a feed that stays malformed this many polls is read as it is
_MASTODON_STATUS = re.compile(r"^https://([^/]+)/@([A-Za-z0-9_]+)/(\d+)$")
_HTML_TYPES = {"text/html", "application/xhtml+xml", "html", "xhtml"}


# -- parsing (pure) ---------------------------------------------------------------------------


def parse_feed(
    body: bytes, url: str, now: datetime | None = None, content_type: str = "application/xml"
) -> list[Item]:
    """Every entry of a feed document as an Item. A `bozo` feed still yields what it has."""
    items, _malformed, _bozo = read_feed(body, url, now, content_type)
    return items


def read_feed(
    body: bytes, url: str, now: datetime | None = None, content_type: str = "application/xml"
) -> tuple[list[Item], list[Malformed], str | None]:
    """(items, entries that could not be read, why the XML is broken or None).

    Only a syntax error counts as broken: a wrong or missing charset is a warning."""
    headers = {"content-location": url, "content-type": content_type}
    parsed = feedparser.parse(body, response_headers=headers)
    bozo = None
    if parsed.bozo:
        why = f"{type(parsed.bozo_exception).__name__}: {parsed.bozo_exception}"
        log.warning("feed %s is not well formed: %s", url, why)
        bozo = why if isinstance(parsed.bozo_exception, xml.sax.SAXException) else None
    now = now or datetime.now(UTC)
    items, malformed = [], []
    for entry in parsed.entries:
        try:
            items.append(parse_entry(entry, url, now))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            name = entry.get("id") or entry.get("link") or "?"
            log.warning("Could not process feed:%s: %s: %s", name, type(exc).__name__, exc)
            raw = json.dumps(entry, default=str, ensure_ascii=False)
            malformed.append(Malformed(f"feed:{name}", f"{type(exc).__name__}: {exc}", raw))
    return items, malformed, bozo


def parse_entry(entry: dict, feed_url: str, now: datetime) -> Item:
    html = sanitise_html(_content(entry))
    title = _text(entry.get("title"))
    link = safe_url(entry.get("link")) or ""
    # dict.get: feedparser's own .get maps a missing `updated` to `published`, with a warning
    updated = _time(dict.get(entry, "updated_parsed"))
    published = _time(dict.get(entry, "published_parsed")) or updated
    local_id = entry.get("id") or link or _hash(title, entry.get("published"), html)
    return Item(
        uri=identity(local_id, feed_url), source=SOURCE, origin=feed_url, local_id=local_id,
        url=link, created_at=min(published or now, now), author=_author(entry, feed_url),
        html=html or _title_html(title), text=html_to_text(html) or title,
        tags=normalise_tags(t.get("term") for t in entry.get("tags") or ()),
        media=_media(entry), links=tuple(links_in_html(html)),
        edited_at=updated if updated and published and updated > published else None,
        extra={"title": title} if title else {},
    )  # fmt: skip


def identity(local_id: str, feed_url: str) -> str:
    """The entry's canonical URI: a Mastodon status URL becomes its ActivityPub uri."""
    match = _MASTODON_STATUS.match(local_id)
    if match:
        host, user, status = match.groups()
        return f"https://{host}/users/{user}/statuses/{status}"
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", local_id):
        return local_id  # already a URI: http(s), tag:, urn:
    return f"{feed_url}#{local_id}"


def _content(entry: dict) -> str:
    for content in entry.get("content") or ():
        if content.get("type") in _HTML_TYPES or content.get("type") is None:
            return content.get("value") or ""
    if entry.get("content"):
        return _plain_html(entry["content"][0].get("value"))
    return entry.get("summary") or ""


def _plain_html(text: str | None) -> str:
    import html as htmllib

    return "".join(f"<p>{htmllib.escape(p)}</p>" for p in (text or "").split("\n\n") if p.strip())


def _title_html(title: str) -> str:
    return _plain_html(title)


def _text(value: Any) -> str:
    return html_to_text(value) if isinstance(value, str) else ""


def _time(value: time.struct_time | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), UTC)
    except (OverflowError, ValueError, TypeError):
        return None


def _author(entry: dict, feed_url: str) -> Author:
    detail = entry.get("author_detail") or {}
    name = _text(detail.get("name") or entry.get("author") or "")
    href = safe_url(detail.get("href")) or ""
    if not href and _MASTODON_STATUS.match(entry.get("link") or ""):
        host, user, _ = _MASTODON_STATUS.match(entry["link"]).groups()
        href, name = f"https://{host}/@{user}", name or f"@{user}@{host}"
    author_id = href or (f"{feed_url}#author:{name}" if name else feed_url)
    return Author(id=author_id, handle=name, name=name, url=href)


def _media(entry: dict) -> tuple[Media, ...]:
    found: list[Media] = []
    for m in entry.get("media_content") or ():
        url = safe_url(m.get("url"))
        kind = m.get("medium") or (m.get("type") or "").split("/")[0]
        if url and kind in ("image", "video", "audio"):
            found.append(Media(kind, url, alt=_text(m.get("description") or "")))
    for link in entry.get("links") or ():
        url, kind = safe_url(link.get("href")), (link.get("type") or "").split("/")[0]
        if link.get("rel") == "enclosure" and url and kind in ("image", "video", "audio"):
            if all(m.url != url for m in found):
                found.append(Media(kind, url))
    return tuple(found)


def _hash(*parts: Any) -> str:
    text = "\x1f".join(str(p or "") for p in parts)
    return "urn:afa:feed-entry:" + hashlib.sha256(text.encode()).hexdigest()[:32]


# -- polling ----------------------------------------------------------------------------------


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


async def run(ctx: SourceContext) -> None:
    ctx.warn_unknown_options({"url", "interval", "request_timeout"}, log)
    url = str(ctx.config.get("url") or "")
    if not safe_url(url):
        raise SourceError(ctx.key, url or "event.yaml", "a feed source needs an http(s) url")
    interval = float(ctx.config.get("interval", 300))
    strikes = 0
    while not ctx.stopping.is_set():
        ctx.state.set("polling")
        try:
            await poll(ctx, url, accept_bozo=strikes >= BOZO_RETRIES)
            ctx.backoff.reset()
            strikes = 0
        except NotWellFormed as exc:
            strikes += 1
            await _back_off(ctx, str(exc))
            continue
        except Transient as exc:
            await _back_off(ctx, str(exc))
            continue
        if not await ctx.sleep(interval):
            return


async def poll(ctx: SourceContext, config_url: str, accept_bozo: bool = False) -> int:
    """One revalidation; new or changed entries are saved with the new validators. Returns
    how many entries were handed to the archive.

    A document that is not well formed may be a cut or truncated response (a half entry would
    be archived and its ETag would hide the rest), so it is retried before its entries are
    taken as they are."""
    cursor = dict(ctx.cursor or {})
    url = cursor.get("url") or config_url
    fetched = await fetch_feed(ctx, url, cursor.get("etag"), cursor.get("modified"))
    cursor.update(url=fetched.url, etag=fetched.etag, modified=fetched.modified,
                  clock=format_time(datetime.now(UTC)))  # fmt: skip
    items: list[Item] = []
    malformed: list[Malformed] = []
    if fetched.body is not None:
        found, malformed, bozo = read_feed(
            fetched.body, config_url, content_type=fetched.content_type
        )
        if bozo and not accept_bozo:
            raise NotWellFormed(f"feed is not well formed ({bozo})")
        if found or malformed:
            body = base64.b64encode(fetched.body).decode("ascii")  # bytes as sent: any charset
            ctx.record("document", {"body_base64": body, "content_type": fetched.content_type},
                       config_url)  # fmt: skip
        seen = dict(cursor.get("seen") or {})
        for item in found:
            digest = _digest(item)
            if seen.get(item.uri) != digest:
                items.append(item)
                seen[item.uri] = digest
        cursor["seen"] = dict(list(seen.items())[-SEEN_LIMIT:])
    elif ctx.cursor and ctx.cursor.get("url") == fetched.url:
        return 0  # 304 and nothing moved: nothing to commit
    await ctx.save(items, cursor, malformed)
    ctx.cursor = cursor
    return len(items)


def _digest(item: Item) -> str:
    content = [item.html, item.text, item.tags, [m.url for m in item.media], item.url]
    return hashlib.sha1(json.dumps(content).encode()).hexdigest()[:16]


async def _back_off(ctx: SourceContext, why: str) -> None:
    log.warning("%s: %s; backing off", ctx.key, why)
    ctx.state.error(why)
    ctx.state.set("backing off")
    down = time.monotonic()
    await ctx.sleep(ctx.backoff.next_delay())
    ctx.state.disconnected_seconds += time.monotonic() - down
