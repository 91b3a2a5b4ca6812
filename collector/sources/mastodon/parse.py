"""Mastodon: Status JSON (REST or streaming) → Item, and streaming events → changes.

Pure functions only; fetching (SSE with a user token, REST backfill walked with min_id) lives
apart from them, so every payload can be tested from a file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from core.errors import ParseError
from core.items import Author, Item, Media, format_time

from ... import jsontext
from ...normalise import (
    Delete,
    SkipItem,
    as_count,
    as_dict,
    as_list,
    as_text,
    clean_change,
    first,
    links_in_post,
    normalise_tags,
    parse_source_time,
    tags_from_text,
    text_of_clean_html,
)
from ...sanitise import safe_url, sanitise_html
from ..base import parser

SOURCE = "mastodon"
ARCHIVED_VISIBILITY = {"public", "unlisted"}
BRIDGY_PREFIX = "https://bsky.brid.gy/convert/ap/"
MEDIA_KINDS = {"image", "gifv", "video", "audio"}
LOCAL_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")


def is_local_id(value) -> bool:
    """An instance-local id we can page and delete by: Mastodon's snowflakes, and the flake
    and ULID ids of other servers. Anything else in a payload is not one."""
    return isinstance(value, str | int) and not isinstance(value, bool) and bool(
        LOCAL_ID.fullmatch(str(value)))  # fmt: skip


def origin_host(origin: str) -> str:
    """'https://mastodon.social/' and 'mastodon.social' are the same origin."""
    return (urlsplit(origin).hostname if "//" in origin else origin.strip("/")) or origin


def canonical_uri(uri: str) -> str:
    """A status's identity: its ActivityPub uri, with Bridgy Fed mirrors mapped to the at-uri."""
    if uri.startswith(BRIDGY_PREFIX + "at://"):
        return uri[len(BRIDGY_PREFIX) :]
    return uri


@parser
def parse_status(status: dict, origin: str) -> Item:
    """One Status object as seen through `origin` → Item. A boost parses to the boosted post.

    Raises ParseError when the payload is not a usable status, SkipItem when it is a status
    we deliberately do not archive (private or direct visibility).
    """
    if not isinstance(status, dict):
        raise ParseError("status is not an object")
    booster = None
    if isinstance(status.get("reblog"), dict):
        booster, status = status, status["reblog"]  # the wrapper says who boosted it, and when
    host = origin_host(origin)
    uri, local_id = status.get("uri"), status.get("id")
    if not isinstance(uri, str) or not uri or not is_local_id(local_id):
        raise ParseError("status has no uri or id")
    visibility = as_text(status.get("visibility")) or "public"
    if visibility not in ARCHIVED_VISIBILITY:
        raise SkipItem(f"visibility {visibility[:40]}")
    content = as_text(status.get("content"))
    html = sanitise_html(content)
    text = text_of_clean_html(html)  # from the cleaned HTML: a <script>'s text is not the post's
    return Item(
        uri=canonical_uri(uri),
        source=SOURCE,
        origin=host,
        local_id=str(local_id),
        url=safe_url(status.get("url")) or safe_url(uri) or "",
        created_at=parse_source_time(status.get("created_at"), "created_at"),
        author=parse_account(status.get("account"), host),
        html=html,
        text=text,
        spoiler=as_text(status.get("spoiler_text")),
        sensitive=status.get("sensitive") is True,
        lang=as_text(status.get("language"))[:40] or None,
        tags=normalise_tags(
            [as_text(t.get("name")) for t in as_list(status.get("tags")) if isinstance(t, dict)],
            tags_from_text(text),
        ),
        media=tuple(m for m in map(parse_media, as_list(status.get("media_attachments"))) if m),
        links=tuple(links_in_post(content, html)),
        reply_to=None,  # we only know the instance-local in_reply_to_id; see extra
        quote_of=_quoted_uri(status.get("quote")),
        boosts=as_count(status.get("reblogs_count")),
        likes=as_count(status.get("favourites_count")),
        replies=as_count(status.get("replies_count")),
        edited_at=_maybe_time(status.get("edited_at")),
        extra=_extra(status) | _boosted(booster, host),
    )


def parse_account(account: dict | None, host: str) -> Author:
    if not isinstance(account, dict):
        raise ParseError("status has no account")
    acct = as_text(account.get("acct")) or as_text(account.get("username"))
    if not acct:
        raise ParseError("account has no acct")
    handle = "@" + acct if "@" in acct else f"@{acct}@{host}"  # local accounts omit the host
    url = safe_url(account.get("url")) or ""
    return Author(
        id=first(as_text(account.get("uri")), url, handle),
        handle=handle,
        name=as_text(account.get("display_name")),  # plain text; templates escape it
        url=url,
        avatar=safe_url(first(account.get("avatar_static"), account.get("avatar"))) or "",
        noindex=account.get("noindex") is True,
    )


def parse_media(attachment: dict) -> Media | None:
    if not isinstance(attachment, dict):
        return None
    url = safe_url(attachment.get("url")) or safe_url(attachment.get("remote_url"))
    if not url:
        return None
    meta = as_dict(attachment.get("meta"))
    size = as_dict(meta.get("original")) or as_dict(meta.get("small"))
    kind = as_text(attachment.get("type"))
    return Media(
        kind=kind if kind in MEDIA_KINDS else "unknown",
        url=url,
        preview_url=safe_url(attachment.get("preview_url")) or "",
        alt=as_text(attachment.get("description")),
        width=as_count(size.get("width")) or None,
        height=as_count(size.get("height")) or None,
    )


def _quoted_uri(quote) -> str | None:
    if isinstance(quote, dict) and isinstance(quote.get("quoted_status"), dict):
        uri = quote["quoted_status"].get("uri")
        return canonical_uri(uri) if isinstance(uri, str) and uri else None
    return None


def _extra(status: dict) -> dict:
    extra = {"visibility": as_text(status.get("visibility")) or "public"}
    if is_local_id(status.get("in_reply_to_id")):
        extra["in_reply_to_id"] = str(status["in_reply_to_id"])
    if status.get("uri") != canonical_uri(status.get("uri", "")):
        extra["bridged_from"] = status["uri"]
    return extra


def _boosted(wrapper: dict | None, host: str) -> dict:
    """Who boosted the post, from a boost's wrapper (collector/reactions.py keeps it apart)."""
    if wrapper is None:
        return {}
    try:
        by = parse_account(wrapper.get("account"), host)
    except ParseError:
        return {}  # the boosted post is still a post; only who boosted it is unknown
    found = {"boosted_by": {"id": by.id, "handle": by.handle, "name": by.name, "url": by.url,
                            "avatar": by.avatar}}  # fmt: skip
    try:  # as every source time: a broken one is left out, never stored for later to trip on
        found["boosted_at"] = format_time(parse_source_time(wrapper.get("created_at")))
    except ParseError:
        pass
    return found


def _maybe_time(value):
    """edited_at, when it is a time: a broken one leaves the post unedited, not malformed."""
    try:
        return parse_source_time(value, "edited_at") if value else None
    except ParseError:
        return None


# -- streaming ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamEvent:
    """What one streaming event means: kind is update, edit, delete or ignored."""

    kind: str
    item: Item | None = None
    delete: Delete | None = None

    @property
    def change(self) -> Item | Delete | None:
        return self.item or self.delete


@parser
def parse_stream_event(event_name: str, data_text: str, origin: str) -> StreamEvent:
    """One SSE event from a hashtag stream. Unknown event names are ignored, not errors."""
    if event_name == "delete":
        local_id = (data_text or "").strip().strip('"')
        if not is_local_id(local_id):
            raise ParseError("delete without an id")
        delete = clean_change(Delete(origin_host(origin), local_id=local_id))  # a replay's origin
        return StreamEvent("delete", delete=delete)
    if event_name not in ("update", "status.update"):
        return StreamEvent("ignored")
    try:
        status = jsontext.loads(data_text)
    except (TypeError, ValueError) as exc:
        raise ParseError(f"invalid JSON: {exc}") from None
    kind = "update" if event_name == "update" else "edit"
    return StreamEvent(kind, item=parse_status(status, origin))
