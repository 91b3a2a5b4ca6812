"""Assign posts to presentations and breaks. Pure: an Event and Items in, a mapping out.

Every time here is UTC (core.events converts the schedule's local wall times once), so parallel
tracks, time zones and the DST change between two days need no special case.

For one item, let t = item.created_at, T = item.tags (lowercase, no '#'), grace = event.grace.
The first rule that gives an answer wins:

1. Talk hashtag. A presentation p with p.hashtag in T and p.start <= t < p.end + grace.
   When several match, the one with the earliest start.
2. Room hashtag. For each room whose hashtag is in T, in the event's room order: the presentation
   in that room running at t (start <= t < end), else the one in that room whose grace window
   holds t (end <= t < end + grace; the latest end if, in a tightly packed room, there are two).
   The first room that yields a presentation wins.
3. No talk or room tag. Only when T names no presentation's and no room's hashtag at all: if
   exactly one presentation is running at t, that one; else if none is running and exactly one
   is in its grace window, that one. (Two parallel talks running means we cannot tell.)
4. A break containing t (start <= t < end).
5. Otherwise the item is unplaced (before the event, after it, or ambiguous).

A post that names a talk or room but falls outside its time is *not* given to whatever else runs
then (rule 3 is skipped): its author told us what it is about, and that is not the other talk.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from core.events import Break, Event, Presentation
from core.items import Item

Place = Presentation | Break | None


@dataclass
class Assignment:
    """Items per presentation slug and per break slug (oldest first), and the unplaced rest."""

    talks: dict[str, list[Item]] = field(default_factory=dict)
    breaks: dict[str, list[Item]] = field(default_factory=dict)
    unplaced: list[Item] = field(default_factory=list)


def assign(event: Event, item: Item) -> Place:
    """The presentation or break one item belongs to, or None."""
    t = item.created_at
    tags = {tag.lower() for tag in item.tags}
    return (
        _by_talk_tag(event, t, tags)
        or _by_room_tag(event, t, tags)
        or _by_time_alone(event, t, tags)
        or _by_break(event, t)
    )


def assign_all(event: Event, items: Iterable[Item]) -> Assignment:
    result = Assignment(
        talks={p.slug: [] for p in event.presentations},
        breaks={b.slug: [] for b in event.breaks},
    )
    for item in items:
        place = assign(event, item)
        if isinstance(place, Presentation):
            result.talks[place.slug].append(item)
        elif isinstance(place, Break):
            result.breaks[place.slug].append(item)
        else:
            result.unplaced.append(item)
    return result


def _running(p: Presentation, t: datetime) -> bool:
    return p.start <= t < p.end


def _in_grace(event: Event, p: Presentation, t: datetime) -> bool:
    return p.end <= t < p.end + event.grace


def _by_talk_tag(event: Event, t: datetime, tags: set[str]) -> Presentation | None:
    found = [
        p for p in event.presentations
        if p.hashtag in tags and p.start <= t < p.end + event.grace
    ]  # fmt: skip
    return min(found, key=lambda p: p.start, default=None)


def _by_room_tag(event: Event, t: datetime, tags: set[str]) -> Presentation | None:
    for room in event.rooms:
        if not room.hashtag or room.hashtag not in tags:
            continue
        talks = [p for p in event.presentations if p.room == room.slug]
        running = [p for p in talks if _running(p, t)]
        if running:
            return running[0]
        grace = [p for p in talks if _in_grace(event, p, t)]
        if grace:
            return max(grace, key=lambda p: p.end)
    return None


def _names_a_talk_or_room(event: Event, tags: set[str]) -> bool:
    named = {p.hashtag for p in event.presentations} | {r.hashtag for r in event.rooms}
    return bool(tags & (named - {None}))


def _by_time_alone(event: Event, t: datetime, tags: set[str]) -> Presentation | None:
    if _names_a_talk_or_room(event, tags):
        return None
    running = [p for p in event.presentations if _running(p, t)]
    if len(running) == 1:
        return running[0]
    grace = [p for p in event.presentations if _in_grace(event, p, t)]
    if not running and len(grace) == 1:
        return grace[0]
    return None


def _by_break(event: Event, t: datetime) -> Break | None:
    return next((b for b in event.breaks if b.start <= t < b.end), None)
