"""RSS and Atom documents → Items: parsed by feedparser, sanitised by us. Pure.

Identity is the entry's id (RSS guid, Atom id) or link, else a hash of what the entry says. A
Mastodon tag feed's status URL is mapped to the status's ActivityPub uri, so a post read both
ways is one item.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import logging
import re
import time
import xml.sax
from datetime import UTC, datetime
from typing import Any

import feedparser

from core.errors import ParseError
from core.items import Author, Item, Media

from ...normalise import EARLIEST, LATEST, html_to_text, links_in_html, normalise_tags
from ...sanitise import safe_url, sanitise_html
from ...store import Malformed
from ..base import parser

log = logging.getLogger("collector.feeds")
SOURCE = "feed"


# a host name (and port) as DNS writes it: the match builds URLs, so nothing else may pass
_MASTODON_STATUS = re.compile(r"^https://([A-Za-z0-9.-]+(?::\d+)?)/@([A-Za-z0-9_]+)/(\d+)$")
_HTML_TYPES = {"text/html", "application/xhtml+xml", "html", "xhtml"}


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
    try:
        parsed = parse_document(body, {"content-location": url, "content-type": content_type})
    except ParseError as exc:  # the whole document: one malformed record, the feed goes on
        log.warning("Could not process feed:%s: %s", url, exc)
        return [], [Malformed(f"feed:{url}", str(exc), body.decode("utf-8", "replace"))], None
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
        except ParseError as exc:
            name = entry.get("id") or entry.get("link") or "?"
            log.warning("Could not process feed:%s: %s", name, exc)
            raw = _raw(entry)
            malformed.append(Malformed(f"feed:{name}", str(exc), raw))
    return items, malformed, bozo


@parser
def parse_document(body: bytes, headers: dict[str, str]) -> feedparser.FeedParserDict:
    """feedparser's reading of a document: it reports broken XML as `bozo` rather than raising,
    and whatever it might raise all the same is this document's fault, not the source's."""
    return feedparser.parse(body, response_headers=headers)


def _raw(entry: dict) -> str:
    try:
        return json.dumps(entry, default=str, ensure_ascii=False)
    except ValueError:  # a circular structure: its text will do
        return repr(entry)


@parser
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
        parsed = datetime.fromtimestamp(calendar.timegm(value), UTC)
    except (OverflowError, ValueError, TypeError, OSError):
        return None
    return parsed if EARLIEST <= parsed < LATEST else None  # out of range: as if missing


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
