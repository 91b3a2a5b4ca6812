"""The meet-ups board: who is going where after the talks.

Two kinds of meet-up:

- **Organizers'**, listed in `content/<event>/meetups.yaml` (read here with `path:line` errors,
  like every content file)::

      meetups:
        - title: Welcome drinks
          date: 2026-10-23          # a local date, the event's day before to its day after
          start: "19:00"            # local wall times; an end before the start is after midnight
          end: "22:00"
          place: Café de Sluyswacht, Jodenbreestraat 1
          link: https://example.org/drinks      # optional, http(s)
          description: Everyone welcome.        # optional, plain text

- **Attendees'**: any post carrying the event's `meetup_hashtag` (event.yaml) that is not itself
  a reply to a meet-up. Its time is the first time of day its text names ("19:30", "7.30pm",
  "8pm"; "tomorrow" moves it a day; a time more than an hour before the post is the next day's),
  or the post's own time when it names none; it lasts two hours. People who reply to it or boost
  it are going (each once, the proposer aside). Moderation applies as to any post: a hidden
  proposal is gone from the board, a hidden reply no longer counts.

A board day runs from 06:00 to 06:00 local time, so tonight's meet-ups stay on today's board.
The board shows organizers' meet-ups first, then attendees', each in time order. The live pages
keep it up to date in the browser with the same rules (sitegen/static/board.js).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from .errors import ContentError
from .items import Author, Item, item_from_dict
from .schedule import local_to_utc
from .yamlreader import YamlReader

if TYPE_CHECKING:  # core.events reads meetups.yaml, and the live sidecar never loads SQLite
    import sqlite_utils

CONTENT_FILE = "meetups.yaml"
KNOWN_KEYS = {"title", "date", "start", "end", "place", "link", "description"}
DAY_STARTS = timedelta(hours=6)  # a board day runs 06:00 to 06:00: tonight belongs to today
PROPOSAL_HOURS = 2
TIME_24 = re.compile(r"(?<![\d:.])([01]?\d|2[0-3])[:.h]([0-5]\d)(?![\d:])\s*(am|pm)?", re.I)
TIME_12 = re.compile(r"(?<![\d:.])(1[0-2]|0?[1-9])\s*(am|pm)\b", re.I)
TOMORROW = re.compile(r"\btomorrow\b", re.I)
TRAILING_TAGS = re.compile(r"(?:\s*#\w+)+\s*$")


@dataclass(frozen=True)
class Meetup:
    title: str
    start: datetime  # UTC
    end: datetime  # UTC
    place: str = ""
    link: str = ""
    description: str = ""
    by: str = "organizers"  # organizers or attendees
    post: Item | None = None  # an attendee's proposal
    going: tuple[Author, ...] = ()
    line: int | None = None  # where meetups.yaml defines it


# -- content/<event>/meetups.yaml ---------------------------------------------------------------


def read_meetups(
    path: Path, tz: ZoneInfo, first: date, last: date
) -> tuple[tuple[Meetup, ...], list[ContentError]]:
    """The organizers' meet-ups of one event (none when the file is absent) and every mistake."""
    if not path.exists():
        return (), []
    reader = YamlReader(path)
    data = reader.load()
    if data is None or not reader.mapping(data, data, None, CONTENT_FILE):
        return (), reader.errors
    for key in data:
        if key != "meetups":
            reader.error(data, key, f"unknown key {key!r} (known: meetups)")
    found = []
    entries = reader.optional(data, "meetups", list, []) or []
    for i, node in enumerate(entries):
        meetup = _meetup(reader, node, data["meetups"], i, tz, first, last)
        if meetup is not None:
            found.append(meetup)
    return tuple(sorted(found, key=lambda m: (m.start, m.title))), reader.errors


def _meetup(reader, node, parent, index, tz, first: date, last: date) -> Meetup | None:
    if not reader.mapping(node, parent, index, "a meet-up"):
        return None
    mistakes = len(reader.errors)
    for key in node:
        if key not in KNOWN_KEYS:
            reader.error(node, key, f"unknown key {key!r} (known: {', '.join(sorted(KNOWN_KEYS))})")
    title = reader.require(node, "title", str, "a meet-up")
    day = reader.day(node, "date", "a meet-up")
    start, end = reader.clock(node, "start", "a meet-up"), reader.clock(node, "end", "a meet-up")
    place = reader.require(node, "place", str, "a meet-up")
    link = reader.optional(node, "link", str, "") or ""
    description = reader.optional(node, "description", str, "") or ""
    if link and not re.match(r"^https?://[^\s/]+", link):
        reader.error(node, "link", f"'link' must be an http(s) URL, not {link!r}")
    if day is not None and not first - timedelta(days=1) <= day <= last + timedelta(days=1):
        reader.error(node, "date", f"meet-up on {day} is not within a day of the event "
                                   f"({first} to {last})")  # fmt: skip
    if start is not None and start == end:
        reader.error(node, "end", f"end {end:%H:%M} is the same as start {start:%H:%M}")
    if len(reader.errors) > mistakes:
        return None
    begins = local_to_utc(day, start, tz)
    ends = local_to_utc(day + timedelta(days=1) if end < start else day, end, tz)  # after midnight
    return Meetup(title.strip(), begins, ends, place.strip(), link, description.strip(),
                  line=node.lc.line + 1)  # fmt: skip


# -- attendees' proposals -------------------------------------------------------------------------


def proposal_time(text: str, posted: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """(start, end) in UTC of the meet-up a post proposes; see the module docstring."""
    local = posted.astimezone(tz)
    clock = _clock_in(text or "")
    if clock is None:
        return posted, posted + timedelta(hours=PROPOSAL_HOURS)
    day = local.date() + timedelta(days=1 if TOMORROW.search(text) else 0)
    start = datetime(day.year, day.month, day.day, *clock, tzinfo=tz)
    if not TOMORROW.search(text) and start < local - timedelta(hours=1):
        start += timedelta(days=1)  # "breakfast at 8" posted the night before
    start = start.astimezone(posted.tzinfo)
    return start, start + timedelta(hours=PROPOSAL_HOURS)


def _clock_in(text: str) -> tuple[int, int] | None:
    """(hour, minute) of the first time of day the text names."""
    found = [m for m in (TIME_24.search(text), TIME_12.search(text)) if m]
    if not found:
        return None
    match = min(found, key=lambda m: m.start())
    if match.re is TIME_24:
        hour, minute, half = int(match[1]), int(match[2]), (match[3] or "").lower()
    else:
        hour, minute, half = int(match[1]), 0, match[2].lower()
    if half == "pm" and hour < 12:
        hour += 12
    elif half == "am" and hour == 12:
        hour = 0
    return hour, minute


def board_day(value: datetime, tz: ZoneInfo) -> date:
    """The board day a moment belongs to (06:00 to 06:00 local)."""
    return (value.astimezone(tz) - DAY_STARTS).date()


def proposal_title(item: Item, tag: str) -> str:
    """The proposal's text for the board's title: without the meet-up hashtag, nor the hashtags
    that trail it."""
    text = re.sub(rf"(?<!\w)#{re.escape(tag)}\b", "", item.text or "", flags=re.I)
    text = TRAILING_TAGS.sub("", " ".join(text.split()))
    return text[:160] or "Meet-up"


# -- from the archive -------------------------------------------------------------------------------


def read_proposals(db: sqlite_utils.Database, event: str, tag: str, tz: ZoneInfo) -> list[Meetup]:
    """The attendees' meet-ups of an event: visible posts with the tag, each with who is going."""
    if not tag:
        return []
    needle = json.dumps(tag)  # a tag as items store it, in the JSON's "tags" list
    rows = db.execute(
        "SELECT data, seq FROM items WHERE event = ? AND status = 'visible' AND instr(data, ?) > 0 "
        "ORDER BY created_at, id",
        [event, needle],
    )
    posts = [p for p in map(_decode, rows) if tag in p.tags]
    uris = {p.uri for p in posts}
    posts = [p for p in posts if p.reply_to not in uris]  # a reply with the tag is going
    going = _going(db, event, {p.uri: p for p in posts})
    found = []
    for post in posts:
        start, end = proposal_time(post.text, post.created_at, tz)
        found.append(Meetup(proposal_title(post, tag), start, end, by="attendees", post=post,
                            going=tuple(going.get(post.uri, ()))))  # fmt: skip
    return found


def _going(db: sqlite_utils.Database, event: str, posts: dict[str, Item]) -> dict[str, list]:
    """uri → Authors who replied to or boosted it (once each, in the order they did, proposer
    aside). Replies are found by the reply_to the collector resolved (collector/reactions.py)."""
    if not posts:
        return {}
    wanted = json.dumps(sorted(posts))
    replies = db.execute(
        "SELECT json_extract(data, '$.reply_to'), json_extract(data, '$.author'), created_at "
        "FROM items WHERE event = ? AND status = 'visible' AND instr(data, '\"reply_to\":\"') > 0 "
        "AND json_extract(data, '$.reply_to') IN (SELECT value FROM json_each(?))",
        [event, wanted],
    ).fetchall()
    boosts = db.execute(
        "SELECT uri, author, at FROM boosts WHERE event = ? "
        "AND uri IN (SELECT value FROM json_each(?))",
        [event, wanted],
    ).fetchall()
    going: dict[str, dict[str, Author]] = {uri: {} for uri in posts}
    for uri, author, _when in sorted([*replies, *boosts], key=lambda r: r[2]):
        person = _author(json.loads(author))
        if person.id != posts[uri].author.id and not person.hidden:
            going[uri].setdefault(person.id, person)
    return {uri: list(people.values()) for uri, people in going.items()}


def _decode(row: tuple[str, int]) -> Item:
    item = item_from_dict(json.loads(row[0]))
    item.extra["seq"] = row[1]
    return item


def _author(data: dict[str, Any]) -> Author:
    fields = ("id", "handle", "name", "url", "avatar", "noindex", "hidden")
    return Author(**{k: data[k] for k in fields if k in data})


def board(meetups: list[Meetup]) -> list[Meetup]:
    """Organizers' meet-ups first, then attendees', each in time order."""
    return sorted(meetups, key=lambda m: (m.by != "organizers", m.start, m.title))
