"""The venue wall: `EVENT/wall/` for every room, `EVENT/wall/ROOM/` for one room's screen.

A static page for a projector or a TV, fed by the live stream like the live page
(static/wall.js): the newest posts inline (so it shows something without JavaScript), the posts
organizers pinned, the talk on now and the next one with the time left (from the schedule,
written into the page), the day's meet-ups, and a QR code to the live page made here, at build
time, as SVG (segno). Best recent posts and photos go into a <template> the wall shows in turn
when nothing arrives.
"""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import urlsplit

import segno
from markupsafe import Markup

from core.events import Event, Room, Site

from . import pages
from .pages import EventData, Page
from .room import board_entry, card, meetups_key, meetups_of

COLUMNS = 3
PER_COLUMN = 5  # posts kept in each column: the wall's DOM holds at most COLUMNS * PER_COLUMN
BEST = 24  # best recent posts and photos, shown in turn when the stream is quiet
BEST_FROM = 600  # ... chosen among this many newest posts
PACE_MS = 6000  # at most one new post every PACE_MS when they come faster than people read
IDLE_MS = 45000  # after this long without a post, the wall shows its best posts in turn


def wall_pages(site: Site, data: EventData, base_url: str) -> list[Page]:
    """The event's wall and one per room."""
    live = _live_url(site, data.event, base_url)
    qr = qr_svg(live) if live.startswith(("http://", "https://")) else None
    return [_wall(site, data, None, live, qr)] + [
        _wall(site, data, room, live, qr) for room in data.event.rooms
    ]


def _wall(site: Site, data: EventData, room: Room | None, live: str, qr: Markup | None) -> Page:
    event = data.event
    shown = data.newest(COLUMNS * PER_COLUMN)
    best = best_posts(data)
    pins = data.room.pins if data.room else []
    meetups = meetups_of(event, data.room)
    after = max([data.last_seq, *(p.seq for p in shown)])

    def context() -> dict[str, Any]:
        tz = event.timezone
        cards = [card(item, tz) for item in data.whole(shown)]
        return {
            "site": site,
            "event": event,
            "room": room,
            "rooms": [room] if room else list(event.rooms),
            "talks": _talks(event),
            "columns": [cards[i::COLUMNS] for i in range(COLUMNS)],
            "pinned": [card(item, tz) for item in pins],
            "best": [card(item, tz) for item in data.whole(best)],
            "board": [board_entry(m) for m in meetups],
            "qr": qr,
            "live_url": live,
            "live_text": _short(live),
            "stream": data.stream_url,
            "after": after,
            "per_column": PER_COLUMN,
            "pace": PACE_MS,
            "idle": IDLE_MS,
        }

    key = ("wall", room.slug if room else None, data.seqs(shown), data.seqs(best), after, live,
           [(i.uri, i.extra.get("seq")) for i in pins], meetups_key(meetups), data.stream_url)  # fmt: skip
    path = f"{event.slug}/wall/{room.slug + '/' if room else ''}index.html"
    return Page(path, "wall.html", context, key)


def live_page(site: Site, data: EventData) -> Page:
    """pages.live_page with the pinned posts and the meet-ups board added."""
    page = pages.live_page(site, data)
    pins = data.room.pins if data.room else []
    meetups = meetups_of(data.event, data.room)

    def context() -> dict[str, Any]:
        found = page.context()
        uris = {item.uri for item in pins}  # a pinned post is shown once, on top
        items = data.whole(found["posts"])
        shown = [p for p, item in zip(found["posts"], items, strict=True) if item.uri not in uris]
        return {**found, "posts": shown,
                "pinned": pins, "board": [board_entry(m) for m in meetups],
                "meetup_tag": data.event.meetup_hashtag or ""}  # fmt: skip

    key = (page.key, [(i.uri, i.extra.get("seq")) for i in pins], meetups_key(meetups))
    return dataclasses.replace(page, context=context, key=key)


def best_posts(data: EventData) -> list:
    """The most boosted and liked recent posts, and recent photos, newest first (each once)."""
    recent = data.parts.newest(BEST_FROM)[-BEST_FROM:]
    liked = sorted((p for p in recent if p.boosts + p.likes and not p.sensitive),
                   key=lambda p: (p.boosts + p.likes, p.t), reverse=True)[: BEST // 2]  # fmt: skip
    photos = [p for p in reversed(recent) if p.has_media and not p.sensitive][: BEST // 2]
    chosen = {p.id: p for p in [*liked, *photos]}
    return sorted(chosen.values(), key=lambda p: p.t, reverse=True)


def qr_svg(url: str) -> Markup:
    """The URL as a QR code, inline SVG that scales with its box (dark on light: every phone
    reads it, whatever the wall's theme)."""
    code = segno.make(url, error="m")
    svg = code.svg_inline(border=2, omitsize=True, svgclass="qr", lineclass=None,
                          dark="#000000", light="#ffffff")  # fmt: skip
    label = f"QR code: {url}".replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    return Markup(svg.replace("<svg ", f'<svg role="img" aria-label="{label}" ', 1))


def _live_url(site: Site, event: Event, base_url: str) -> str:
    base = (base_url or site.base_url or "").rstrip("/")
    return f"{base}/{event.slug}/live/" if base else f"/{event.slug}/live/"


def _short(url: str) -> str:
    """The URL as people type it: no scheme, no trailing slash."""
    parts = urlsplit(url)
    return (parts.netloc + parts.path).rstrip("/") or url


def _talks(event: Event) -> list[dict[str, Any]]:
    rooms = {r.slug: r.name for r in event.rooms}
    return [
        {"start": t.start, "end": t.end, "room": t.room, "room_name": rooms.get(t.room, ""),
         "title": t.title, "speakers": ", ".join(t.speakers)}
        for t in sorted(event.presentations, key=lambda t: (t.start, t.room))
    ]  # fmt: skip
