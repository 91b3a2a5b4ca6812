"""The fakes speak each source's protocol as the fixtures show, and every fault is observable."""

from __future__ import annotations

import asyncio
import json
import re
import time
from email.utils import formatdate

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.fakes.base import FIXTURES
from tests.fakes.bluesky import BlueskyFake
from tests.fakes.flickr import DEFAULT_KEY
from tests.fakes.jetstream import JetstreamFake, event_from_post_view, post_event
from tests.fakes.mastodon import (
    DEFAULT_TOKEN,
    MastodonFake,
    new_status,
    normalize_hashtag,
    paginate,
)

AUTH = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
ISO6 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


class Reader:
    """Raw body bytes of a streaming response, read up to a condition."""

    def __init__(self, response: httpx.Response) -> None:
        self.it = response.iter_raw()
        self.buf = b""

    def until(self, pred, timeout: float = 5.0) -> bytes:
        deadline = time.monotonic() + timeout
        while not pred(self.buf):
            assert time.monotonic() < deadline, f"timed out; got {self.buf[-300:]!r}"
            self.buf += next(self.it)
        return self.buf

    def contains(self, needle: bytes, timeout: float = 5.0) -> bytes:
        return self.until(lambda b: needle in b, timeout)


def stream(client: httpx.Client, fake: MastodonFake, tag: str, headers=AUTH):
    return client.stream(
        "GET", f"{fake.url}/api/v1/streaming/hashtag", params={"tag": tag}, headers=headers
    )


def fixture_events() -> list[tuple[str, str]]:
    raw = (FIXTURES / "mastodon-stream-hashtag.txt").read_bytes().decode()
    return re.findall(r"event: (\S+)\ndata: (.*)\n\n", raw)


# -- Mastodon: streaming ----------------------------------------------------------------------


def test_stream_bytes_match_fixture_framing(start_fake):
    fake = start_fake(MastodonFake, heartbeat=60)
    events = fixture_events()
    (_, first), (_, edit), (_, other_edit), (_, deleted) = events
    with (
        httpx.Client(timeout=5) as client,
        stream(client, fake, "test") as r1,
        stream(client, fake, "MUSICTUESDAY") as r2,
    ):
        assert r1.status_code == 200
        a, b = Reader(r1), Reader(r2)
        a.contains(b":)\n")
        b.contains(b":)\n")
        fake.publish(json.loads(first), keep=True)
        fake.update(json.loads(edit))
        fake.update(json.loads(other_edit))
        fake.delete(deleted)
        a.contains(b"data: 108914430312582020\n\n")
        b.contains(b"event: status.update\ndata: {")
        b.until(lambda buf: buf.endswith(b"\n\n"))
    expected = (FIXTURES / "mastodon-stream-hashtag.txt").read_bytes().replace(b":thump\n", b"")
    other = f"event: status.update\ndata: {other_edit}\n\n".encode()
    assert a.buf == expected.replace(other, b"")
    assert b.buf == b":)\n" + other
    # headers as recorded (minus Date and X-Request-Id)
    recorded = (FIXTURES / "mastodon-stream-hashtag.headers").read_text().splitlines()[1:]
    for line in recorded:
        name, value = line.split(": ", 1)
        assert r1.headers[name] == value


def test_stream_heartbeats_and_no_replay(mastodon_fake):
    mastodon_fake.publish(new_status(tags=["northwind"]))  # before anyone listens: never streamed
    with httpx.Client(timeout=5) as client, stream(client, mastodon_fake, "northwind") as r:
        reader = Reader(r)
        reader.until(lambda b: b.count(b":thump\n") >= 2)
        assert reader.buf.startswith(b":)\n:thump\n")
        assert b"event:" not in reader.buf
        served = mastodon_fake.publish(new_status(tags=["Northwind"], content="<p>é ü 🎉</p>"))
        reader.contains(b"\n\n", timeout=3)
        line = re.search(rb"event: update\ndata: (.*)\n\n", reader.buf).group(1)
        assert json.loads(line)["id"] == served["id"]
        assert "🎉".encode() in line  # raw UTF-8, as JSON.stringify writes it


def test_stream_tag_normalisation_and_filters(mastodon_fake):
    assert normalize_hashtag("Café") == normalize_hashtag("cafe") == "cafe"
    assert normalize_hashtag("#ＴＥＳＴ_1·x!") == "test_1·x"
    with httpx.Client(timeout=5) as client, stream(client, mastodon_fake, "Café") as r:
        reader = Reader(r)
        reader.contains(b":)\n")
        mastodon_fake.publish(
            new_status(tags=["cafe"], visibility="unlisted")
        )  # not on a hashtag stream
        mastodon_fake.publish(new_status(tags=["cafe"], reblog=new_status()))  # reblogs never are
        ok = mastodon_fake.publish(new_status(tags=["CAFÉ"]))
        reader.contains(b"\n\n")
        assert reader.buf.count(b"event: update") == 1
        assert f'"id":"{ok["id"]}"'.encode() in reader.buf


def test_stream_errors(mastodon_fake):
    base = f"{mastodon_fake.url}/api/v1/streaming"
    r = httpx.get(f"{base}/hashtag?tag=x")
    assert (r.status_code, r.json(), r.headers["content-type"]) == (
        401,
        {"error": "Missing access token"},
        "application/json",
    )
    r = httpx.get(f"{base}/hashtag?tag=x", headers={"Authorization": "Bearer nope"})
    assert (r.status_code, r.json()) == (401, {"error": "Invalid access token"})
    r = httpx.get(f"{base}/hashtag", headers=AUTH)
    assert (r.status_code, r.json()) == (400, {"error": "Missing tag name parameter"})
    r = httpx.get(f"{base}/nonsense?tag=x", headers=AUTH)
    assert (r.status_code, r.json()) == (400, {"error": "Unknown channel requested"})
    with httpx.Client(timeout=5) as client:
        with client.stream("GET", f"{base}/hashtag?tag=x&access_token={DEFAULT_TOKEN}") as r:
            assert r.status_code == 200


def test_edit_and_delete(mastodon_fake):
    s = mastodon_fake.publish(new_status(tags=["northwind"]))
    with httpx.Client(timeout=5) as client, stream(client, mastodon_fake, "northwind") as r:
        reader = Reader(r)
        reader.contains(b":)\n")
        mastodon_fake.edit(s["id"], content="<p>edited</p>")
        mastodon_fake.delete(s["id"])
        reader.contains(f"event: delete\ndata: {s['id']}\n\n".encode())
        edit = json.loads(re.search(rb"event: status.update\ndata: (.*)\n", reader.buf).group(1))
        assert edit["id"] == s["id"] and edit["content"] == "<p>edited</p>" and edit["edited_at"]
    r = httpx.get(f"{mastodon_fake.url}/api/v1/statuses/{s['id']}")
    assert (r.status_code, r.json()) == (404, {"error": "Record not found"})
    assert httpx.get(f"{mastodon_fake.url}/api/v1/timelines/tag/northwind").json() == []


# -- Mastodon: REST -------------------------------------------------------------------------


def timeline(fake, tag="northwind", **params):
    return httpx.get(f"{fake.url}/api/v1/timelines/tag/{tag}", params=params)


def ids_of(response) -> list[int]:
    return [int(s["id"]) for s in response.json()]


@pytest.fixture
def ninety_five(mastodon_fake):
    ids = [int(mastodon_fake.publish(new_status(tags=["northwind"]))["id"]) for _ in range(95)]
    assert ids == sorted(ids)
    return ids


def test_min_id_walk_returns_each_post_once_in_ascending_chunks(mastodon_fake, ninety_five):
    seen, cursor, sizes = [], "0", []
    while True:
        page = ids_of(timeline(mastodon_fake, limit=40, min_id=cursor))
        if not page:
            break
        assert page == sorted(page, reverse=True)  # min_id pages are still newest first
        sizes.append(len(page))
        seen.extend(reversed(page))
        cursor = str(max(page))
    assert sizes == [40, 40, 15]
    assert seen == ninety_five


def test_since_id_gives_newest_page_and_a_gap(mastodon_fake, ninety_five):
    page = ids_of(timeline(mastodon_fake, limit=40, since_id=ninety_five[9]))
    assert page == list(reversed(ninety_five[55:]))  # ninety_five[10:55] is the gap


def test_max_id_and_limits(mastodon_fake, ninety_five):
    assert ids_of(timeline(mastodon_fake, limit=40, max_id=ninety_five[50])) == list(
        reversed(ninety_five[10:50])
    )
    assert len(ids_of(timeline(mastodon_fake))) == 20  # default limit
    assert len(ids_of(timeline(mastodon_fake, limit=100))) == 40  # capped
    both = ids_of(timeline(mastodon_fake, limit=40, min_id=ninety_five[10], max_id=ninety_five[15]))
    assert both == list(reversed(ninety_five[11:15]))
    # min_id wins over since_id, as in paginable.rb
    assert ids_of(
        timeline(mastodon_fake, limit=3, min_id=ninety_five[0], since_id=ninety_five[90])
    ) == list(reversed(ninety_five[1:4]))
    assert paginate([1, 2, 3], 2, None, None, "") == [3, 2]  # "" is not present?


def test_link_header(mastodon_fake, ninety_five):
    r = timeline(
        mastodon_fake, limit=10, max_id=ninety_five[50], only_media="false", remote="false"
    )
    base = f"{mastodon_fake.url}/api/v1/timelines/tag/northwind"
    assert r.headers["link"] == (
        f'<{base}?limit=10&max_id={ninety_five[40]}&only_media=false>; rel="next", '
        f'<{base}?limit=10&min_id={ninety_five[49]}&only_media=false>; rel="prev"'
    )
    empty = timeline(mastodon_fake, limit=10, min_id=ninety_five[-1])
    assert empty.json() == [] and "link" not in empty.headers
    assert timeline(mastodon_fake, tag="unknown").json() == []


def clear_of_window_edge(period: float, margin: float = 10.0) -> None:
    """The fakes count requests in windows aligned to the clock, as the sources do: a test whose
    requests must fall in one window starts them well before the next edge (a loaded machine
    once put the third of three requests past it, in a fresh window)."""
    left = period - time.time() % period
    if left < margin:
        time.sleep(left + 0.05)


def test_rate_limit_budget(start_fake):
    fake = start_fake(MastodonFake, rate_limit=(3, 60))
    clear_of_window_edge(60)
    answers = [timeline(fake) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["x-ratelimit-remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert answers[3].json() == {"error": "Too many requests"}
    assert all(a.headers["x-ratelimit-limit"] == "3" for a in answers)
    reset = answers[3].headers["x-ratelimit-reset"]
    assert ISO6.match(reset), reset


def test_instance_and_timelines_access(start_fake):
    fake = start_fake(
        MastodonFake, timelines_access={"local": "authenticated", "remote": "disabled"}
    )
    fake.publish(new_status(tags=["northwind"]))  # remote
    doc = httpx.get(f"{fake.url}/api/v2/instance").json()
    assert doc["configuration"]["timelines_access"]["hashtag_feeds"] == {
        "local": "authenticated",
        "remote": "disabled",
    }
    assert doc["configuration"]["urls"]["streaming"] == f"ws://{fake.host}"
    assert timeline(fake).status_code == 422
    r = httpx.get(f"{fake.url}/api/v1/timelines/tag/northwind", headers=AUTH)
    assert (r.status_code, r.json()) == (200, [])  # disabled remote feed: an empty array, no error
    local = fake.publish(new_status(tags=["northwind"], uri=None, url=None))
    r = httpx.get(f"{fake.url}/api/v1/timelines/tag/northwind", headers=AUTH)
    assert ids_of(r) == [int(local["id"])]
    r = httpx.get(
        f"{fake.url}/api/v1/timelines/tag/northwind", headers={"Authorization": "Bearer bad"}
    )
    assert (r.status_code, r.json()) == (401, {"error": "The access token is invalid"})


def test_two_instances_share_a_post_and_backdating(start_fake):
    a, b = start_fake(MastodonFake), start_fake(MastodonFake)
    post = new_status(tags=["northwind"])
    on_a, on_b = a.publish(post), b.publish(post)
    assert on_a["uri"] == on_b["uri"] and on_a["id"] != on_b["id"]
    newest = int(a.publish(new_status(tags=["northwind"]))["id"])
    late = a.publish(new_status(tags=["northwind"]), created_at=time.time() - 600)
    assert int(late["id"]) < newest
    assert ids_of(timeline(a, min_id=newest)) == []  # the trap: polling from the last id misses it
    assert int(late["id"]) in ids_of(timeline(a))


def test_script_rest_and_stream_agree(start_fake):
    """A scripted post is in REST from its moment on, and streamed to a client then connected.

    The later posts are scheduled only once the stream is open: scheduled before it, they could
    come due while a loaded machine was still connecting (a flake seen once in CI-like runs).
    """
    fake = start_fake(MastodonFake, heartbeat=60)
    fake.play([(-1, new_status(tags=["nw"]))])
    assert len(ids_of(timeline(fake, tag="nw"))) == 1
    with httpx.Client(timeout=5) as client, stream(client, fake, "nw") as r:
        reader = Reader(r)
        reader.contains(b":)\n", timeout=30)
        fake.play([(0.1, new_status(tags=["nw"])), (0.2, new_status(tags=["nw"]))])
        reader.until(lambda b: b.count(b"event: update") == 2, timeout=30)
    assert len(ids_of(timeline(fake, tag="nw"))) == 3


# -- Mastodon: faults -----------------------------------------------------------------------


def test_fault_cut_mid_event(mastodon_fake):
    with httpx.Client(timeout=5) as client, stream(client, mastodon_fake, "nw") as r:
        reader = Reader(r)
        reader.contains(b":)\n")
        mastodon_fake.faults.cut()
        mastodon_fake.publish(new_status(tags=["nw"]))
        with pytest.raises(httpx.RemoteProtocolError):
            reader.until(lambda b: False)
    assert b"event: update\ndata: {" in reader.buf and not reader.buf.endswith(b"\n\n")


def test_fault_malformed_event(mastodon_fake):
    with httpx.Client(timeout=5) as client, stream(client, mastodon_fake, "nw") as r:
        reader = Reader(r)
        reader.contains(b":)\n")
        mastodon_fake.faults.malformed()
        mastodon_fake.publish(new_status(tags=["nw"]))
        good = mastodon_fake.publish(new_status(tags=["nw"]))
        reader.until(lambda b: b.count(b"event: update") == 2 and b.endswith(b"\n\n"))
    bad_line, good_line = re.findall(rb"data: (.*)\n\n", reader.buf)
    with pytest.raises(json.JSONDecodeError):
        json.loads(bad_line)
    assert json.loads(good_line)["id"] == good["id"]


def test_fault_stall_stops_heartbeats(start_fake):
    fake = start_fake(MastodonFake, heartbeat=0.1)
    with httpx.Client(timeout=5) as client, stream(client, fake, "nw") as r:
        reader = Reader(r)
        reader.contains(b":thump\n")
        fake.faults.stall(0.8)
        fake.publish(new_status(tags=["nw"]))
        before = len(reader.buf)
        started = time.monotonic()
        reader.until(lambda b: len(b) > before + 1)
        assert time.monotonic() - started > 0.6
        reader.contains(b"event: update")  # held, then delivered


def test_fault_http_bursts_and_429(mastodon_fake):
    mastodon_fake.faults.fail(502, count=2, path="/api/v1/timelines")
    assert [timeline(mastodon_fake).status_code for _ in range(3)] == [502, 502, 200]
    mastodon_fake.faults.rate_limit(count=1, reset_in=0.5)
    r = timeline(mastodon_fake)
    assert (r.status_code, r.json(), r.headers["x-ratelimit-remaining"]) == (
        429,
        {"error": "Too many requests"},
        "0",
    )
    assert ISO6.match(r.headers["x-ratelimit-reset"])
    log = mastodon_fake.requests_to("/api/v1/timelines")
    assert [e.status for e in log] == [502, 502, 200, 429]
    assert [e.fault for e in log] == ["fail", "fail", None, "rate_limit"]
    # a stream connect can be refused the same way
    mastodon_fake.faults.fail(500)
    assert (
        httpx.get(f"{mastodon_fake.url}/api/v1/streaming/hashtag?tag=x", headers=AUTH).status_code
        == 500
    )


def test_fault_rest_cut_and_malformed(mastodon_fake):
    mastodon_fake.publish(new_status(tags=["nw"]))
    mastodon_fake.faults.cut()
    with pytest.raises(httpx.RemoteProtocolError):
        timeline(mastodon_fake, tag="nw")
    mastodon_fake.faults.malformed()
    r = timeline(mastodon_fake, tag="nw")
    assert r.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        r.json()
    assert len(timeline(mastodon_fake, tag="nw").json()) == 1


def test_fault_restart_keeps_posts_and_drops_streams(mastodon_fake):
    s = mastodon_fake.publish(new_status(tags=["nw"]))
    with httpx.Client(timeout=5) as client, stream(client, mastodon_fake, "nw") as r:
        reader = Reader(r)
        reader.contains(b":)\n")
        mastodon_fake.restart(downtime=0.2)
        with pytest.raises(httpx.RemoteProtocolError):
            reader.until(lambda b: False)
    assert ids_of(timeline(mastodon_fake, tag="nw")) == [int(s["id"])]


# -- Jetstream --------------------------------------------------------------------------------


async def collect(url: str, quiet: float = 0.4, limit: int = 1000) -> list[str]:
    frames = []
    async with connect(url) as ws:
        try:
            while len(frames) < limit:
                frames.append(await asyncio.wait_for(ws.recv(), quiet))
        except TimeoutError:
            pass
    return frames


def test_jetstream_cursor_replay(jetstream_fake):
    lines = [
        line
        for line in (FIXTURES / "jetstream-v1-capture-2026-07-04.jsonl").read_text().splitlines()
        if line
    ]
    jetstream_fake.load_capture()
    events = [json.loads(line) for line in lines]
    cursor = sorted(e["time_us"] for e in events)[100]
    url = f"{jetstream_fake.ws_url}/subscribe?wantedCollections=app.bsky.feed.post&cursor={cursor}"
    frames = asyncio.run(collect(url))
    wanted = sorted(
        (e["time_us"], line)
        for e, line in zip(events, lines, strict=True)
        if e["time_us"] >= cursor
        and (e["kind"] != "commit" or e["commit"]["collection"] == "app.bsky.feed.post")
    )
    assert frames == [line for _, line in wanted]  # verbatim bytes, identity/account included
    assert {json.loads(f)["kind"] for f in frames} == {"commit", "identity", "account"}
    # a cursor older than anything retained is clamped to the oldest: everything
    assert len(asyncio.run(collect(f"{jetstream_fake.ws_url}/subscribe?cursor=1"))) == len(lines)


def test_jetstream_live_tail_no_gap_no_duplicate(jetstream_fake):
    first = jetstream_fake.publish(post_event("did:plc:aaa", "r1", {"text": "a & b <c>"}))

    async def run():
        async with connect(
            f"{jetstream_fake.ws_url}/subscribe?wantedCollections=app.bsky.feed.*"
        ) as ws:
            await asyncio.to_thread(jetstream_fake.wait_for_clients, 1)
            await asyncio.to_thread(
                jetstream_fake.publish, post_event("did:plc:aaa", "r2", {"text": "x"})
            )
            await asyncio.to_thread(
                jetstream_fake.publish,
                post_event("did:plc:aaa", "r3", {}, collection="app.bsky.graph.follow"),
            )
            await asyncio.to_thread(jetstream_fake.delete_post, "did:plc:aaa", "r2")
            return [await asyncio.wait_for(ws.recv(), 2) for _ in range(2)]

    live = asyncio.run(run())
    assert [json.loads(f)["commit"]["rkey"] for f in live] == ["r2", "r2"]
    deleted = json.loads(live[1])["commit"]
    assert deleted["operation"] == "delete" and "record" not in deleted and "cid" not in deleted
    replay = asyncio.run(collect(f"{jetstream_fake.ws_url}/subscribe?cursor={first['time_us']}"))
    assert len(replay) == 4
    assert '"text":"a \\u0026 b \\u003cc\\u003e"' in replay[0]  # Go's escaping


def test_jetstream_filters_and_options_update(jetstream_fake):
    jetstream_fake.load_capture()
    did = "did:plc:hqvhxrowqbemo5e4wjnj6zao"
    frames = asyncio.run(
        collect(
            f"{jetstream_fake.ws_url}/subscribe?cursor=1&wantedDids={did}&wantedCollections=app.bsky.feed.post"
        )
    )
    assert {json.loads(f)["kind"] for f in frames} == {"identity", "account"}

    async def run():
        async with connect(
            f"{jetstream_fake.ws_url}/subscribe?wantedCollections=app.bsky.feed.like"
        ) as ws:
            await ws.send(
                json.dumps(
                    {
                        "type": "options_update",
                        "payload": {"wantedCollections": ["app.bsky.feed.post"]},
                    }
                )
            )
            await asyncio.sleep(0.2)
            await asyncio.to_thread(jetstream_fake.publish, post_event("did:plc:a", "p", {}))
            got = json.loads(await asyncio.wait_for(ws.recv(), 2))
            await ws.send("not json")
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 2)
            return got

    assert asyncio.run(run())["commit"]["collection"] == "app.bsky.feed.post"


def test_jetstream_invalid_query_is_400(jetstream_fake):
    for query in ("wantedCollections=not..valid", "cursor=abc", "wantedDids=nobody"):
        assert httpx.get(f"{jetstream_fake.url}/subscribe?{query}").status_code == 400

    async def run():
        with pytest.raises(InvalidStatus) as info:
            async with connect(f"{jetstream_fake.ws_url}/subscribe?cursor=abc"):
                pass
        return info.value.response.status_code

    assert asyncio.run(run()) == 400


def test_jetstream_retention_clamps_cursor(start_fake):
    fake = start_fake(JetstreamFake, retention=0.3)
    old = fake.publish(post_event("did:plc:a", "old", {}))
    time.sleep(0.4)
    fake.publish(post_event("did:plc:a", "new", {}))
    frames = asyncio.run(collect(f"{fake.ws_url}/subscribe?cursor={old['time_us']}"))
    assert [json.loads(f)["commit"]["rkey"] for f in frames] == ["new"]


def test_jetstream_faults(jetstream_fake):
    url = f"{jetstream_fake.ws_url}/subscribe"

    async def run():
        out = {}
        async with connect(url) as ws:
            await asyncio.to_thread(jetstream_fake.wait_for_clients, 1)
            jetstream_fake.faults.malformed()
            await asyncio.to_thread(
                jetstream_fake.publish, post_event("did:plc:a", "m", {"text": "x" * 50})
            )
            out["malformed"] = await asyncio.wait_for(ws.recv(), 2)
            jetstream_fake.faults.stall(0.6)
            started = time.monotonic()
            await asyncio.to_thread(jetstream_fake.publish, post_event("did:plc:a", "s", {}))
            await asyncio.wait_for(ws.recv(), 3)
            out["stalled"] = time.monotonic() - started
            jetstream_fake.faults.cut()
            await asyncio.to_thread(jetstream_fake.publish, post_event("did:plc:a", "c", {}))
            with pytest.raises(ConnectionClosed) as info:
                await asyncio.wait_for(ws.recv(), 2)
            out["cut"] = info.value
        async with connect(url) as ws:
            await asyncio.to_thread(jetstream_fake.wait_for_clients, 1)
            await asyncio.to_thread(jetstream_fake.restart)
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 2)
        jetstream_fake.faults.rate_limit(reset_in=3)
        with pytest.raises(InvalidStatus) as info:
            async with connect(url):
                pass
        out["429"] = info.value.response
        jetstream_fake.faults.fail(502)
        with pytest.raises(InvalidStatus) as info:
            async with connect(url):
                pass
        out["502"] = info.value.response.status_code
        return out

    out = asyncio.run(run())
    with pytest.raises(json.JSONDecodeError):
        json.loads(out["malformed"])
    assert out["stalled"] > 0.5
    assert out["cut"].rcvd is None  # no close frame: the socket was dropped mid-frame
    assert out["429"].status_code == 429 and int(out["429"].headers["Retry-After"]) >= 2
    assert out["502"] == 502
    replay = asyncio.run(collect(f"{url}?cursor=1"))
    assert [json.loads(f)["commit"]["rkey"] for f in replay] == [
        "m",
        "s",
        "c",
    ]  # kept across restart


# -- Bluesky ----------------------------------------------------------------------------------


def test_bluesky_session_search_and_paging(bluesky_fake):
    views = bluesky_fake.load_fixture()
    search = f"{bluesky_fake.url}/xrpc/app.bsky.feed.searchPosts"
    r = httpx.get(search, params={"q": "a"})
    assert (r.status_code, r.json()) == (
        401,
        {"error": "AuthMissing", "message": "Authentication Required"},
    )
    login = httpx.post(
        f"{bluesky_fake.url}/xrpc/com.atproto.server.createSession",
        json={"identifier": "fake.bsky.test", "password": "fake-app-password"},
    ).json()
    auth = {"Authorization": f"Bearer {login['accessJwt']}"}
    target = views[0]
    tag = "northwind"
    tagged = dict(
        target, uri=target["uri"] + "x", record=dict(target["record"], tags=["NorthWind"])
    )
    bluesky_fake.publish(tagged)
    r = httpx.get(search, params={"q": "#northwind", "tag": tag}, headers=auth)
    assert [p["uri"] for p in r.json()["posts"]] == [tagged["uri"]]
    assert r.headers["ratelimit-policy"] == "3000;w=300" and r.headers["ratelimit-reset"].isdigit()
    seen, cursor = [], None
    while True:
        params = {"q": "e", "limit": 3} | ({"cursor": cursor} if cursor else {})
        page = httpx.get(search, params=params, headers=auth).json()
        seen += [p["uri"] for p in page["posts"]]
        cursor = page.get("cursor")
        if not cursor:
            break
    assert len(seen) == len(set(seen)) > 3
    bluesky_fake.expire_tokens()
    r = httpx.get(search, params={"q": "e"}, headers=auth)
    assert (r.status_code, r.json()["error"]) == (400, "ExpiredToken")
    refreshed = httpx.post(
        f"{bluesky_fake.url}/xrpc/com.atproto.server.refreshSession",
        headers={"Authorization": f"Bearer {login['refreshJwt']}"},
    ).json()
    r = httpx.get(
        search, params={"q": "e"}, headers={"Authorization": f"Bearer {refreshed['accessJwt']}"}
    )
    assert r.status_code == 200


def test_bluesky_rate_limit_and_faults(start_fake):
    fake = start_fake(BlueskyFake, rate_limit=(2, 60), auth_missing_status=403)
    search = f"{fake.url}/xrpc/app.bsky.feed.searchPosts?q=x"
    clear_of_window_edge(60)
    answers = [httpx.get(search) for _ in range(3)]
    assert [a.status_code for a in answers] == [403, 403, 429]
    assert answers[2].json() == {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"}
    assert (
        int(answers[2].headers["retry-after"]) >= 1
        and answers[2].headers["ratelimit-remaining"] == "0"
    )
    fake.rate_limit = (100, 60)
    fake.faults.rate_limit(reset_in=5)
    r = httpx.get(search)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 4
    fake.faults.fail(502, count=2)
    assert [httpx.get(search).status_code for _ in range(3)] == [502, 502, 403]


def test_jetstream_event_from_post_view():
    view = json.loads((FIXTURES / "bluesky-searchPosts.json").read_text())["posts"][0]
    event = event_from_post_view(view)
    assert (
        f"at://{event['did']}/{event['commit']['collection']}/{event['commit']['rkey']}"
        == view["uri"]
    )


# -- Flickr -----------------------------------------------------------------------------------


def flickr(fake, **params):
    base = {
        "method": "flickr.photos.search",
        "api_key": DEFAULT_KEY,
        "format": "json",
        "nojsoncallback": "1",
    }
    return httpx.get(f"{fake.url}/services/rest/", params=base | params)


def test_flickr_search(flickr_fake):
    photos = flickr_fake.load_fixture()
    new = flickr_fake.publish(dict(photos[0], id="1", tags="northwind conference", title="new"))
    r = flickr(flickr_fake, tags="NorthWind", extras="date_upload,tags")
    body = r.json()
    assert body["stat"] == "ok" and body["photos"]["total"] == "1"
    (photo,) = body["photos"]["photo"]
    assert photo["id"] == "1" and photo["dateupload"] == new["dateupload"]
    assert "description" not in photo and "url_l" not in photo and "ownername" not in photo
    since = flickr(
        flickr_fake, min_upload_date="0", per_page=7, page=2, sort="date-posted-asc", extras="url_l"
    ).json()
    assert (since["photos"]["page"], since["photos"]["pages"], since["photos"]["perpage"]) == (
        2,
        3,
        7,
    )
    assert since["photos"]["total"] == "21" and len(since["photos"]["photo"]) == 7
    ups = [int(p["dateupload"]) for p in flickr_fake._photos.values()]
    assert sorted(ups)  # fixture photos keep their own upload dates
    r = httpx.get(
        f"{flickr_fake.url}/services/rest/",
        params={
            "method": "flickr.photos.search",
            "api_key": DEFAULT_KEY,
            "format": "json",
            "tags": "northwind",
        },
    )
    assert r.text.startswith("jsonFlickrApi({") and r.text.endswith("})")


def test_flickr_errors(flickr_fake):
    assert flickr(flickr_fake, api_key="nope", tags="x").json() == {
        "stat": "fail",
        "code": 100,
        "message": "Invalid API Key (Key has invalid format)",
    }
    r = flickr(flickr_fake, method="flickr.photos.doesNotExist")
    assert r.status_code == 200
    assert r.json() == json.loads((FIXTURES / "flickr-error-method-not-found.json").read_text())
    assert flickr(flickr_fake).json()["code"] == 3
    flickr_fake.faults.fail(500)
    flickr_fake.faults.rate_limit(reset_in=2)
    assert [flickr(flickr_fake, tags="x").status_code for _ in range(3)] == [500, 429, 200]


# -- Feeds ------------------------------------------------------------------------------------


def test_feed_conditional_get(feeds_fake):
    body = (FIXTURES / "rss-sample.xml").read_bytes()
    url = feeds_fake.set_feed("/feed.rss", body)
    first = httpx.get(url)
    assert first.status_code == 200 and first.content == body
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    again = httpx.get(url, headers={"If-None-Match": etag})
    assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", etag)
    assert httpx.get(url, headers={"If-Modified-Since": modified}).status_code == 304
    assert (
        httpx.get(
            url, headers={"If-None-Match": '"other"', "If-Modified-Since": modified}
        ).status_code
        == 200
    )
    feeds_fake.set_feed(
        "/feed.rss",
        (FIXTURES / "atom-sample.xml").read_bytes(),
        content_type="application/atom+xml",
    )
    changed = httpx.get(url, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    ignoring = feeds_fake.set_feed("/plain.rss", body, etag=False, last_modified=False)
    assert (
        httpx.get(ignoring, headers={"If-Modified-Since": formatdate(usegmt=True)}).status_code
        == 200
    )
    feeds_fake.move("/old.rss", "/feed.rss")
    feeds_fake.gone("/dead.rss")
    assert httpx.get(f"{feeds_fake.url}/old.rss").headers["location"] == url
    assert httpx.get(f"{feeds_fake.url}/dead.rss").status_code == 410


def test_feed_faults(feeds_fake):
    url = feeds_fake.set_feed("/feed.rss", (FIXTURES / "mastodon-tag-feed.rss").read_bytes())
    feeds_fake.faults.cut()
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(url)
    feeds_fake.faults.rate_limit(reset_in=3)
    r = httpx.get(url)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 2
    feeds_fake.faults.stall(0.5)
    started = time.monotonic()
    assert httpx.get(url).status_code == 200
    assert time.monotonic() - started > 0.4
    feeds_fake.restart()
    assert httpx.get(url).status_code == 200
    assert [e.status for e in feeds_fake.requests] == [200, 429, 200, 200]
