"""The schedule: rooms, days → sessions → presentations, plus breaks, and the reader of
schedule.yaml, with every mistake located. Local wall times become UTC here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

from .errors import ContentError
from .yamlreader import YamlReader


@dataclass(frozen=True)
class Room:
    slug: str
    name: str
    hashtag: str | None = None


@dataclass(frozen=True)
class Presentation:
    slug: str
    title: str
    speakers: tuple[str, ...]
    room: str  # room slug
    start: datetime  # UTC
    end: datetime  # UTC
    day: date
    session: str  # session slug
    hashtag: str | None = None  # lowercase, without '#'
    kind: str = "talk"  # talk, keynote, lightning, panel
    abstract: str = ""


@dataclass(frozen=True)
class Break:
    slug: str
    title: str
    start: datetime
    end: datetime
    day: date


@dataclass(frozen=True)
class Session:
    slug: str
    title: str
    start: datetime
    end: datetime
    day: date
    presentations: tuple[Presentation, ...]


@dataclass(frozen=True)
class Day:
    date: date
    title: str
    sessions: tuple[Session, ...]
    breaks: tuple[Break, ...]


def normalise_tag(tag: str) -> str:
    return tag.strip().lstrip("#＃").casefold()


def local_to_utc(day: date, clock: time, tz: ZoneInfo) -> datetime:
    """A local wall time on a day in the event's zone, as UTC (fold=0 picks the first of a DST repeat)."""
    return datetime.combine(day, clock, tzinfo=tz).astimezone(UTC)


def read_schedule(
    path: Path, tz: ZoneInfo, start: date, end: date, rooms: tuple[Room, ...]
) -> tuple[tuple[Day, ...], list[ContentError]]:
    reader = YamlReader(path)
    if not path.exists():
        reader.error(None, None, "schedule.yaml not found")
        return (), reader.errors
    data = reader.load()
    if data is None or not reader.mapping(data, data, None, "schedule.yaml"):
        return (), reader.errors
    check = _Checker(reader, tz, start, end, {r.slug for r in rooms})
    days = tuple(
        filter(
            None, (check.day(n, data["days"], i) for i, n in enumerate(_list(reader, data, "days")))
        )
    )
    check.overlaps()
    return days, reader.errors


def _list(reader: YamlReader, node: dict, key: str) -> list:
    return reader.optional(node, key, list, []) or []


class _Checker:
    def __init__(self, reader: YamlReader, tz: ZoneInfo, start: date, end: date, rooms: set[str]):
        self.r = reader
        self.tz = tz
        self.start = start
        self.end = end
        self.rooms = rooms
        self.slugs: set[str] = set()
        self.placed: list[tuple[Presentation, dict]] = []

    def day(self, node, parent, index) -> Day | None:
        if not self.r.mapping(node, parent, index, "a day"):
            return None
        day = self.r.day(node, "date", "a day")
        if day and not self.start <= day <= self.end:
            self.r.error(
                node, "date", f"day {day} is outside the event ({self.start} to {self.end})"
            )
        if day is None:
            return None
        sessions = [
            self.session(n, day, node["sessions"], i)
            for i, n in enumerate(_list(self.r, node, "sessions"))
        ]
        breaks = [
            self.break_(n, day, node["breaks"], i)
            for i, n in enumerate(_list(self.r, node, "breaks"))
        ]
        title = self.r.optional(node, "title", str, day.strftime("%A %-d %B"))
        return Day(day, title, tuple(filter(None, sessions)), tuple(filter(None, breaks)))

    def span(self, node: dict, day: date, what: str) -> tuple[datetime, datetime] | None:
        start = self.r.clock(node, "start", what)
        end = self.r.clock(node, "end", what)
        if start is None or end is None:
            return None
        if end <= start:
            self.r.error(node, "end", f"end {end:%H:%M} is not after start {start:%H:%M}")
            return None
        return local_to_utc(day, start, self.tz), local_to_utc(day, end, self.tz)

    def unique(self, node: dict, what: str) -> str | None:
        slug = self.r.slug(node, "slug", what)
        if slug and slug in self.slugs:
            self.r.error(node, "slug", f"slug {slug!r} is used twice in this event")
            return None
        if slug:
            self.slugs.add(slug)
        return slug

    def session(self, node, day: date, parent, index) -> Session | None:
        if not self.r.mapping(node, parent, index, "a session"):
            return None
        slug = self.unique(node, "a session")
        title = self.r.require(node, "title", str, "a session")
        span = self.span(node, day, "a session")
        talks = [
            self.presentation(n, day, slug, span, node["presentations"], i)
            for i, n in enumerate(_list(self.r, node, "presentations"))
        ]
        if not (slug and title and span):
            return None
        return Session(slug, title, span[0], span[1], day, tuple(filter(None, talks)))

    def presentation(self, node, day, session, session_span, parent, index) -> Presentation | None:
        if not self.r.mapping(node, parent, index, "a presentation"):
            return None
        slug = self.unique(node, "a presentation")
        title = self.r.require(node, "title", str, "a presentation")
        speakers = self.r.optional(node, "speakers", list, [])
        room = self.r.require(node, "room", str, "a presentation")
        if room and room not in self.rooms:
            known = ", ".join(sorted(self.rooms))
            self.r.error(node, "room", f"unknown room {room!r} (rooms: {known})")
            room = None
        span = self.span(node, day, "a presentation")
        if (
            span
            and session_span
            and not (session_span[0] <= span[0] and span[1] <= session_span[1])
        ):
            self.r.error(node, "start", "presentation is outside its session's time")
        tag = self.r.optional(node, "hashtag", str, None)
        kind = self.r.optional(node, "kind", str, "talk")
        if not (slug and title and room and span and session):
            return None
        talk = Presentation(
            slug=slug,
            title=title,
            speakers=tuple(str(s) for s in speakers),
            room=room,
            start=span[0],
            end=span[1],
            day=day,
            session=session,
            hashtag=normalise_tag(tag) if tag else None,
            kind=kind,
            abstract=self.r.optional(node, "abstract", str, ""),
        )
        self.placed.append((talk, node))
        return talk

    def break_(self, node, day, parent, index) -> Break | None:
        if not self.r.mapping(node, parent, index, "a break"):
            return None
        slug = self.unique(node, "a break")
        title = self.r.require(node, "title", str, "a break")
        span = self.span(node, day, "a break")
        if not (slug and title and span):
            return None
        return Break(slug, title, span[0], span[1], day)

    def overlaps(self) -> None:
        by_room: dict[str, list[tuple[Presentation, dict]]] = {}
        for talk, node in self.placed:
            by_room.setdefault(talk.room, []).append((talk, node))
        for entries in by_room.values():
            entries.sort(key=lambda e: e[0].start)
            for (a, _), (b, node) in zip(entries, entries[1:], strict=False):
                if b.start < a.end:
                    self.r.error(
                        node, "start", f"{b.slug!r} overlaps {a.slug!r} in room {b.room!r}"
                    )
