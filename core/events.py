"""Events as organizers write them in content/, checked with file:line errors.

Content is YAML read by core.yamlreader, which locates every mistake. An event's schedule (rooms,
days, sessions, presentations, breaks) is read by core.schedule, where the event's local wall times
become UTC, so DST changes and time zones are handled once. The schedule's types are importable
from here too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import AfaError, ContentError, ContentErrors
from .meetups import Meetup, read_meetups
from .schedule import (
    Break,
    Day,
    Presentation,
    Room,
    Session,
    normalise_tag,
    read_schedule,
)
from .yamlreader import SLUG_RE, YamlReader, display_path

__all__ = [
    "Break",
    "Day",
    "Event",
    "Presentation",
    "Room",
    "Session",
    "Site",
    "find_event",
    "load_event",
    "load_events",
    "load_site",
    "normalise_tag",
]


@dataclass(frozen=True)
class Event:
    slug: str
    name: str
    start: date
    end: date
    timezone: str
    venue: str
    hashtags: tuple[str, ...]
    rooms: tuple[Room, ...]
    days: tuple[Day, ...]
    description: str = ""  # Markdown, rendered by sitegen
    grace_minutes: int = 10
    sources: tuple[dict[str, Any], ...] = ()
    path: Path = field(default=Path("."), compare=False)
    meetup_hashtag: str | None = None  # attendees propose meet-ups with it (core/meetups.py)
    meetups: tuple[Meetup, ...] = ()  # the organizers' meet-ups, from meetups.yaml

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def sessions(self) -> list[Session]:
        return [s for d in self.days for s in d.sessions]

    @property
    def presentations(self) -> list[Presentation]:
        return [p for s in self.sessions for p in s.presentations]

    @property
    def breaks(self) -> list[Break]:
        return [b for d in self.days for b in d.breaks]

    def room(self, slug: str) -> Room:
        return next(r for r in self.rooms if r.slug == slug)

    @property
    def grace(self) -> timedelta:
        return timedelta(minutes=self.grace_minutes)

    def local(self, value: datetime) -> datetime:
        return value.astimezone(self.tz)


@dataclass(frozen=True)
class Site:
    title: str = "A Feed Apart"
    description: str = ""
    base_url: str = ""


def load_site(content_dir: Path) -> Site:
    path = Path(content_dir) / "site.yaml"
    if not path.exists():
        return Site()
    reader = YamlReader(path)
    data = reader.load()
    if data is not None and reader.mapping(data, data, None, "site.yaml"):
        site = Site(
            title=reader.optional(data, "title", str, Site.title),
            description=reader.optional(data, "description", str, ""),
            base_url=reader.optional(data, "base_url", str, ""),
        )
    else:
        site = Site()
    if reader.errors:
        raise ContentErrors(reader.errors)
    return site


def load_events(content_dir: Path) -> list[Event]:
    """Every event under content_dir, or ContentErrors listing every mistake found in any file."""
    content_dir = Path(content_dir)
    errors: list[ContentError] = []
    events: list[Event] = []
    if not content_dir.is_dir():
        raise ContentErrors(
            [ContentError(display_path(content_dir), None, "content folder not found")]
        )
    for folder in sorted(p for p in content_dir.iterdir() if (p / "event.yaml").exists()):
        try:
            events.append(load_event(folder))
        except ContentErrors as exc:
            errors.extend(exc.errors)
    if errors:
        raise ContentErrors(errors)
    return events


def find_event(content_dir: Path, slug: str) -> Event:
    """The event `slug` under content_dir; AfaError names the events there when it is not one."""
    events = {e.slug: e for e in load_events(content_dir)}
    if slug not in events:
        known = ", ".join(sorted(events)) or "none"
        raise AfaError(f"no event {slug!r} in {content_dir}/ (known: {known})")
    return events[slug]


def load_event(folder: Path) -> Event:
    folder = Path(folder)
    reader = YamlReader(folder / "event.yaml")
    data = reader.load()
    if data is None or not reader.mapping(data, data, None, "event.yaml"):
        raise ContentErrors(reader.errors)
    slug = folder.name
    if not SLUG_RE.match(slug):
        reader.error(
            data, None, f"event folder name {slug!r} must be lowercase letters, digits, '-'"
        )
    name = reader.require(data, "name", str, "the event")
    start = reader.day(data, "start", "the event")
    end = reader.day(data, "end", "the event")
    if start and end and end < start:
        reader.error(data, "end", f"end {end} is before start {start}")
    tzname = reader.require(data, "timezone", str, "the event")
    tz = None
    if tzname:
        try:
            tz = ZoneInfo(tzname)
        except (ZoneInfoNotFoundError, ValueError):
            reader.error(data, "timezone", f"unknown time zone {tzname!r}")
    hashtags = _tags(reader, data, "hashtags")
    rooms = _rooms(reader, data)
    grace = reader.optional(data, "grace_minutes", int, 10)
    sources = reader.optional(data, "sources", list, [])
    description_path = folder / "description.md"
    description = description_path.read_text(encoding="utf-8") if description_path.exists() else ""
    meetup_tag = reader.optional(data, "meetup_hashtag", str, None)
    days: tuple[Day, ...] = ()
    meetups: tuple[Meetup, ...] = ()
    if tz and start and end:
        days, schedule_errors = read_schedule(folder / "schedule.yaml", tz, start, end, rooms)
        reader.errors.extend(schedule_errors)
        meetups, meetup_errors = read_meetups(folder / "meetups.yaml", tz, start, end)
        reader.errors.extend(meetup_errors)
    if reader.errors:
        raise ContentErrors(reader.errors)
    return Event(
        slug=slug,
        name=name,
        start=start,
        end=end,
        timezone=tzname,
        venue=reader.optional(data, "venue", str, ""),
        hashtags=hashtags,
        rooms=rooms,
        days=days,
        description=description,
        grace_minutes=grace if grace is not None else 10,
        sources=tuple(_plain(s) for s in sources or ()),
        path=folder,
        meetup_hashtag=normalise_tag(meetup_tag) if meetup_tag else None,
        meetups=meetups,
    )


def _tags(reader: YamlReader, data: dict, key: str) -> tuple[str, ...]:
    value = reader.optional(data, key, list, [])
    tags = []
    for i, tag in enumerate(value or []):
        if not isinstance(tag, str) or not normalise_tag(tag):
            reader.error(value, i, f"hashtag must be text, not {tag!r}")
        else:
            tags.append(normalise_tag(tag))
    return tuple(tags)


def _rooms(reader: YamlReader, data: dict) -> tuple[Room, ...]:
    value = reader.require(data, "rooms", list, "the event")
    rooms: list[Room] = []
    for i, node in enumerate(value or []):
        if not reader.mapping(node, value, i, "a room"):
            continue
        slug = reader.slug(node, "slug", "a room")
        name = reader.require(node, "name", str, "a room")
        tag = reader.optional(node, "hashtag", str, None)
        if slug and any(r.slug == slug for r in rooms):
            reader.error(node, "slug", f"room {slug!r} is defined twice")
        elif slug and name:
            rooms.append(Room(slug, name, normalise_tag(tag) if tag else None))
    return tuple(rooms)


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node
