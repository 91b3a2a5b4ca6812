"""collector/sources/bluesky/live.py against the fake Jetstream and the fake PDS, on free ports.

Each test builds a SourceContext by hand whose `save` commits into a real archive with
collector.store.save_batch, runs `bluesky_live.run(ctx)` on this thread's event loop, injects
faults into the fakes (which run in their own threads) and reads the archive afterwards.
"""

from __future__ import annotations

import asyncio
import copy
import json
import random
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from collector.sources.base import Backoff, SourceContext
from collector.sources.bluesky import POST
from collector.sources.bluesky import live as bluesky_live
from collector.store import save_batch
from core.archive import load_cursor
from core.events import Event
from core.items import format_time
from tests.fakes.base import FIXTURES
from tests.fakes.bluesky import BlueskyFake
from tests.fakes.jetstream import JetstreamFake, post_event

EVENT = Event(slug="northwind-2026", name="Northwind 2026", start=date(2026, 10, 24),
              end=date(2026, 10, 25), timezone="UTC", venue="", hashtags=("northwind26",),
              rooms=(), days=())  # fmt: skip
KEY = "bluesky:jetstream:northwind-2026"
CAPTURE = FIXTURES / "jetstream-v1-capture-2026-07-04.jsonl"
FAST = {"watchdog_seconds": 0.6, "batch_seconds": 0.05}


@pytest.fixture
def fakes():
    started = []

    def start(cls, **options):
        fake = cls(**options).start()
        started.append(fake)
        return fake

    yield start
    for fake in reversed(started):
        fake.stop()


class Harness:
    """A SourceContext whose save goes to the real archive, and the calls it received."""

    def __init__(self, archive, settings, config, cursor=None, secrets=None, hashtags=None):
        self.archive, self.calls, self.on_save = archive, [], None
        self.ctx = SourceContext(
            event=EVENT, key=KEY, config=config, settings=settings,
            hashtags=set(hashtags or {"northwind26"}), cursor=cursor, save=self.save,
            http=None, secrets=(secrets or {}).get, backoff=Backoff(0.05, 0.2),
        )  # fmt: skip
        self.errors: list[str] = []
        record_error = self.ctx.state.error

        def error(exc):
            self.errors.append(str(exc))
            record_error(exc)

        self.ctx.state.error = error

    async def save(self, changes, cursor, malformed=()):
        changes, malformed = list(changes), list(malformed)
        new = save_batch(self.archive, EVENT.slug, changes, KEY, cursor, malformed)
        self.ctx.state.count(changes, malformed)  # as collect.py's saver does
        self.calls.append((changes, cursor, malformed))
        if self.on_save:
            self.on_save(changes)
        return len(new)

    async def run_until(self, done, timeout=20.0, then=None):
        """Run the source until `done()` holds, then stop it and check it stops promptly."""
        async with httpx.AsyncClient() as http:
            self.ctx.http = http
            task = asyncio.create_task(bluesky_live.run(self.ctx))
            if then is not None:
                await then()
            deadline = time.monotonic() + timeout
            while not done():
                assert not task.done(), task.exception()
                assert time.monotonic() < deadline, f"timed out; state {self.ctx.state}"
                await asyncio.sleep(0.05)
            self.ctx.stopping.set()
            started = time.monotonic()
            await asyncio.wait_for(task, 3)
            assert time.monotonic() - started < 3
        assert self.ctx.state.state in ("stopped", "failing")

    def statuses(self) -> dict[str, str]:
        rows = self.archive.execute(
            "SELECT uri, status FROM items WHERE event = ?", [EVENT.slug]
        ).fetchall()
        return dict(rows)

    def posted(self) -> Counter:
        rows = self.archive.execute(
            "SELECT uri FROM changes WHERE event = ? AND kind = 'post'", [EVENT.slug]
        ).fetchall()
        return Counter(r[0] for r in rows)

    def malformed(self) -> list[tuple[str, str, str]]:
        return self.archive.execute("SELECT identity, reason, raw FROM malformed").fetchall()

    def cursor(self):
        return load_cursor(self.archive, EVENT.slug, KEY)


def record(k: int, text: str | None = None) -> dict:
    text = text or f"Notes from talk {k} #northwind26"
    start = len(text.encode()) - len(b"#northwind26")
    return {"$type": "app.bsky.feed.post", "text": text, "langs": ["en"],
            "createdAt": format_time(datetime.now(UTC)),
            "facets": [{"index": {"byteStart": start, "byteEnd": start + 12},
                        "features": [{"$type": "app.bsky.richtext.facet#tag",
                                      "tag": "NorthWind26"}]}]}  # fmt: skip


def did(k: int) -> str:
    return f"did:plc:author{k % 37:04d}aaaaaaaaaaaaaaaa"


def uri(k: int) -> str:
    return f"at://{did(k)}/app.bsky.feed.post/3nw{k:06d}aa"


def publish_post(js: JetstreamFake, k: int) -> dict:
    return js.publish(post_event(did(k), f"3nw{k:06d}aa", record(k), cid=f"bafyrei{k:08d}"))


def noise_lines() -> list[str]:
    return [line for line in CAPTURE.read_text().splitlines() if '"app.bsky.feed.like"' in line]


def wait_clients(js: JetstreamFake, count: int = 1):
    async def wait():
        deadline = time.monotonic() + 10
        while len(js.hub) < count:
            assert time.monotonic() < deadline, "the source never connected"
            await asyncio.sleep(0.01)

    return wait


# -- Jetstream ------------------------------------------------------------------------------


def test_capture_filtered_by_hashtag_gives_exactly_its_posts(fakes, archive, make_settings):
    """The 152 real frames, verbatim with their own time_us, replayed from a cursor before them."""
    js = fakes(JetstreamFake)
    events = js.load_capture()
    tags = {"indierebellion", "talesatwonderworld"}
    config = {"jetstream": js.ws_url + "/subscribe", "replay_window_hours": 24 * 3650, **FAST}
    first_us = events[0]["time_us"] - 1_000
    h = Harness(archive, make_settings(), config, {"time_us": first_us + 5_000_000}, hashtags=tags)
    wanted = (POST, "app.bsky.actor.profile")  # posts, and authors' profile records
    sent = [e for e in events if e["kind"] != "commit" or e["commit"]["collection"] in wanted]
    last_us = max(e["time_us"] for e in sent)  # what wantedCollections lets through, by time_us
    asyncio.run(h.run_until(lambda: (h.cursor() or {}).get("time_us") == last_us))

    assert h.statuses() == {
        "at://did:plc:tn3hni2jpphsgl6amfbb7ja6/app.bsky.feed.post/3mptbypfywk2v": "visible",
        "at://did:plc:ynfp6wddjqpl44gordpsqkuw/app.bsky.feed.post/3mptbyo7tas2u": "visible",
    }
    assert js.requests[0].param("cursor") == str(first_us)  # saved time_us - 5 s
    assert js.requests[0].params["wantedCollections"] == list(wanted)
    assert h.cursor() == {"time_us": last_us, "clock": format_time(
        datetime.fromtimestamp(last_us / 1e6, UTC))}  # fmt: skip
    assert h.ctx.state.malformed == 0
    state = h.ctx.state  # a quiet fake: the watchdog reconnects and the replay covers each drop
    assert state.gaps_detected == state.gaps_backfilled == len(js.requests_to("/subscribe"))


def test_delete_retracts_and_malformed_frame_is_kept_raw(fakes, archive, make_settings):
    js = fakes(JetstreamFake)
    h = Harness(archive, make_settings(), {"jetstream": js.ws_url + "/subscribe", **FAST})

    async def script():
        await wait_clients(js)()
        publish_post(js, 1)
        publish_post(js, 2)
        js.delete_post(did(1), "3nw000001aa")
        js.publish('{"did": "did:plc:x", "kind": "commit", "commit": {"collection": '
                   '"app.bsky.feed.post", "operation": "create"}}')  # fmt: skip
        while h.statuses().get(uri(1)) != "deleted":
            await asyncio.sleep(0.01)
        js.faults.malformed(1)
        publish_post(js, 3)  # sent cut in half: kept raw and counted
        publish_post(js, 4)

    def done():  # the quiet fake trips the watchdog; its replay brings post 3 whole
        return h.statuses().get(uri(3)) == "visible" and h.statuses().get(uri(4)) == "visible"

    asyncio.run(h.run_until(done, then=script))
    assert h.statuses() == {uri(1): "deleted", uri(2): "visible", uri(3): "visible",
                            uri(4): "visible"}  # fmt: skip
    kinds = [r[0] for r in archive.execute("SELECT kind FROM changes ORDER BY seq").fetchall()]
    assert kinds == ["post", "post", "retract", "post", "post"]
    bad = h.malformed()
    assert [b[0] for b in bad] == ["did:plc:x", "jetstream"]
    assert bad[0][1] == "commit has no rkey"
    assert bad[1][1].startswith("invalid JSON") and "3nw000003aa" in bad[1][2]
    assert h.ctx.state.malformed == 2
    assert any("silent" in e for e in h.errors)


def test_restart_resumes_from_the_saved_cursor_less_the_buffer(fakes, archive, make_settings):
    js = fakes(JetstreamFake)
    config = {"jetstream": js.ws_url + "/subscribe", **FAST}
    first = Harness(archive, make_settings(), config)

    async def three():
        await wait_clients(js)()
        for k in range(3):
            publish_post(js, k)

    asyncio.run(first.run_until(lambda: len(first.statuses()) == 3, then=three))
    saved = first.cursor()
    second = Harness(archive, make_settings(), config, cursor=saved)

    async def more():
        await wait_clients(js)()
        for k in range(3, 6):
            publish_post(js, k)

    asyncio.run(second.run_until(lambda: len(second.statuses()) == 6, then=more))
    assert js.requests[-1].param("cursor") == str(saved["time_us"] - 5_000_000)
    assert set(second.posted().values()) == {1} and len(second.posted()) == 6


def test_fault_matrix_no_loss_no_duplicate(fakes, archive, make_settings):
    """Posts among real noise, 10 cuts at random points, one stall, malformed frames, deletes."""
    js = fakes(JetstreamFake)
    h = Harness(archive, make_settings(), {"jetstream": js.ws_url + "/subscribe", **FAST})
    rng = random.Random(2026)
    n_posts = 300
    stall_at = n_posts // 2
    points = sorted(set(range(10, n_posts - 30)) - set(range(stall_at - 10, stall_at + 10)))
    cuts = set(rng.sample(points, 10))
    malformed_at = set(rng.sample(sorted(set(points) - cuts), 4))
    noise = noise_lines()
    published: dict[str, str] = {}  # uri -> the text of its frame
    deleted: set[str] = set()
    last = {}

    async def script():
        await wait_clients(js)()
        for k in range(n_posts):
            if k in cuts:
                js.faults.cut(1)
            if k in malformed_at:
                js.faults.malformed(1)
            if k == stall_at:  # once the source has caught up, so no replay is under way
                while h.statuses().get(uri(k - 1)) is None:
                    await asyncio.sleep(0.01)
                js.faults.stall(1.5)
            event = publish_post(js, k)
            published[uri(k)] = json.dumps(event)
            js.publish(noise[k % len(noise)])
            if k % 25 == 7:
                js.delete_post(did(k - 3), f"3nw{k - 3:06d}aa")
                deleted.add(uri(k - 3))
            await asyncio.sleep(0.004)
        last["event"] = publish_post(js, n_posts)
        published[uri(n_posts)] = json.dumps(last["event"])

    def done():
        if "event" not in last:
            return False
        statuses = h.statuses()
        return (h.cursor() or {}).get("time_us") == last["event"]["time_us"] and all(
            statuses.get(u) == ("deleted" if u in deleted else "visible")
            for u in published
            if u not in lost_to_malformed()
        )

    def lost_to_malformed() -> set[str]:
        """Posts whose only copy arrived cut in half (no later replay brought them again)."""
        statuses = h.statuses()
        halves = [raw for _, _, raw in h.malformed()]
        return {u for u in published if u not in statuses and any(
            u.rsplit("/", 1)[-1] in raw for raw in halves)}  # fmt: skip

    asyncio.run(h.run_until(done, timeout=40, then=script))
    statuses, posted, state = h.statuses(), h.posted(), h.ctx.state
    malformed = h.malformed()
    archived = len(statuses)
    lost = set(published) - set(statuses) - lost_to_malformed()
    duplicated = sum(n - 1 for n in posted.values())
    figures = (f"published {len(published)}, archived {archived}, lost {len(lost)}, "
               f"duplicated {duplicated}, malformed {len(malformed)}")  # fmt: skip
    print(figures)  # noqa: T201 - the figures the issue asks the fault test to show
    assert lost == set() and duplicated == 0
    assert archived + len(lost_to_malformed()) == len(published)
    assert {u for u, s in statuses.items() if s == "deleted"} == deleted & set(statuses)
    assert len(malformed) == state.malformed >= 1
    subscribes = js.requests_to("/subscribe")
    # the first connect, then one per cut and one for the stall (a cut may fall on the stalled
    # connection the source has already left)
    assert len(subscribes) >= 11
    assert all(r.param("cursor") for r in subscribes[1:])
    assert sum("silent" in e for e in h.errors) == 1, h.errors  # the stall: the watchdog
    assert len(h.errors) == len(subscribes) - 1
    # drops in a row before a frame arrives are one gap; each was covered by the replay
    assert 1 <= state.gaps_detected == state.gaps_backfilled <= len(subscribes) - 1
    assert state.disconnected_seconds > 0


# -- searchPosts backfill -------------------------------------------------------------------


def post_view(k: int, when: datetime, hidden: bool = False) -> dict:
    data = json.loads((FIXTURES / "bluesky-searchPosts.json").read_text())
    view = copy.deepcopy(data["posts"][1 if hidden else 0])  # posts[1]: "!no-unauthenticated"
    author = view["author"]["did"]
    view["uri"] = f"at://{author}/app.bsky.feed.post/3sb{k:06d}aa"
    view["record"] = {**record(k, f"Backfilled {k} #northwind26"), "createdAt": format_time(when)}
    view["indexedAt"] = format_time(when)
    view.pop("embed", None)
    return view


@pytest.mark.parametrize("trigger", ["cursor_older_than_window", "jetstream_clamped_the_cursor"])
def test_gap_beyond_replay_window_backfills_with_search(trigger, fakes, archive, make_settings):
    now = datetime.now(UTC)
    gap = timedelta(hours=30) if trigger == "cursor_older_than_window" else timedelta(hours=2)
    cursor_at = now - gap
    js = fakes(JetstreamFake, retention=60)
    bsky = fakes(BlueskyFake, accounts={"me.test": "app-pass"})
    expected = set()
    for k in range(230):  # three pages of 100, spread over the gap and the 300 s overlap
        view = bsky.publish(
            post_view(k, cursor_at - timedelta(seconds=250) + gap * k / 240), keep=True
        )
        expected.add(view["uri"])
    hidden = bsky.publish(post_view(999, cursor_at + gap / 2, hidden=True), keep=True)
    expected.add(hidden["uri"])
    for k in range(1000, 1005):  # before the gap: out of the window
        bsky.publish(post_view(k, cursor_at - timedelta(hours=1)), keep=True)
    if trigger == "jetstream_clamped_the_cursor":
        publish_post(js, 7)  # the oldest retained event, two hours after the cursor
        expected.add(uri(7))
    bsky.faults.rate_limit(1, reset_in=1.0, path="/xrpc/app.bsky.feed.searchPosts")
    reset_at = bsky.faults._http[-1]["reset_at"]
    config = {"jetstream": js.ws_url + "/subscribe", "pds": bsky.url, **FAST,
              "watchdog_seconds": 30, "identifier_env": "HANDLE", "password_env": "PASSWORD"}  # fmt: skip
    cursor_us = int(cursor_at.timestamp() * 1_000_000)
    h = Harness(archive, make_settings(), config, {"time_us": cursor_us, "clock": format_time(cursor_at)},
                secrets={"HANDLE": "me.test", "PASSWORD": "app-pass"})  # fmt: skip
    pages = []

    def expire_after_first_page(changes):
        if not any(getattr(c, "origin", "") == "appview" for c in changes):
            return
        pages.append(len(changes))
        if len(pages) == 1:
            bsky.expire_tokens()

    h.on_save = expire_after_first_page

    async def live_post():
        await wait_clients(js)()
        publish_post(js, 8)
        expected.add(uri(8))

    def done():
        return expected <= set(h.statuses()) and "backfill" not in (h.cursor() or {"backfill": 1})

    asyncio.run(h.run_until(done, then=live_post))
    statuses = h.statuses()
    assert set(statuses) == expected
    assert statuses[hidden["uri"]] == "hidden" and uri(8) in h.posted()
    assert hidden["uri"] not in h.posted()  # kept for the record, never published
    searches = bsky.requests_to("/xrpc/app.bsky.feed.searchPosts")
    assert [r.status for r in searches[:2]] == [429, 200]
    assert {r.param("q") for r in searches} == {"#northwind26"}
    assert {r.param("tag") for r in searches} == {"northwind26"}
    assert searches[1].param("since") == format_time(cursor_at - timedelta(seconds=300))
    assert any(r.status == 400 for r in searches)  # the expired token, then a refresh
    assert len(bsky.requests_to("/xrpc/com.atproto.server.refreshSession")) == 1
    assert len(bsky.requests_to("/xrpc/com.atproto.server.createSession")) == 1
    assert all(r.headers.get("authorization", "").startswith("Bearer ") for r in searches)
    state = h.ctx.state
    assert searches[1].at >= reset_at  # honoured; the wait counts from the 429 on
    assert state.rate_limited_seconds >= reset_at - searches[0].at - 0.05
    assert state.gaps_detected == state.gaps_backfilled == 1
    if trigger == "cursor_older_than_window":
        assert js.requests[0].param("cursor") is None  # the live tail; search covers the gap
    else:
        assert js.requests[0].param("cursor") == str(cursor_us - 5_000_000)


def test_backfill_without_credentials_fails_clearly_and_jetstream_goes_on(
    fakes, archive, make_settings
):
    js = fakes(JetstreamFake)
    bsky = fakes(BlueskyFake)
    old = datetime.now(UTC) - timedelta(hours=30)
    config = {
        "jetstream": js.ws_url + "/subscribe",
        "pds": bsky.url,
        **FAST,
        "watchdog_seconds": 30,
    }
    h = Harness(archive, make_settings(), config, {"time_us": int(old.timestamp() * 1e6)})

    async def live_post():
        await wait_clients(js)()
        publish_post(js, 1)

    asyncio.run(h.run_until(lambda: uri(1) in h.statuses(), then=live_post))
    state = h.ctx.state
    assert state.state == "failing"
    assert "searchPosts needs an app password: set AFA_BLUESKY_HANDLE and " \
           "AFA_BLUESKY_APP_PASSWORD" in state.last_error  # fmt: skip
    assert state.gaps_detected == 1 and state.gaps_backfilled == 0
    assert "backfill" in h.cursor()  # still owed: a restart with credentials walks it
    assert bsky.requests == []


def test_backfill_from_on_first_start(fakes, archive, make_settings):
    js = fakes(JetstreamFake)
    bsky = fakes(BlueskyFake, accounts={"me.test": "app-pass"})
    start = datetime.now(UTC) - timedelta(hours=3)
    views = [bsky.publish(post_view(k, start + timedelta(minutes=k)), keep=True) for k in range(5)]
    bsky.publish(post_view(50, start - timedelta(hours=1)), keep=True)  # before backfill_from
    config = {"jetstream": js.ws_url + "/subscribe", "pds": bsky.url, **FAST,
              "backfill_from": format_time(start)}  # fmt: skip
    secrets = {"AFA_BLUESKY_HANDLE": "me.test", "AFA_BLUESKY_APP_PASSWORD": "app-pass"}
    h = Harness(archive, make_settings(), config, secrets=secrets)
    asyncio.run(h.run_until(lambda: h.ctx.state.gaps_backfilled == 1))
    assert set(h.statuses()) == {v["uri"] for v in views}
    assert h.cursor() is None or "backfill" not in h.cursor()
