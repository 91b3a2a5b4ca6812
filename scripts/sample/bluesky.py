"""Jetstream v1 events: identity before an author's first post, commit creates and deletes.

Facets index the UTF-8 bytes of the text, as the atproto lexicon requires.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from .draft import Draft
from .ids import cid, epoch_us, iso_ms, tid
from .world import Author

POST = "app.bsky.feed.post"


def shorten(url: str) -> str:
    """What the Bluesky app shows for a link: no scheme, cut at 27 characters with '...'."""
    shown = url.split("://", 1)[-1]
    return shown if len(shown) <= 30 else shown[:27] + "..."


def text_and_facets(draft: Draft) -> tuple[str, list[dict]]:
    parts: list[str] = []
    facets: list[dict] = []
    offset = 0  # in UTF-8 bytes

    def put(text: str, feature: dict | None = None) -> None:
        nonlocal offset
        size = len(text.encode("utf-8"))
        if feature:
            facets.append(
                {"features": [feature], "index": {"byteEnd": offset + size, "byteStart": offset}}
            )
        parts.append(text)
        offset += size

    for seg in draft.segments:
        kind = seg[0]
        if kind in ("text", "raw"):
            put(seg[1])  # hostile HTML stays literal text here
        elif kind == "para":
            put("\n\n")
        elif kind == "tag":
            put("#" + seg[1], {"$type": "app.bsky.richtext.facet#tag", "tag": seg[1]})
        elif kind == "link":
            put(shorten(seg[1]), {"$type": "app.bsky.richtext.facet#link", "uri": seg[1]})
        elif kind == "mention":
            who: Author = seg[1]
            put("@" + who.handle, {"$type": "app.bsky.richtext.facet#mention", "did": who.did})
    return "".join(parts).rstrip(" "), facets


def created_at_text(rng: random.Random, moment: datetime) -> str:
    """Usually ...Z with milliseconds; some clients write +00:00 and microseconds."""
    if rng.random() < 0.03:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "+00:00"
    return iso_ms(moment)


def identity(author: Author, time_us: int, seq: int, moment: datetime) -> dict:
    return {
        "did": author.did,
        "time_us": time_us,
        "kind": "identity",
        "identity": {
            "did": author.did,
            "handle": author.handle,
            "seq": seq,
            "time": iso_ms(moment),
        },
    }


def make_jetstream(rng: random.Random, draft: Draft, clock: int) -> tuple[dict, str, datetime]:
    """A commit create for the draft: (event, at-uri, when Jetstream emitted it)."""
    author = draft.author
    text, facets = text_and_facets(draft)
    record: dict = {"$type": POST, "createdAt": created_at_text(rng, draft.created)}
    if draft.images:
        record["embed"] = {
            "$type": "app.bsky.embed.images",
            "images": [
                {
                    "alt": image.alt or "",
                    "aspectRatio": {"height": image.height, "width": image.width},
                    "image": {
                        "$type": "blob",
                        "ref": {"$link": cid(rng, "bafkrei")},
                        "mimeType": "image/jpeg",
                        "size": rng.randint(80_000, 900_000),
                    },
                }
                for image in draft.images[:4]
            ],
        }
    if facets:
        record["facets"] = facets
    record["langs"] = [draft.lang or "en"]
    record["text"] = text
    emitted = draft.created + timedelta(microseconds=rng.randint(150_000, 1_800_000))
    rkey = tid(draft.created, clock)
    event = {
        "did": author.did,
        "time_us": epoch_us(emitted),
        "kind": "commit",
        "commit": {
            "rev": tid(emitted, clock + 1),
            "operation": "create",
            "collection": POST,
            "rkey": rkey,
            "record": record,
            "cid": cid(rng),
        },
    }
    return event, f"at://{author.did}/{POST}/{rkey}", emitted


def delete_event(did: str, rkey: str, moment: datetime, clock: int) -> dict:
    return {
        "did": did,
        "time_us": epoch_us(moment),
        "kind": "commit",
        "commit": {
            "rev": tid(moment, clock),
            "operation": "delete",
            "collection": POST,
            "rkey": rkey,
        },
    }
