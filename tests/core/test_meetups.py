"""The meet-ups board (core/meetups.py): meetups.yaml with path:line errors, when a proposal
says it meets, and the board read from a real archive filled the collector's way (replies
resolved by Mastodon's local ids, boosts, moderation)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from collector.store import save_batch
from core.errors import ContentErrors
from core.events import load_event, load_events
from core.items import Author, Item
from core.meetups import board, proposal_time, read_proposals
from core.moderation.decisions import Moderator

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "content" / "northwind-2026"
AMS = ZoneInfo("Europe/Amsterdam")
EVENT = "northwind-2026"


@pytest.fixture
def content(tmp_path, monkeypatch) -> Path:
    """A copy of the sample content, the working directory (errors name paths from there)."""
    shutil.copytree(SAMPLE, tmp_path / "content" / EVENT)
    monkeypatch.chdir(tmp_path)
    return tmp_path / "content"


def test_the_sample_meetups_are_read_in_time_order():
    event = load_event(SAMPLE)
    assert event.meetup_hashtag == "nwmeetup"
    assert [m.title for m in event.meetups] == [
        "Welcome drinks", "Newcomers' breakfast", "Conference dinner", "Karaoke for the brave",
        "Speakers' and volunteers' farewell",
    ]  # fmt: skip
    karaoke = event.meetups[3]  # 22:30 to 01:00: the end is after midnight
    assert (karaoke.start, karaoke.end) == (
        datetime(2026, 10, 24, 20, 30, tzinfo=UTC), datetime(2026, 10, 24, 23, 0, tzinfo=UTC)
    )  # fmt: skip
    assert {m.by for m in event.meetups} == {"organizers"} and event.meetups[2].line == 16


def test_meetups_yaml_mistakes_are_listed_with_path_and_line(content):
    (content / EVENT / "meetups.yaml").write_text(
        "meetups:\n"
        "  - title: Drinks\n    date: 2026-10-24\n    start: \"19:00\"\n    end: \"19:00\"\n"
        "    place: Bar\n"
        "  - title: Lunch\n    date: 2026-11-30\n    start: \"12:00\"\n    end: \"13:00\"\n"
        "    place: Canteen\n"
        "  - date: 2026-10-24\n    start: \"25:00\"\n    end: \"13:00\"\n    place: X\n"
        "    link: javascript:alert(1)\n    colour: red\n"
        "  - just a string\n",
        encoding="utf-8",
    )  # fmt: skip
    with pytest.raises(ContentErrors) as caught:
        load_events(Path("content"))
    path = f"content/{EVENT}/meetups.yaml"
    assert str(caught.value).splitlines() == [
        f"{path}:5: end 19:00 is the same as start 19:00",
        f"{path}:8: meet-up on 2026-11-30 is not within a day of the event (2026-10-24 to 2026-10-25)",
        f"{path}:17: unknown key 'colour' (known: date, description, end, link, place, start, title)",
        f"{path}:12: a meet-up is missing 'title'",
        f"{path}:13: 'start' is not a time of day (HH:MM): '25:00'",
        f"{path}:16: 'link' must be an http(s) URL, not 'javascript:alert(1)'",
        f"{path}:18: a meet-up must be a mapping of keys to values",
    ]  # fmt: skip


def test_a_broken_meetups_yaml_and_a_bad_hashtag_are_content_errors(content):
    (content / EVENT / "meetups.yaml").write_text("meetups:\n  - title: [unclosed\n")
    event_yaml = content / EVENT / "event.yaml"
    event_yaml.write_text(
        event_yaml.read_text().replace("meetup_hashtag: nwmeetup", "meetup_hashtag: [x]")
    )
    with pytest.raises(ContentErrors) as caught:
        load_events(Path("content"))
    lines = str(caught.value).splitlines()
    assert (
        lines[0].startswith(f"content/{EVENT}/event.yaml:")
        and "'meetup_hashtag' must be text" in lines[0]
    )
    assert lines[1].startswith(f"content/{EVENT}/meetups.yaml:3: YAML syntax: ")


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 10, day, hour, minute, tzinfo=AMS)


PROPOSALS = [  # text, posted (local), meets (local)
    ("Dinner at 19:00 at Sampurna", local(24, 12, 20), local(24, 19)),
    ("8pm drinks by the canal", local(24, 12), local(24, 20)),
    ("Coffee walk at 8.45am, main entrance", local(25, 8, 10), local(25, 8, 45)),
    ("Breakfast 8:00 anyone?", local(24, 23, 30), local(25, 8)),
    ("Tomorrow at 10h30 a run in the park", local(24, 9), local(25, 10, 30)),
    ("Room 101 at 12.30 for the SQLite demo", local(24, 11), local(24, 12, 30)),
    ("Drinks now, in the foyer! 2026 was great", local(24, 17, 3), local(24, 17, 3)),
    ("Karaoke 11pm, then 01:00 kebab", local(24, 21), local(24, 23)),
]


@pytest.mark.parametrize("text,posted,meets", PROPOSALS)
def test_a_proposal_meets_at_the_first_time_its_text_names(text, posted, meets):
    start, end = proposal_time(text, posted.astimezone(UTC), AMS)
    assert (start, end - start) == (meets.astimezone(UTC), timedelta(hours=2))


def status(n: int, at: datetime, author: Author, text: str, tags=(), **fields) -> Item:
    return Item(
        uri=f"https://social.example/users/{author.handle[1:3]}/statuses/{n}", source="mastodon",
        origin="social.example", local_id=str(n), url=f"https://social.example/@x/{n}",
        created_at=at.astimezone(UTC), author=author, html=f"<p>{text}</p>", text=text,
        tags=tuple(tags), **fields,
    )  # fmt: skip


def person(name: str) -> Author:
    return Author(id=f"https://social.example/users/{name}", handle=f"@{name}@social.example",
                  name=name.title())  # fmt: skip


def test_the_board_from_the_archive_counts_replies_and_boosts_and_obeys_moderation(archive):
    pia, bo, cy, di, ed = map(person, ("pia", "bo", "cy", "di", "ed"))
    dinner = status(1, local(24, 12), pia, "Dinner at 19:00 #nwmeetup", ["nwmeetup"])
    games = status(2, local(24, 14), bo, "Board games 17:40 #nwmeetup", ["nwmeetup"])
    spam = status(3, local(24, 14), ed, "Free crypto 18:00 #nwmeetup", ["nwmeetup"])
    by_local_id = {"in_reply_to_id": "1"}  # Mastodon names the parent by its local id only
    replies = [
        status(10, local(24, 12, 5), cy, "count me in", extra=by_local_id),
        status(11, local(24, 12, 6), pia, "booked for 6", extra=by_local_id),  # the proposer
        status(12, local(24, 12, 7), di, "me too #nwmeetup", ["nwmeetup"], extra=by_local_id),
        status(13, local(24, 12, 8), ed, "me!", reply_to=dinner.uri),  # hidden below
        status(14, local(24, 14, 1), cy, "yes", reply_to=games.uri),
    ]
    boost = status(2, local(24, 14), bo, "Board games 17:40 #nwmeetup", ["nwmeetup"],
                   extra={"boosted_by": {"id": di.id, "handle": di.handle, "name": "Di",
                                         "url": "", "avatar": ""}})  # fmt: skip
    save_batch(archive, EVENT, [dinner, games, spam], "test", None)
    save_batch(archive, EVENT, [*replies, boost, boost], "test", None)  # the same boost twice
    moderator = Moderator(archive)
    moderator.hide(EVENT, spam.uri, who="ana", why="spam")
    moderator.hide(EVENT, replies[3].uri, who="ana", why="test")

    found = read_proposals(archive, EVENT, "nwmeetup", AMS)
    assert [(m.title, m.by) for m in found] == [
        ("Dinner at 19:00", "attendees"), ("Board games 17:40", "attendees")
    ]  # fmt: skip
    assert [[a.name for a in m.going] for m in found] == [["Cy", "Di"], ["Di", "Cy"]]
    ordered = board([*load_event(SAMPLE).meetups, *found])
    day_one = [m.title for m in ordered if m.start.astimezone(AMS).date().day == 24]
    assert day_one == ["Newcomers' breakfast", "Conference dinner", "Karaoke for the brave",
                       "Board games 17:40", "Dinner at 19:00"]  # fmt: skip
    assert archive.execute("SELECT count(*) FROM boosts").fetchone()[0] == 1
    kinds = [r[0] for r in archive.execute("SELECT kind FROM changes ORDER BY seq")]
    assert kinds.count("boost") == 1
