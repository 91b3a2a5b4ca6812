"""What the room's pages need from the archive beyond the posts: pins and meet-up proposals.

Read once per event per build, in the build's snapshot (build.Archive.read_event), into
`EventData.room`; the wall (wall.py), the meet-ups pages (meetups.py) and the live page use it.
Also the view models those pages share: a post as a card the wall shows (no links: nothing on
a wall is clickable), a meet-up as the board shows it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import nh3
import sqlite_utils
from markupsafe import Markup

from core.events import Event
from core.items import Author, Item, format_time
from core.meetups import Meetup, board, board_day, read_proposals
from core.moderation.pins import pinned_items

from .posts import anchor_of
from .render import http_url, trusted_html

PLAIN_TAGS = {"p", "br", "span", "strong", "em", "b", "i", "u", "s", "del", "code", "pre",
              "blockquote", "ul", "ol", "li"}  # fmt: skip  # post HTML on a wall: links unwrapped
_PLAIN = nh3.Cleaner(tags=PLAIN_TAGS, attributes={}, strip_comments=True, link_rel=None)


@dataclass
class RoomData:
    pins: list[Item] = field(default_factory=list)  # newest pin first, visible posts only
    proposals: list[Meetup] = field(default_factory=list)  # attendees' meet-ups


def read_room(db: sqlite_utils.Database | None, event: Event) -> RoomData:
    if db is None:
        return RoomData()
    found = RoomData(pinned_items(db, event.slug))
    if event.meetup_hashtag:
        found.proposals = read_proposals(db, event.slug, event.meetup_hashtag, event.tz)
    return found


def meetups_of(event: Event, room: RoomData | None) -> list[Meetup]:
    """The whole board: organizers' meet-ups first, then attendees', each in time order."""
    return board([*event.meetups, *(room.proposals if room else [])])


def meetup_days(event: Event, meetups: list[Meetup]) -> dict[str, list[Meetup]]:
    """Board day (ISO date) → its meet-ups, in the board's order."""
    days: dict[str, list[Meetup]] = {}
    for meetup in meetups:
        days.setdefault(board_day(meetup.start, event.tz).isoformat(), []).append(meetup)
    return dict(sorted(days.items()))


def meetups_key(meetups: list[Meetup]) -> list:
    """What a page showing these meet-ups depends on (the content digest covers the yaml)."""
    return [(m.post.extra.get("seq") if m.post else m.line, [a.id for a in m.going])
            for m in meetups]  # fmt: skip


def card(item: Item, tz: str) -> dict[str, Any]:
    """A post as the wall shows it: escaped text fields, post HTML with its links unwrapped,
    photos large; a content warning shows only the warning, sensitive photos are not shown."""
    author = item.author
    photos = [] if item.sensitive or item.spoiler else [
        {"src": http_url(m.preview_url) or http_url(m.url), "alt": m.alt}
        for m in item.media if m.kind == "image" and http_url(m.url)
    ][:2]  # fmt: skip
    return {
        "uri": item.uri,
        "seq": item.extra.get("seq", 0),
        "name": author.name or author.handle,
        "handle": author.handle,
        "avatar": http_url(author.avatar),
        "created_at": format_time(item.created_at),
        "time": item.created_at,
        "spoiler": item.spoiler,
        "html": Markup(_PLAIN.clean(str(trusted_html(item.html)))) if not item.spoiler else "",
        "photos": photos,
        "source": item.source,
        "note": item.source == "note",
    }


def person(author: Author) -> dict[str, str]:
    return {"id": author.id, "name": author.name or author.handle or "someone",
            "avatar": http_url(author.avatar), "url": http_url(author.url)}  # fmt: skip


def board_entry(meetup: Meetup) -> dict[str, Any]:
    """A meet-up as the board shows it (the proposer and who is going, for attendees')."""
    post = meetup.post
    return {
        "title": meetup.title,
        "start": meetup.start,
        "end": meetup.end,
        "start_iso": format_time(meetup.start),
        "end_iso": format_time(meetup.end),
        "place": meetup.place,
        "link": http_url(meetup.link),
        "description": meetup.description,
        "by": meetup.by,
        "uri": post.uri if post else "",
        "original": http_url(post.url) if post else "",
        "proposer": person(post.author) if post else None,
        "going": [person(a) for a in meetup.going],
        "id": _entry_id(meetup),
    }


def _entry_id(meetup: Meetup) -> str:
    if meetup.post is not None:
        return "m" + anchor_of(meetup.post.uri)  # after the post's own anchor: stable
    slug = re.sub(r"[^a-z0-9]+", "-", meetup.title.casefold()).strip("-")
    return f"m-{meetup.start:%Y%m%d%H%M}-{slug}"[:80]
