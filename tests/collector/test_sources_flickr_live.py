"""collector/sources/flickr/live.py against the Flickr fake: paging, overlap, budget, errors."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from contextlib import closing

from collector.sources.flickr.fetch import Budget
from core.archive import open_archive, visible_items
from tests.collector.live_helpers import count, held_for, run_until, sample_event, state_shows
from tests.fakes.flickr import DEFAULT_KEY, FlickrFake

KEY = "flickr:northwind26"


def flickr_source(fake: FlickrFake, **extra) -> dict:
    return {"type": "flickr", "tags": ["northwind26"], "key_env": "TEST_FLICKR_KEY",
            "base_url": fake.url + "/services/rest/", "interval": 0.1, "since": 0, **extra}  # fmt: skip


def photo(k: int, tags: str = "northwind26 amsterdam") -> dict:
    return {"id": str(53000000000 + k), "owner": "12345678@N00", "secret": f"abc{k:04d}",
            "server": "65535", "farm": 66, "title": f"Photo {k}", "ispublic": 1, "isfriend": 0,
            "isfamily": 0, "description": {"_content": f"Talk <b>{k}</b>"}, "license": "4",
            "ownername": "Kim", "tags": tags, "url_l": f"https://live.staticflickr.com/65535/{k}_l.jpg",
            "height_l": 768, "width_l": 1024}  # fmt: skip


ENV = {"TEST_FLICKR_KEY": DEFAULT_KEY}


def archived(settings):
    path = settings.archive_path
    return lambda: count(path, "SELECT count(*) FROM items") if path.exists() else 0


def test_polls_pages_and_archives_each_photo_once(make_settings, redis_url):
    settings = make_settings(redis_url=redis_url)
    with FlickrFake() as fake:
        base = time.time() - 3600
        for k in range(23):
            fake.publish(photo(k), uploaded=base + k)
        fake.publish(photo(99, tags="other"), uploaded=base)  # not the event's tag
        event = sample_event(flickr_source(fake, per_page=10))
        n = archived(settings)
        states, _ = asyncio.run(
            run_until(settings, [event], lambda: len(fake.requests) >= 6, environ=ENV)
        )
        first = fake.requests[0]
        assert first.param("sort") == "date-posted-asc"
        assert first.param("nojsoncallback") == "1"
        assert set(first.param("extras").split(",")) >= {"description", "date_upload",
                                                          "owner_name", "tags", "url_l", "license"}  # fmt: skip
        assert [r.param("page") for r in fake.requests[:3]] == ["1", "2", "3"]
        # later polls start from the newest upload seen, less the overlap
        assert int(fake.requests[3].param("min_upload_date")) == int(base) + 22 - 900
    assert n() == 23
    assert count(settings.archive_path, "SELECT count(*) FROM changes") == 23
    assert states[KEY].received == 23  # photos seen again in the overlap are not resent
    db = open_archive(settings.archive_path)
    item = visible_items(db, event.slug)[0]
    db.close()
    assert item.uri == "https://www.flickr.com/photos/12345678@N00/53000000000"
    assert item.author.name == "Kim" and item.extra["license"] == "4"


def test_invalid_key_is_a_configuration_error(make_settings, redis_url, redis_client):
    settings = make_settings(redis_url=redis_url)
    with FlickrFake() as fake:
        event = sample_event(flickr_source(fake))
        failing = held_for(state_shows(redis_client, event.slug, KEY, "failing"), 0.5)
        states, _ = asyncio.run(run_until(
            settings, [event], failing, timeout=60,
            environ={"TEST_FLICKR_KEY": "ffffffffffffffffffffffffffffffff"}))  # fmt: skip
        assert len(fake.requests) == 1  # not retried
    assert states[KEY].state == "failing"
    assert states[KEY].last_error == (
        f"{KEY}: Flickr error 100: Invalid API Key (Key not found): '{fake.url}/services/rest/'"
    )


def test_missing_key_is_a_configuration_error(make_settings, redis_url, redis_client):
    settings = make_settings(redis_url=redis_url)
    with FlickrFake() as fake:
        event = sample_event(flickr_source(fake))
        failing = state_shows(redis_client, event.slug, KEY, "failing")
        states, _ = asyncio.run(run_until(settings, [event], failing, timeout=60, environ={}))
    assert states[KEY].last_error == (
        f"{KEY}: no Flickr API key: set the environment variable: 'TEST_FLICKR_KEY'"
    )


def test_hourly_budget_is_never_exceeded(make_settings, redis_url):
    settings = make_settings(redis_url=redis_url)
    with FlickrFake() as fake:
        fake.publish(photo(1))
        event = sample_event(flickr_source(fake, budget_per_hour=3, interval=0))
        spent = held_for(lambda: len(fake.requests) >= 3, 1.0)
        states, _ = asyncio.run(run_until(settings, [event], spent, timeout=60, environ=ENV))
        assert len(fake.requests) == 3
    assert states[KEY].rate_limited_seconds > 0.3
    assert archived(settings)() == 1


def test_budget_window_slides():
    now = [0.0]
    budget = Budget(2, clock=lambda: now[0])
    budget.spend()
    now[0] = 10
    budget.spend()
    assert budget.wait_seconds() == 3590
    now[0] = 3600
    assert budget.wait_seconds() == 0


def test_faults_lose_nothing_and_duplicate_nothing(make_settings, redis_url):
    """5xx bursts, a 429, a cut and a truncated body while photos keep arriving."""
    settings = make_settings(redis_url=redis_url)
    with FlickrFake() as fake:
        base = time.time() - 600
        published = [fake.publish(photo(k), uploaded=base + k) for k in range(10)]
        bad = fake.publish(
            {"id": "53999999999", "owner": "", "tags": "northwind26"}, uploaded=base + 5
        )  # no owner: malformed, counted, kept raw
        event = sample_event(flickr_source(fake, per_page=4))
        faults = fake.faults

        def inject(step):
            return [lambda: faults.fail(502, 3), lambda: faults.rate_limit(1, 0.3),
                    lambda: faults.cut(1), lambda: faults.malformed(1)][step % 4]  # fmt: skip

        script = []
        for k in range(10, 30):
            script.append((0.1 * (k - 9), lambda k=k: published.append(
                fake.publish(photo(k), uploaded=time.time() - 5))))  # fmt: skip
            if k % 3 == 0:
                script.append((0.1 * (k - 9) + 0.05, inject(k)))
        fake.play(script)
        n = archived(settings)
        states, _ = asyncio.run(run_until(
            settings, [event], lambda: n() >= 30 and len(fake.requests) > 40, timeout=30,
            environ=ENV))  # fmt: skip
        faulted = [r.fault for r in fake.requests if r.fault]
    uris = {f"https://www.flickr.com/photos/{p['owner']}/{p['id']}" for p in published}
    db = open_archive(settings.archive_path)
    got = {i.uri for i in visible_items(db, event.slug)}
    malformed = db.execute("SELECT count(*) FROM malformed").fetchone()[0]
    db.close()
    lost, extra = (
        len(uris - got),
        count(settings.archive_path, "SELECT count(*) FROM changes") - len(got),
    )
    figures = (f"published {len(uris) + 1}, archived {len(got)}, lost {lost}, "
               f"duplicated {extra}, malformed {malformed}; faults {sorted(set(faulted))}")  # fmt: skip
    print(figures)  # noqa: T201 - the issue asks the test to print its figures
    assert (lost, extra, malformed) == (0, 0, 1)
    assert got == uris and bad["id"] not in {u.rsplit("/", 1)[1] for u in got}
    assert states[KEY].errors >= 4 and states[KEY].malformed == 1


def test_a_photo_the_search_stops_returning_is_asked_about_and_retracted_when_gone(
    make_settings, redis_url
):
    """Issue 9: Flickr never says a photo was deleted or made private; getInfo does (error 1)."""
    settings = make_settings(redis_url=redis_url)
    with FlickrFake() as fake:
        base = time.time() - 600
        for k in range(3):
            fake.publish(photo(k), uploaded=base + k)
        event = sample_event(flickr_source(fake))
        n, path = archived(settings), settings.archive_path
        ids = [str(53000000000 + k) for k in range(3)]

        mutated = []

        def gone_and_rechecked() -> bool:
            try:
                return _gone_and_rechecked()
            except sqlite3.OperationalError:  # the collector is still creating the archive
                return False

        def _gone_and_rechecked() -> bool:
            if not mutated:
                if n() == 3:  # archived: now one is deleted and another loses the event's tag
                    fake.delete(ids[0])
                    fake.publish(photo(1, tags="amsterdam"), uploaded=base + 1)
                    mutated.append(True)
                return False
            deleted = count(path, "SELECT count(*) FROM items WHERE status = 'deleted'")
            infos = [r for r in fake.requests if r.param("method") == "flickr.photos.getInfo"]
            return deleted == 1 and {r.param("photo_id") for r in infos} >= {ids[0], ids[1]}

        asyncio.run(run_until(settings, [event], gone_and_rechecked, environ=ENV))
    with closing(sqlite3.connect(path)) as db:
        statuses = dict(db.execute("SELECT local_id, status FROM items"))
    assert statuses == {ids[0]: "deleted", ids[1]: "visible", ids[2]: "visible"}
    assert count(path, "SELECT count(*) FROM changes WHERE kind = 'retract'") == 1
