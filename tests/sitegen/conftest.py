"""Sitegen test helpers: items written straight into a real archive, and an independent reference
for where each post belongs, computed from the raw schedule YAML over local wall times."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from ruamel.yaml import YAML

from core.items import Author, Item, Media, format_time, item_to_dict

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "content" / "northwind-2026"
EVENT = "northwind-2026"


def make_item(n: int, at: datetime, tags=(), **fields) -> Item:
    author = fields.pop("author", None) or Author(
        id=f"https://social.example/users/u{n % 7}",
        handle=f"@u{n % 7}@social.example",
        name=f"Person {n % 7}",
        url=f"https://social.example/@u{n % 7}",
    )
    values = dict(
        uri=f"https://social.example/users/u{n % 7}/statuses/{n}",
        source="mastodon",
        origin="social.example",
        local_id=str(n),
        url=f"https://social.example/@u{n % 7}/{n}",
        created_at=at,
        author=author,
        html=f"<p>post {n}</p>",
        text=f"post {n}",
        tags=tuple(tags),
    )
    values.update(fields)
    return Item(**values)


def save_items(db, items: list[Item], event: str = EVENT, status: str = "visible") -> None:
    """Rows as the collector writes them: items, one change each, and the event's sequence."""
    seq = db.execute(
        "SELECT coalesce(max(last_seq), 0) FROM sequences WHERE event = ?", [event]
    ).fetchone()[0]
    for item in items:
        seq += 1
        data = item_to_dict(item)
        db["items"].insert(
            {
                "event": event,
                "uri": item.uri,
                "source": item.source,
                "origin": item.origin,
                "local_id": item.local_id,
                "created_at": format_time(item.created_at),
                "author_id": item.author.id,
                "data": json.dumps(data),
                "first_seen": format_time(item.created_at),
                "seq": seq,
                "version": 1,
                "status": status,
            }
        )
        db["changes"].insert(
            {
                "event": event,
                "seq": seq,
                "kind": "post",
                "uri": item.uri,
                "at": format_time(item.created_at),
                "data": json.dumps({"seq": seq}),
            }
        )
    db["sequences"].upsert({"event": event, "last_seq": seq}, pk="event")


# ---- the reference: brute force over local wall times from the raw YAML -------------------


@dataclass(frozen=True)
class Span:
    slug: str
    start: datetime  # naive local wall time
    end: datetime
    room: str = ""
    tag: str | None = None


@dataclass
class Reference:
    tz: ZoneInfo
    grace: timedelta
    talks: list[Span]
    breaks: list[Span]
    room_tags: list[tuple[str, str]]  # (room slug, tag) in event order

    def place(self, at: datetime, tags) -> str | None:
        wall = at.astimezone(self.tz).replace(tzinfo=None)
        tags = {t.lower() for t in tags}
        by_tag = [
            s
            for s in self.talks
            if s.tag and s.tag in tags and s.start <= wall < s.end + self.grace
        ]
        if by_tag:
            return sorted(by_tag, key=lambda s: s.start)[0].slug
        for room, tag in self.room_tags:
            if tag in tags:
                for s in self.talks:
                    if s.room == room and s.start <= wall < s.end:
                        return s.slug
                ended = [
                    s for s in self.talks if s.room == room and s.end <= wall < s.end + self.grace
                ]
                if ended:
                    return sorted(ended, key=lambda s: s.end)[-1].slug
        named = {s.tag for s in self.talks if s.tag} | {t for _, t in self.room_tags}
        if not tags & named:
            running = [s for s in self.talks if s.start <= wall < s.end]
            ending = [s for s in self.talks if s.end <= wall < s.end + self.grace]
            if len(running) == 1:
                return running[0].slug
            if not running and len(ending) == 1:
                return ending[0].slug
        for s in self.breaks:
            if s.start <= wall < s.end:
                return s.slug
        return None


def read_reference(folder: Path = SAMPLE) -> Reference:
    yaml = YAML(typ="safe")
    event = yaml.load((folder / "event.yaml").read_text())
    schedule = yaml.load((folder / "schedule.yaml").read_text())

    def wall(day, hhmm: str) -> datetime:
        h, m = hhmm.split(":")
        return datetime.combine(date.fromisoformat(str(day)), datetime.min.time()).replace(
            hour=int(h), minute=int(m)
        )

    talks, breaks = [], []
    for day in schedule["days"]:
        for session in day["sessions"]:
            for p in session["presentations"]:
                tag = p.get("hashtag")
                talks.append(
                    Span(
                        p["slug"],
                        wall(day["date"], p["start"]),
                        wall(day["date"], p["end"]),
                        p["room"],
                        tag.lower() if tag else None,
                    )
                )
        for b in day.get("breaks", []):
            breaks.append(
                Span(b["slug"], wall(day["date"], b["start"]), wall(day["date"], b["end"]))
            )
    rooms = [(r["slug"], r["hashtag"].lower()) for r in event["rooms"] if r.get("hashtag")]
    return Reference(
        ZoneInfo(event["timezone"]),
        timedelta(minutes=event.get("grace_minutes", 10)),
        talks,
        breaks,
        rooms,
    )


TAG_SETS = [
    (),
    ("northwind26",),
    ("nwmain",),
    ("nwgarden",),
    ("nwgarden", "nwmain"),
    ("nwsqlite",),
    ("nwsqlite", "nwgarden"),
    ("NWMod",),
    ("nwstatic", "northwind26"),
    ("nwkeynote3",),
    ("nwclosing",),
    ("nwlightning", "nwmain"),
]


def sample_times(step_minutes: int = 1) -> list[datetime]:
    """UTC instants over both days, 07:30 to 18:30 local, plus the second before each."""
    tz = ZoneInfo("Europe/Amsterdam")
    out = []
    for day in (date(2026, 10, 24), date(2026, 10, 25)):
        start = (
            datetime.combine(day, datetime.min.time())
            .replace(hour=7, minute=30, tzinfo=tz)
            .astimezone(UTC)
        )
        for minute in range(0, 11 * 60, step_minutes):
            t = start + timedelta(minutes=minute)
            out += [t, t - timedelta(seconds=1)]
    return out


@pytest.fixture(scope="session")
def reference() -> Reference:
    return read_reference()


@pytest.fixture(scope="session")
def sg() -> SimpleNamespace:
    """The helpers above, for test modules (importlib mode cannot import conftest by name)."""
    return SimpleNamespace(
        make_item=make_item,
        save_items=save_items,
        sample_times=sample_times,
        TAG_SETS=TAG_SETS,
        read_reference=read_reference,
        Author=Author,
        Media=Media,
        EVENT=EVENT,
        SAMPLE=SAMPLE,
    )
