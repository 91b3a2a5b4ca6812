"""One function per page family: each returns Pages (output path, template, context). Pure.

The build reads the archive once per event into an EventData; these functions only arrange it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from core.events import Break, Day, Event, Presentation, Site
from core.items import Item

from . import charts
from .assign import Assignment
from .markdown import render_markdown


@dataclass(frozen=True)
class Page:
    path: str  # under output/, e.g. "northwind-2026/talks/x/index.html"
    template: str
    context: dict[str, Any]


@dataclass
class EventData:
    """What the archive holds for one event, read in one snapshot."""

    event: Event
    items: list[Item]  # visible, oldest first
    assignment: Assignment
    last_seq: int = 0
    stream_url: str = ""
    inline_posts: int = 50

    def count(self, slug: str) -> int:
        found = self.assignment.talks.get(slug)
        return len(found if found is not None else self.assignment.breaks.get(slug, []))


@dataclass(frozen=True)
class Slot:
    """One row of a day's schedule: talks starting together in parallel rooms, or a break."""

    start: datetime
    end: datetime
    talks: dict[str, Presentation]  # room slug -> talk
    brk: Break | None = None


def index_page(site: Site, events: list[EventData]) -> Page:
    return Page("index.html", "index.html", {"site": site, "events": events})


def event_page(site: Site, data: EventData) -> Page:
    event = data.event
    context = {
        "site": site,
        "data": data,
        "event": event,
        "description": render_markdown(event.description),
        "days": [(day, schedule_rows(day), day_chart(data, day)) for day in event.days],
        "unplaced": data.assignment.unplaced,
    }
    return Page(f"{event.slug}/index.html", "event.html", context)


def talk_pages(site: Site, data: EventData) -> list[Page]:
    event = data.event
    pages = []
    for talk in event.presentations:
        same_room = [p for p in event.presentations if p.room == talk.room]
        same_room.sort(key=lambda p: p.start)
        i = same_room.index(talk)
        posts = data.assignment.talks[talk.slug]
        context = {
            "site": site,
            "event": event,
            "talk": talk,
            "room": event.room(talk.room),
            "abstract": render_markdown(talk.abstract),
            "posts": posts,
            "chart": span_chart(event, posts, talk.start, talk.end + event.grace, talk.title),
            "previous": same_room[i - 1] if i > 0 else None,
            "next": same_room[i + 1] if i + 1 < len(same_room) else None,
        }
        pages.append(
            Page(f"{event.slug}/talks/{talk.slug}/index.html", "presentation.html", context)
        )
    return pages


def break_pages(site: Site, data: EventData) -> list[Page]:
    event = data.event
    pages = []
    for brk in event.breaks:
        posts = data.assignment.breaks[brk.slug]
        context = {
            "site": site,
            "event": event,
            "brk": brk,
            "posts": posts,
            "chart": span_chart(event, posts, brk.start, brk.end, brk.title),
        }
        pages.append(Page(f"{event.slug}/breaks/{brk.slug}/index.html", "break.html", context))
    return pages


def live_page(site: Site, data: EventData) -> Page:
    """The newest posts inline, newest first, and where live.js picks up the stream."""
    newest = sorted(data.items, key=lambda i: (i.created_at, i.extra.get("seq", 0)), reverse=True)
    shown = newest[: data.inline_posts]
    after = max([data.last_seq, *(i.extra.get("seq", 0) for i in shown)])
    context = {
        "site": site,
        "event": data.event,
        "posts": shown,
        "after": after,
        "stream": data.stream_url,
        "max_posts": max(200, data.inline_posts * 4),
    }
    return Page(f"{data.event.slug}/live/index.html", "live.html", context)


def schedule_rows(day: Day) -> list[Slot]:
    """The day's talks grouped by start time, with breaks between them, in time order."""
    talks = [p for s in day.sessions for p in s.presentations]
    rows: dict[datetime, Slot] = {}
    for talk in sorted(talks, key=lambda p: p.start):
        slot = rows.setdefault(talk.start, Slot(talk.start, talk.end, {}))
        slot.talks[talk.room] = talk
    slots = list(rows.values()) + [Slot(b.start, b.end, {}, b) for b in day.breaks]
    return sorted(slots, key=lambda s: (s.start, s.brk is None))


def day_chart(data: EventData, day: Day):
    """Posts per 5 minutes over one day, from its first start to its last end plus grace."""
    spans = [(s.start, s.end) for s in day.sessions] + [(b.start, b.end) for b in day.breaks]
    if not spans:
        return None
    start = min(s for s, _ in spans)
    end = max(e for _, e in spans) + data.event.grace
    counts = charts.activity((i.created_at for i in data.items), start, end, timedelta(minutes=5))
    return charts.svg(counts, data.event.tz, f"Activity on {day.title}", f"chart-{day.date}")


def span_chart(event: Event, posts: list[Item], start: datetime, end: datetime, title: str):
    counts = charts.activity((i.created_at for i in posts), start, end, timedelta(minutes=1))
    return charts.svg(counts, event.tz, f"Activity during {title}", "chart")
