"""sitegen.assign against an independent reference (tests/sitegen/conftest.py: brute force over
local wall times from the raw schedule YAML), at every minute of both days and many tag sets."""

from datetime import UTC, datetime, timedelta

import pytest

from core.events import Break, Presentation, load_events
from sitegen.assign import assign, assign_all


@pytest.fixture(scope="module")
def event(sg):
    return next(e for e in load_events(sg.SAMPLE.parent) if e.slug == sg.EVENT)


def where(place):
    return place.slug if isinstance(place, Presentation | Break) else None


def test_every_minute_and_tag_set_matches_the_reference(event, reference, sg):
    checked, placed = 0, set()
    mismatches = []
    for n, at in enumerate(sg.sample_times()):
        for tags in sg.TAG_SETS:
            item = sg.make_item(n, at, [t.lower() for t in tags])
            got, want = where(assign(event, item)), reference.place(at, tags)
            if got != want:
                mismatches.append(f"{at:%Y-%m-%dT%H:%M:%SZ} {tags}: got {got}, want {want}")
            checked += 1
            placed.add(want)
    assert mismatches[:20] == []
    assert checked > 20_000
    # the sample exercises every talk and every break
    assert {p.slug for p in event.presentations} | {b.slug for b in event.breaks} <= placed


def utc(day, hh, mm, ss=0):
    return datetime(2026, 10, day, hh, mm, ss, tzinfo=UTC)


@pytest.mark.parametrize(
    "at,tags,expected",
    [
        # Day 1 is CEST (UTC+2): the keynote 09:00-10:00 local is 07:00-08:00 UTC.
        (utc(24, 7, 0), (), "opening-keynote"),
        (utc(24, 8, 5), (), "opening-keynote"),  # grace, during coffee
        (utc(24, 8, 10), (), "d1-coffee-morning"),  # grace over
        # 10:30 local: two talks in parallel; no tag → cannot tell → no break either
        (utc(24, 8, 40), (), None),
        (utc(24, 8, 40), ("nwgarden",), "accessible-by-default"),
        (utc(24, 8, 40), ("nwmain",), "sqlite-at-the-edge"),
        (utc(24, 8, 40), ("nwsqlite", "nwgarden"), "sqlite-at-the-edge"),  # talk tag wins
        (utc(24, 9, 20), ("nwsqlite",), "sqlite-at-the-edge"),  # 11:20, in grace
        (utc(24, 9, 20), ("nwgarden",), "accessible-by-default"),  # room tag, in grace
        (utc(24, 9, 20), (), None),  # two in grace, none running: not in a break either
        (utc(24, 9, 40), ("nwsqlite",), None),  # named talk is over: not given to another
        # Day 2 is CET (UTC+1) after the DST change: keynote 09:30 local is 08:30 UTC.
        (utc(25, 7, 45), (), None),  # 08:45 local, before the day starts
        (utc(25, 8, 30), (), "second-day-keynote"),
        (utc(25, 9, 35), (), "second-day-keynote"),  # 10:35 local, in grace
        (utc(25, 9, 45), (), "d2-coffee-morning"),
        (utc(25, 10, 50), ("nwmain",), "realtime-for-everyone"),  # 11:50: running beats grace
        (utc(25, 10, 50), ("nwstatic",), "static-sites-at-scale"),  # talk tag in its grace
        (utc(25, 15, 10), ("nwclosing",), "closing-keynote"),  # 16:10 local
        (utc(25, 16, 9, 59), (), "closing-keynote"),  # last second of the grace
        (utc(25, 16, 10), (), None),
    ],
)
def test_known_cases(event, sg, at, tags, expected):
    assert where(assign(event, sg.make_item(1, at, tags))) == expected


def test_a_wrong_offset_would_be_caught(event, sg):
    """Day 2 at 08:30 UTC is the keynote; read with day 1's offset it would be 10:30, a break."""
    at = utc(25, 8, 30)
    assert where(assign(event, sg.make_item(1, at))) == "second-day-keynote"
    assert where(assign(event, sg.make_item(1, at + timedelta(hours=1)))) == "second-day-keynote"
    assert where(assign(event, sg.make_item(1, at - timedelta(minutes=1)))) is None


def test_assign_all_places_each_item_once(event, sg):
    items = [sg.make_item(n, t) for n, t in enumerate(sg.sample_times(step_minutes=7))]
    result = assign_all(event, items)
    placed = [i.uri for group in (*result.talks.values(), *result.breaks.values()) for i in group]
    assert len(placed) == len(set(placed))
    assert len(placed) + len(result.unplaced) == len(items)
    assert set(result.talks) == {p.slug for p in event.presentations}
