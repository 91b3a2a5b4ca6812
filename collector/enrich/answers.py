"""Enrichment answers → changes, pure: the same functions read an answer the collector just
received and one a replay reads from a recording.

    getProfiles         → AuthorUpdate per profile
    getPosts            → Counts per post; Delete for each asked-for uri it left out
    statuses (Mastodon) → Counts per status; Delete for each asked-for id it left out
    photos.getInfo      → Delete when Flickr says error 1 (photo not found), else nothing
    photos.search       → Counts per photo (count_faves, count_comments extras)

An answer recorded with its `request` (what was asked) says what is gone; one without says
nothing about the posts it does not hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.errors import ParseError

from ..normalise import AuthorUpdate, Counts, Delete, as_count
from ..sources import flickr, mastodon
from ..sources.base import parser
from .profiles import parse_profiles

FLICKR_NOT_FOUND = 1  # flickr.photos.getInfo: "Photo not found" (deleted, or made private)


@parser  # as every source parser: its changes clean, nothing but ParseError out of it
def profile_updates(answer: Any) -> list[AuthorUpdate]:
    profiles, _broken = parse_profiles(answer)
    return [AuthorUpdate(p.author()) for p in profiles]


@parser
def post_counts(answer: Any, asked: Sequence[str] | None = None) -> list[Counts | Delete]:
    """A getPosts answer `{"posts": [postView]}`."""
    if not isinstance(answer, dict) or not isinstance(answer.get("posts"), list):
        raise ParseError("getPosts answer has no posts list")
    changes: list[Counts | Delete] = []
    for view in answer["posts"]:
        if isinstance(view, dict) and isinstance(view.get("uri"), str):
            changes.append(Counts(view["uri"], _n(view.get("repostCount")) + _n(view.get("quoteCount")),
                                  _n(view.get("likeCount")), _n(view.get("replyCount"))))  # fmt: skip
    found = {c.uri for c in changes}
    changes += [Delete("appview", uri=uri) for uri in asked or () if uri not in found]
    return changes


@parser
def status_counts(
    answer: Any, origin: str, asked: Sequence[str] | None = None
) -> list[Counts | Delete]:
    """A Mastodon answer: a list of Statuses (GET /api/v1/statuses?id[]=) or one Status."""
    statuses = answer if isinstance(answer, list) else [answer]
    changes: list[Counts | Delete] = []
    found = set()
    for status in statuses:
        if not isinstance(status, dict) or not isinstance(status.get("uri"), str):
            continue
        found.add(str(status.get("id")))
        if mastodon.canonical_uri(status["uri"]) != status["uri"]:
            continue  # a Bridgy Fed mirror: its counts are not the Bluesky post's
        changes.append(Counts(status["uri"], _n(status.get("reblogs_count")),
                              _n(status.get("favourites_count")), _n(status.get("replies_count"))))  # fmt: skip
    changes += [Delete(origin, local_id=str(i)) for i in asked or () if str(i) not in found]
    return changes


@parser
def photo_info(answer: Any, photo_id: str) -> list[Delete]:
    """A flickr.photos.getInfo answer says whether the photo still exists (it has comments
    and views, but no faves, so its counts come from the search extras instead)."""
    if not isinstance(answer, dict):
        raise ParseError("getInfo answer is not an object")
    if answer.get("stat") == "fail":
        if answer.get("code") == FLICKR_NOT_FOUND:
            return [Delete("flickr", local_id=str(photo_id))]
        raise ParseError(f"Flickr error {answer.get('code')}: {answer.get('message', '')}")
    if not isinstance(answer.get("photo"), dict):
        raise ParseError("getInfo answer has no photo")
    return []


@parser
def photo_counts(answer: Any) -> list[Counts]:
    """A flickr.photos.search page asked with the count_faves and count_comments extras."""
    photos = answer.get("photos") if isinstance(answer, dict) else None
    if not isinstance(photos, dict) or not isinstance(photos.get("photo"), list):
        raise ParseError("search answer has no photos list")
    return [
        Counts(flickr.photo_page(str(p["owner"]), str(p["id"])), 0, _n(p.get("count_faves")),
               _n(p.get("count_comments")))
        for p in photos["photo"]
        if isinstance(p, dict) and p.get("owner") and str(p.get("id", "")).isdigit()
    ]  # fmt: skip


def _n(value: Any) -> int:
    """A count, as an int or the string Flickr sometimes sends; anything else is 0."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 16:
        value = int(value)
    return as_count(value)  # a count no SQLite integer holds is a broken field: 0
