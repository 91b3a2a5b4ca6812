"""Events as organizers write them in content/, checked with file:line errors.

Content is YAML (ruamel.yaml keeps the line of every key, so a semantic mistake such as an end
before its start is reported where it is written). Times in a schedule are the event's local wall
times; they are converted to UTC here, so DST changes and time zones are handled once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError

from .errors import ContentError, ContentErrors

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
TIME_RE = re.compile(r"^(\d{1,2}):(\d{2})$")


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
    meetups: tuple[Any, ...] = ()  # the organizers' meet-ups (core.meetups.Meetup), meetups.yaml

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


def normalise_tag(tag: str) -> str:
    return tag.strip().lstrip("#＃").casefold()


class _Reader:
    """Collects every error in one file instead of stopping at the first."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.errors: list[ContentError] = []

    def error(self, node: Any, key: Any, message: str) -> None:
        self.errors.append(ContentError(_display(self.path), _line(node, key), message))

    def load(self) -> Any:
        try:
            return YAML(typ="rt").load(self.path.read_text(encoding="utf-8"))
        except MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark else None
            problem = exc.problem or exc.context or "invalid YAML"
            self.errors.append(ContentError(_display(self.path), line, f"YAML syntax: {problem}"))
        except (OSError, UnicodeDecodeError) as exc:
            self.errors.append(ContentError(_display(self.path), None, f"cannot read: {exc}"))
        return None

    def mapping(self, node: Any, where: Any, key: Any, what: str) -> dict | None:
        if not isinstance(node, dict):
            self.error(where, key, f"{what} must be a mapping of keys to values")
            return None
        return node

    def require(self, node: dict, key: str, kind: type | tuple, what: str) -> Any:
        if key not in node or node[key] is None:
            self.error(node, None, f"{what} is missing '{key}'")
            return None
        value = node[key]
        if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
            self.error(node, key, f"'{key}' must be {_kind_name(kind)}, not {value!r}")
            return None
        return value

    def optional(self, node: dict, key: str, kind: type | tuple, default: Any) -> Any:
        if node.get(key) is None:
            return default
        return self.require(node, key, kind, "")

    def slug(self, node: dict, key: str, what: str) -> str | None:
        value = self.require(node, key, str, what)
        if value is not None and not SLUG_RE.match(value):
            self.error(node, key, f"'{key}' must be lowercase letters, digits and '-': {value!r}")
            return None
        return value

    def day(self, node: dict, key: str, what: str) -> date | None:
        value = self.require(node, key, (str, date), what)
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, str):
            try:
                return date.fromisoformat(value)
            except ValueError:
                self.error(node, key, f"'{key}' is not a date (YYYY-MM-DD): {value!r}")
                return None
        return value

    def clock(self, node: dict, key: str, what: str) -> time | None:
        value = self.require(node, key, (str, int), what)
        if value is None:
            return None
        match = TIME_RE.match(str(value))
        if not match or int(match[1]) > 23 or int(match[2]) > 59:
            self.error(node, key, f"'{key}' is not a time of day (HH:MM): {value!r}")
            return None
        return time(int(match[1]), int(match[2]))


def _kind_name(kind: type | tuple) -> str:
    names = {str: "text", int: "a whole number", list: "a list", dict: "a mapping", date: "a date"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _line(node: Any, key: Any) -> int | None:
    lc = getattr(node, "lc", None)
    if lc is None:
        return None
    try:
        if key is not None and isinstance(node, dict) and key in node:
            return lc.key(key)[0] + 1
        if key is not None and isinstance(node, list):
            return lc.item(key)[0] + 1
    except (KeyError, TypeError, IndexError):
        pass
    return lc.line + 1


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _at(day: date, clock: time, tz: ZoneInfo) -> datetime:
    """A local wall time on a day in the event's zone, as UTC (fold=0 picks the first of a DST repeat)."""
    return datetime.combine(day, clock, tzinfo=tz).astimezone(UTC)


def load_site(content_dir: Path) -> Site:
    path = Path(content_dir) / "site.yaml"
    if not path.exists():
        return Site()
    reader = _Reader(path)
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
        raise ContentErrors([ContentError(_display(content_dir), None, "content folder not found")])
    for folder in sorted(p for p in content_dir.iterdir() if (p / "event.yaml").exists()):
        try:
            events.append(load_event(folder))
        except ContentErrors as exc:
            errors.extend(exc.errors)
    if errors:
        raise ContentErrors(errors)
    return events


def load_event(folder: Path) -> Event:
    from .meetups import read_meetups
    from .schedule import read_schedule  # the schedule reader is long enough for its own module

    folder = Path(folder)
    reader = _Reader(folder / "event.yaml")
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
    meetups: tuple[Any, ...] = ()
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


def _tags(reader: _Reader, data: dict, key: str) -> tuple[str, ...]:
    value = reader.optional(data, key, list, [])
    tags = []
    for i, tag in enumerate(value or []):
        if not isinstance(tag, str) or not normalise_tag(tag):
            reader.error(value, i, f"hashtag must be text, not {tag!r}")
        else:
            tags.append(normalise_tag(tag))
    return tuple(tags)


def _rooms(reader: _Reader, data: dict) -> tuple[Room, ...]:
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
