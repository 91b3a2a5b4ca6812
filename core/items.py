"""The item model: one post from any source, as every part sees it.

An item's identity is `uri`, the post's canonical URI at its source (a Mastodon status's
ActivityPub uri, a Bluesky at-uri, a Flickr photo page, a feed entry id). `origin` and
`local_id` say where we saw it and are only cursors.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class Author:
    id: str  # canonical account URI, DID or Flickr NSID
    handle: str = ""  # @user@host, handle.bsky.social, Flickr user name
    name: str = ""  # display name, plain text (escaped at render time)
    url: str = ""
    avatar: str = ""
    noindex: bool = False  # the account asked to stay out of search engines
    hidden: bool = False  # e.g. Bluesky "!no-unauthenticated": never shown on public pages


@dataclass(frozen=True)
class Media:
    kind: str  # image, gifv, video, audio, unknown
    url: str
    preview_url: str = ""
    alt: str = ""
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True)
class Item:
    uri: str
    source: str  # mastodon, bluesky, flickr, feed, note
    origin: str  # instance host, "jetstream", "flickr", a feed URL
    local_id: str
    url: str  # the post on the web, for "view original"
    created_at: datetime  # UTC, the source's own timestamp
    author: Author
    html: str = ""  # sanitised HTML, safe to insert
    text: str = ""  # plain text, for search and feeds
    spoiler: str = ""  # content warning, plain text
    sensitive: bool = False
    lang: str | None = None
    tags: tuple[str, ...] = ()  # lowercase, no '#'
    media: tuple[Media, ...] = ()
    links: tuple[str, ...] = ()
    reply_to: str | None = None  # uri of the post replied to, when known
    quote_of: str | None = None
    boosts: int = 0
    likes: int = 0
    replies: int = 0
    edited_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


def utc(value: datetime) -> datetime:
    """Return an aware UTC datetime; naive values are taken as UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def format_time(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with millisecond precision and a Z: sortable as text."""
    if value is None:
        return None
    return utc(value).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return utc(datetime.fromisoformat(value.replace("Z", "+00:00")))


def _media_to_dict(m: Media) -> dict[str, Any]:
    return {"kind": m.kind, "url": m.url, "preview_url": m.preview_url, "alt": m.alt,
            "width": m.width, "height": m.height}  # fmt: skip


def item_to_dict(item: Item) -> dict[str, Any]:
    """A JSON-ready dict: the shape stored in the archive and sent on the live tail.

    Written out field by field: dataclasses.asdict deep-copies every value and was the
    collector's single largest cost per post."""
    a = item.author
    return {
        "uri": item.uri, "source": item.source, "origin": item.origin,
        "local_id": item.local_id, "url": item.url, "created_at": format_time(item.created_at),
        "author": {"id": a.id, "handle": a.handle, "name": a.name, "url": a.url,
                   "avatar": a.avatar, "noindex": a.noindex, "hidden": a.hidden},
        "html": item.html, "text": item.text, "spoiler": item.spoiler,
        "sensitive": item.sensitive, "lang": item.lang, "tags": list(item.tags),
        "media": [_media_to_dict(m) for m in item.media], "links": list(item.links),
        "reply_to": item.reply_to, "quote_of": item.quote_of, "boosts": item.boosts,
        "likes": item.likes, "replies": item.replies, "edited_at": format_time(item.edited_at),
        "extra": dict(item.extra),
    }  # fmt: skip


def item_from_dict(data: dict[str, Any]) -> Item:
    fields = {f.name for f in dataclasses.fields(Item)}
    values = {k: v for k, v in data.items() if k in fields}
    values["author"] = Author(**data["author"])
    values["media"] = tuple(Media(**m) for m in data.get("media") or ())
    values["tags"] = tuple(data.get("tags") or ())
    values["links"] = tuple(data.get("links") or ())
    values["created_at"] = parse_time(data["created_at"])
    values["edited_at"] = parse_time(data.get("edited_at"))
    values["extra"] = dict(data.get("extra") or {})
    return Item(**values)
