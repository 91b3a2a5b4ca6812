"""Bluesky: Jetstream v1 events and searchPosts postViews → Item or Delete.

Jetstream carries every post on the network, so hashtags are matched here: facet #tag features,
then record.tags, then a text fallback with Bluesky's own tag rules. Pure functions; the
websocket and the search polling live apart from them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from core.errors import ParseError
from core.items import Author, Item, Media

from ...normalise import (
    LATEST,
    Delete,
    ProfileHint,
    SkipItem,
    as_count,
    as_dict,
    as_list,
    as_text,
    clamp,
    normalise_tags,
    parse_source_time,
    tags_from_text,
)
from ...sanitise import facet_links, safe_url, text_to_html
from ..base import parser

SOURCE = "bluesky"
POST = "app.bsky.feed.post"
PROFILE = "app.bsky.actor.profile"  # an author's own record: name, avatar, self-labels
CDN = "https://cdn.bsky.app/img"
MAX_TIME_US = int(LATEST.timestamp()) * 1_000_000  # later is not a time Jetstream saw
HIDE_LABEL = "!no-unauthenticated"  # the author asked apps not to show logged-out viewers


DID = re.compile(r"did:[a-z]+:[A-Za-z0-9._:%-]{1,2048}")
RKEY = re.compile(r"[A-Za-z0-9._:~-]{1,512}")  # atproto's record key syntax
CID = re.compile(r"[A-Za-z0-9]{8,256}")


def _is_did(value) -> bool:
    return isinstance(value, str) and bool(DID.fullmatch(value))


def at_uri(did: str, rkey: str) -> str:
    return f"at://{did}/{POST}/{rkey}"


def web_url(did: str, rkey: str) -> str:
    return f"https://bsky.app/profile/{did}/post/{rkey}"


@parser
def parse_jetstream(
    event: dict, hashtags: set[str], handles: dict[str, str] | None = None
) -> Item | Delete | ProfileHint | None:
    """One Jetstream v1 event. Posts not carrying one of `hashtags` give None, as do likes
    and follows. Identity events teach `handles` (did → handle); they, account events and
    profile record commits give a ProfileHint (enrichment looks the author up again)."""
    if not isinstance(event, dict) or not _is_did(event.get("did")):
        raise ParseError("event has no did")
    did, kind = event["did"], event.get("kind")
    if kind == "identity":
        handle = as_text(as_dict(event.get("identity")).get("handle"))
        if handles is not None and handle:
            handles[did] = handle
        return ProfileHint(SOURCE, did)
    if kind == "account":
        return ProfileHint(SOURCE, did)
    commit = event.get("commit")
    if kind == "commit" and isinstance(commit, dict) and commit.get("collection") == PROFILE:
        return ProfileHint(SOURCE, did)  # a new name, avatar or self-label (an opt-out)
    if kind != "commit" or not isinstance(commit, dict) or commit.get("collection") != POST:
        return None
    rkey, operation = commit.get("rkey"), commit.get("operation")
    if not isinstance(rkey, str) or not RKEY.fullmatch(rkey):
        raise ParseError("commit has no rkey")
    if operation == "delete":
        return Delete("jetstream", uri=at_uri(did, rkey))
    if operation not in ("create", "update"):
        return None
    try:
        return parse_record(did, rkey, commit, event.get("time_us"), hashtags, handles or {})
    except SkipItem:
        return None


def parse_record(did, rkey, commit, time_us, hashtags, handles) -> Item:
    record = commit.get("record")
    if not isinstance(record, dict):
        raise ParseError("post without a record")
    tags = record_tags(record)
    if not set(tags) & {h.casefold() for h in hashtags}:
        raise SkipItem("no event hashtag")
    seen = _time_from_us(time_us)
    created = parse_source_time(record["createdAt"]) if record.get("createdAt") else seen
    if created is None:  # neither the record nor Jetstream says when: no place on any page
        raise ParseError("post has no createdAt and no time_us")
    author = Author(id=did, handle=handles.get(did, ""), url=f"https://bsky.app/profile/{did}")
    return _item(
        did, rkey, "jetstream", record, author, tags=tags,
        created=clamp(created, seen) if seen else created,
        media=tuple(_blob_media(did, record.get("embed"))),
        extra={"cid": commit.get("cid"), "time_us": time_us},
    )  # fmt: skip


@parser
def parse_post_view(view: dict, hashtags: set[str] | None = None) -> Item:
    """A postView from app.bsky.feed.searchPosts (or getPosts), hydrated by the AppView."""
    if not isinstance(view, dict):
        raise ParseError("postView is not an object")
    uri, record, author = view.get("uri"), view.get("record"), view.get("author")
    if not isinstance(uri, str) or not uri.startswith("at://") or not isinstance(record, dict):
        raise ParseError("postView has no uri or record")
    if not isinstance(author, dict) or not _is_did(author.get("did")):
        raise ParseError("postView has no author")
    did, rkey = author["did"], uri.rsplit("/", 1)[-1]
    if not RKEY.fullmatch(rkey):
        raise ParseError("postView has no record key")
    if hashtags is not None and not set(record_tags(record)) & {h.casefold() for h in hashtags}:
        raise SkipItem("no event hashtag")
    seen = parse_source_time(view["indexedAt"]) if view.get("indexedAt") else None
    created = parse_source_time(record.get("createdAt") or view.get("indexedAt"), "createdAt")
    return _item(
        did, rkey, "appview", record, _view_author(author),
        created=clamp(created, seen) if seen else created,
        media=tuple(_view_media(view.get("embed"))),
        counts=(view.get("repostCount"), view.get("likeCount"), view.get("replyCount")),
        extra={"cid": view.get("cid"), "indexed_at": view.get("indexedAt")},
    )  # fmt: skip


def record_tags(record: dict) -> tuple[str, ...]:
    """Every hashtag of a post record, lowercased: facets, then record.tags, then the text."""
    facet_tags = [
        feature.get("tag")
        for facet in as_list(record.get("facets"))
        if isinstance(facet, dict)
        for feature in as_list(facet.get("features"))
        if isinstance(feature, dict) and as_text(feature.get("$type")).endswith("#tag")
    ]
    tags = [t for t in (*facet_tags, *as_list(record.get("tags"))) if isinstance(t, str)]
    return normalise_tags(tags, tags_from_text(as_text(record.get("text"))))


def _item(did, rkey, origin, record, author, *, created, media, extra, counts=(0, 0, 0),
          tags: tuple[str, ...] | None = None) -> Item:  # fmt: skip
    text = as_text(record.get("text"))
    langs = as_list(record.get("langs"))
    return Item(
        uri=at_uri(did, rkey), source=SOURCE, origin=origin, local_id=at_uri(did, rkey),
        url=web_url(did, rkey), created_at=created, author=author,
        html=text_to_html(text, as_list(record.get("facets"))), text=text,
        lang=langs[0][:40] if langs and isinstance(langs[0], str) else None,
        tags=record_tags(record) if tags is None else tags, media=media,
        links=tuple(_links(record)),
        reply_to=_ref_uri(as_dict(record.get("reply")).get("parent")),
        quote_of=_quote_uri(record.get("embed")),
        boosts=as_count(counts[0]), likes=as_count(counts[1]), replies=as_count(counts[2]),
        extra={k: v for k, v in extra.items() if v is not None},
    )  # fmt: skip


def _view_author(author: dict) -> Author:
    labels = {as_text(label.get("val")) for label in as_list(author.get("labels"))
              if isinstance(label, dict)}  # fmt: skip
    return Author(
        id=author["did"],
        handle=as_text(author.get("handle")),
        name=as_text(author.get("displayName")),
        url=f"https://bsky.app/profile/{author['did']}",
        avatar=safe_url(author.get("avatar")) or "",
        hidden=HIDE_LABEL in labels,
    )


def _blob_media(did: str, embed) -> list[Media]:
    """Media from a raw record embed: only blob CIDs, so the CDN URLs are built."""
    if not isinstance(embed, dict):
        return []
    kind = embed.get("$type", "")
    if kind == "app.bsky.embed.recordWithMedia":
        return _blob_media(did, embed.get("media"))
    if kind == "app.bsky.embed.images":
        return [m for m in (_blob_image(did, i) for i in as_list(embed.get("images"))) if m]
    if kind == "app.bsky.embed.video":
        cid = _blob_cid(embed.get("video"))
        if cid:
            base = f"https://video.bsky.app/watch/{did}/{cid}"
            return [
                Media(
                    "video",
                    f"{base}/playlist.m3u8",
                    f"{base}/thumbnail.jpg",
                    as_text(embed.get("alt")),
                    *_ratio(embed),
                )
            ]
    return []


def _blob_image(did: str, image) -> Media | None:
    cid = _blob_cid(image.get("image")) if isinstance(image, dict) else None
    if not cid:
        return None
    return Media("image", f"{CDN}/feed_fullsize/plain/{did}/{cid}@jpeg",
                 f"{CDN}/feed_thumbnail/plain/{did}/{cid}@jpeg",
                 as_text(image.get("alt")), *_ratio(image))  # fmt: skip


def _view_media(embed) -> list[Media]:
    if not isinstance(embed, dict):
        return []
    kind = embed.get("$type", "")
    if kind == "app.bsky.embed.recordWithMedia#view":
        return _view_media(embed.get("media"))
    if kind == "app.bsky.embed.images#view":
        return [Media("image", url, safe_url(i.get("thumb")) or "", as_text(i.get("alt")),
                      *_ratio(i))
                for i in as_list(embed.get("images"))
                if isinstance(i, dict) and (url := safe_url(i.get("fullsize")))]  # fmt: skip
    if kind == "app.bsky.embed.video#view" and safe_url(embed.get("playlist")):
        return [
            Media(
                "video",
                embed["playlist"],
                safe_url(embed.get("thumbnail")) or "",
                as_text(embed.get("alt")),
                *_ratio(embed),
            )
        ]
    return []


def _blob_cid(blob) -> str | None:
    """A blob's CID (it goes into a CDN URL: only the characters a CID has)."""
    if isinstance(blob, dict):
        ref = blob.get("ref")
        cid = ref.get("$link") if isinstance(ref, dict) else blob.get("cid")  # or the legacy shape
        if isinstance(cid, str) and CID.fullmatch(cid):
            return cid
    return None


def _ratio(node: dict) -> tuple[int | None, int | None]:
    ratio = as_dict(node.get("aspectRatio"))
    return as_count(ratio.get("width")) or None, as_count(ratio.get("height")) or None


def _links(record: dict) -> list[str]:
    """Link facets that text_to_html turned into anchors, then an external embed's URL."""
    size = len(as_text(record.get("text")).encode("utf-8", "surrogatepass"))
    link_facets = [
        facet for facet in as_list(record.get("facets"))
        if isinstance(facet, dict) and all(
            isinstance(f, dict) and as_text(f.get("$type")).endswith("#link")
            for f in as_list(facet.get("features")) or [None]
        )
    ]  # fmt: skip
    links = [href for _, _, href in facet_links(link_facets, size)]
    embed = record.get("embed") or {}
    if isinstance(embed, dict) and isinstance(embed.get("external"), dict):
        links.append(safe_url(embed["external"].get("uri")))
    return list(dict.fromkeys(u for u in links if u))


def _quote_uri(embed) -> str | None:
    if not isinstance(embed, dict):
        return None
    record = embed.get("record")
    if isinstance(record, dict) and isinstance(record.get("record"), dict):
        record = record["record"]  # recordWithMedia nests the strongRef one level deeper
    return _ref_uri(record)


def _ref_uri(ref) -> str | None:
    uri = ref.get("uri") if isinstance(ref, dict) else None
    return uri if isinstance(uri, str) and uri.startswith("at://") else None


def _time_from_us(time_us) -> datetime | None:
    """Jetstream's witness time; None when it is not a time (then createdAt stands alone)."""
    if type(time_us) is int and 0 < time_us < MAX_TIME_US:
        return datetime.fromtimestamp(time_us / 1_000_000, UTC)
    return None
