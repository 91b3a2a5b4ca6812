import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.errors import ContentErrors
from core.events import load_events, load_site

CONTENT = Path(__file__).resolve().parents[2] / "content"


@pytest.fixture
def content(tmp_path, monkeypatch) -> Path:
    target = tmp_path / "content"
    shutil.copytree(CONTENT, target)
    monkeypatch.chdir(tmp_path)
    return target


def edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, count))


def errors_of(content: Path) -> list[str]:
    with pytest.raises(ContentErrors) as info:
        load_events(content)
    return [str(e) for e in info.value.errors]


def test_sample_event_loads():
    (event,) = load_events(CONTENT)
    assert event.slug == "northwind-2026"
    assert len(event.presentations) >= 12
    assert {r.slug for r in event.rooms} == {"main", "garden"}
    assert any(p.kind == "keynote" for p in event.presentations)
    assert event.breaks and event.description.strip()
    assert "northwind26" in event.hashtags
    assert load_site(CONTENT).title


def test_local_times_become_utc_across_the_dst_change():
    (event,) = load_events(CONTENT)
    talks = {p.slug: p for p in event.presentations}
    # Saturday is summer time (UTC+2), Sunday winter time (UTC+1).
    assert talks["opening-keynote"].start == datetime(2026, 10, 24, 7, 0, tzinfo=UTC)
    assert talks["second-day-keynote"].start == datetime(2026, 10, 25, 8, 30, tzinfo=UTC)


def test_parallel_track_exists():
    (event,) = load_events(CONTENT)
    starts = [(p.start, p.room) for p in event.presentations]
    assert any(s == t and r != q for s, r in starts for t, q in starts)


def test_every_mistake_is_listed_with_file_and_line(content):
    schedule = content / "northwind-2026" / "schedule.yaml"
    edit(
        schedule,
        'start: "10:30"\n            end: "11:15"\n            hashtag: nwsqlite',
        'start: "10:30"\n            end: "10:15"\n            hashtag: nwsqlite',
    )
    edit(
        schedule,
        'room: garden\n            start: "10:30"',
        'room: attic\n            start: "10:30"',
    )
    edit(
        schedule,
        'start: "11:30"\n            end: "12:15"',
        'start: "11:45"\n            end: "12:25"',
    )
    edit(
        schedule,
        'start: "13:15"\n            end: "14:00"',
        'start: "13:15"\n            end: "14:75"',
    )
    errors = errors_of(content)
    assert errors == [
        "content/northwind-2026/schedule.yaml:27: end 10:15 is not after start 10:30",
        "content/northwind-2026/schedule.yaml:32: unknown room 'attic' (rooms: garden, main)",
        "content/northwind-2026/schedule.yaml:39: presentation is outside its session's time",
        "content/northwind-2026/schedule.yaml:57: 'end' is not a time of day (HH:MM): '14:75'",
    ]


def test_overlapping_talks_in_one_room(content):
    schedule = content / "northwind-2026" / "schedule.yaml"
    edit(
        schedule,
        'start: "11:30"\n            end: "12:15"',
        'start: "11:00"\n            end: "12:15"',
    )
    assert errors_of(content) == [
        "content/northwind-2026/schedule.yaml:39: "
        "'streams-not-queues' overlaps 'sqlite-at-the-edge' in room 'main'"
    ]


def test_yaml_syntax_error(content):
    edit(
        content / "northwind-2026" / "event.yaml",
        "hashtags: [northwind26, nwconf]",
        "hashtags: [northwind26",
    )
    (error,) = errors_of(content)
    assert error.startswith("content/northwind-2026/event.yaml:")
    assert "YAML syntax" in error


def test_event_level_mistakes(content):
    event = content / "northwind-2026" / "event.yaml"
    edit(event, "timezone: Europe/Amsterdam", "timezone: Europe/Atlantis")
    edit(event, "end: 2026-10-25", "end: 2026-10-20")
    assert errors_of(content) == [
        "content/northwind-2026/event.yaml:5: end 2026-10-20 is before start 2026-10-24",
        "content/northwind-2026/event.yaml:6: unknown time zone 'Europe/Atlantis'",
    ]


def test_missing_field_and_day_outside_event(content):
    schedule = content / "northwind-2026" / "schedule.yaml"
    edit(schedule, "date: 2026-10-25", "date: 2026-10-27")
    edit(schedule, "            title: Streams, Not Queues\n", "")
    errors = errors_of(content)
    assert (
        "content/northwind-2026/schedule.yaml:97: day 2026-10-27 is outside the event (2026-10-24 to 2026-10-25)"
        in errors
    )
    assert any("a presentation is missing 'title'" in e for e in errors)
