"""The sidecar over real HTTP: resume, catch-up, reset, headers, limits, many clients."""

from __future__ import annotations

import asyncio
import contextlib
import json

import httpx

from core.tail import stream_key

from .conftest import EVENT, aparse_sse, publish, seqs


def test_live_then_resume_by_last_event_id(live, redis_client):
    with live.stream() as stream:  # from "now": nothing published yet
        assert stream.retry == 3000
        publish(redis_client, range(1, 6))
        first = stream.take(5)
    publish(redis_client, range(6, 11))
    with live.stream(last_id=5) as stream:
        again = stream.take(5)
        publish(redis_client, range(11, 13))
        again += stream.take(2)
    assert seqs(first) == [1, 2, 3, 4, 5]
    assert seqs(again) == list(range(6, 13))
    assert {m.event for m in first + again} == {"post"}
    assert all(json.loads(m.data)["seq"] == m.seq for m in first + again)


def test_data_is_the_stored_json_text(live, redis_client):
    publish(redis_client, [1])
    stored = redis_client.xrange(stream_key(EVENT))[0][1]["data"]
    with live.stream(after=0) as stream:
        (message,) = stream.take(1)
    assert message.data == stored and "Ada Ö" in message.data


def test_after_on_first_connect_then_live(live, redis_client):
    publish(redis_client, range(1, 9))
    with live.stream(after=3) as stream:
        got = stream.take(5)
        publish(redis_client, [9])
        got += stream.take(1)
    assert seqs(got) == [4, 5, 6, 7, 8, 9]


def test_last_event_id_wins_over_after(live, redis_client):
    """A reconnecting EventSource keeps its URL (?after= from the static page) and adds the
    header, which is the newer cursor."""
    publish(redis_client, range(1, 6))
    with live.stream(after=1, last_id=3) as stream:
        assert seqs(stream.take(2)) == [4, 5]


def test_catch_up_is_capped_and_resumed_in_bites(start_live, redis_client):
    live = start_live(AFA_CATCHUP_LIMIT="5")
    publish(redis_client, range(1, 13))
    with live.stream(after=0) as stream:
        bite = stream.take(5)
        assert stream.next() is None  # the response ends after one bite
    with live.stream(last_id=bite[-1].seq) as stream:
        bite2 = stream.take(5)
        assert stream.next() is None
    with live.stream(last_id=bite2[-1].seq) as stream:
        rest = stream.take(2)
        publish(redis_client, [13])
        rest += stream.take(1)
    assert seqs(bite + bite2 + rest) == list(range(1, 14))


def test_cursor_older_than_the_tail_gets_reset(live, redis_client):
    publish(redis_client, range(1, 21))
    redis_client.xtrim(stream_key(EVENT), maxlen=10, approximate=False)  # keeps 11..20
    with live.stream(after=3) as stream:
        (reset,) = stream.take(1)
        assert stream.next() is None
    assert reset.event == "reset" and reset.id == "10"
    assert json.loads(reset.data) == {"after": 3, "first": 11, "last": 20}
    with live.stream(last_id=10) as stream:  # the cursor the reset handed out
        assert seqs(stream.take(10)) == list(range(11, 21))
    assert live.stats()["resets"] == 1


def test_bad_cursor_is_400(live):
    response = live.client.get(f"/live/{EVENT}/stream?after=soon")
    assert response.status_code == 400


def test_unknown_event_is_404(live):
    response = live.client.get("/live/no-such-event/stream")
    assert response.status_code == 404
    assert response.json() == {"error": "no event 'no-such-event'"}


def test_healthz(live):
    response = live.client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "redis": True}


def test_headers_and_cors(start_live, redis_client):
    live = start_live(AFA_SITE_ORIGIN="https://site.example")
    with live.stream(headers={"Origin": "https://site.example"}) as stream:
        headers = stream.response.headers
    assert headers["content-type"].startswith("text/event-stream")
    assert headers["cache-control"] == "no-cache"
    assert headers["x-accel-buffering"] == "no"
    assert headers["access-control-allow-origin"] == "https://site.example"
    preflight = live.client.options(
        f"/live/{EVENT}/stream",
        headers={"Origin": "https://site.example", "Access-Control-Request-Method": "GET",
                 "Access-Control-Request-Headers": "last-event-id"},
    )  # fmt: skip
    assert preflight.status_code == 200
    assert "last-event-id" in preflight.headers["access-control-allow-headers"].lower()
    other = live.client.options(
        f"/live/{EVENT}/stream",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert other.status_code == 400


def test_stats_count_viewers_and_posts(live, redis_client):
    with live.stream() as one, live.stream() as two:
        stats = live.wait_stats(lambda s: s["viewers"].get(EVENT) == 2)
        assert stats["viewers"] == {EVENT: 2} and stats["connections"] == 2
        publish(redis_client, [1, 2])
        assert seqs(one.take(2)) == seqs(two.take(2)) == [1, 2]
    stats = live.wait_stats(lambda s: s["viewers"][EVENT] == 0 and s["connections"] == 0)
    assert stats["viewers"] == {EVENT: 0} and stats["connections"] == 0
    assert stats["posts_sent"] == 4 and stats["entries_read"] == {EVENT: 2}
    assert stats["readers"] == {EVENT: True}


def test_full_server_says_503_with_retry_after(start_live):
    live = start_live(AFA_LIVE_MAX_CLIENTS="1")
    with live.stream():
        response = live.client.get(f"/live/{EVENT}/stream")
        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"
    assert live.stats()["rejected"] == 1


def test_a_burst_on_an_idle_reader_lets_exactly_max_clients_in(start_live):
    """Issue 13: the limit was checked against subscribed clients, and the first stream of an
    idle event subscribes after an await on Redis, so 30 at once with a limit of 6 all got 200.
    Streams now count from the moment they are admitted, before any await."""
    live = start_live(AFA_LIVE_MAX_CLIENTS="6", AFA_LIVE_MAX_PER_ADDRESS="0")

    async def burst() -> list[int]:
        limits = httpx.Limits(max_connections=40, max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=live.url, limits=limits, timeout=30) as client:
            async with contextlib.AsyncExitStack() as stack:

                async def one() -> int:
                    stream = client.stream("GET", f"/live/{EVENT}/stream")
                    return (await stack.enter_async_context(stream)).status_code

                return await asyncio.gather(*(one() for _ in range(30)))

    statuses = asyncio.run(burst())
    assert sorted(statuses) == [200] * 6 + [503] * 24, statuses
    stats = live.wait_stats(lambda s: s["connections"] == 0)
    assert stats["rejected"] == 24 and stats["connections"] == 0
    with live.stream() as again:  # the burst's streams ended: room again
        assert again.response.status_code == 200


def test_fifty_clients_get_every_post_in_order(live, redis_client):
    total = 200

    async def client(http: httpx.AsyncClient, ready: asyncio.Event, opened: list) -> list[int]:
        got: list[int] = []
        async with http.stream("GET", f"/live/{EVENT}/stream") as response:
            messages = aparse_sse(response.aiter_lines())
            await anext(messages)  # the retry hint: subscribed, cursor fixed
            opened.append(1)
            if len(opened) == 50:
                ready.set()
            async for message in messages:
                got.append(message.seq)
                if len(got) == total:
                    return got
        return got

    async def publisher(ready: asyncio.Event) -> None:
        await ready.wait()
        for start in range(1, total + 1, 20):
            await asyncio.to_thread(publish, redis_client, range(start, start + 20))
            await asyncio.sleep(0.01)

    async def main() -> list[list[int]]:
        limits = httpx.Limits(max_connections=60)
        async with httpx.AsyncClient(base_url=live.url, timeout=30, limits=limits) as http:
            ready, opened = asyncio.Event(), []
            clients = [client(http, ready, opened) for _ in range(50)]
            *results, _ = await asyncio.wait_for(
                asyncio.gather(*clients, publisher(ready)), timeout=60
            )
            return results

    results = asyncio.run(main())
    assert all(r == list(range(1, total + 1)) for r in results)
    assert live.stats()["slow_dropped"] == 0


def test_too_many_streams_from_one_address_get_429(start_live):
    live = start_live(AFA_LIVE_MAX_PER_ADDRESS="2")
    with live.stream(), live.stream():
        response = live.client.get(f"/live/{EVENT}/stream")
        assert response.status_code == 429
        assert response.headers["retry-after"] == "5"
        assert response.json() == {
            "error": "too many live connections from 127.0.0.1 (at most 2); "
            "close other live pages or try again shortly"
        }
    live.wait_stats(lambda s: s["connections"] == 0)
    with live.stream() as again:  # the address's streams ended: room again
        assert again.response.status_code == 200
    assert live.stats()["rejected_per_address"] == 1


def test_metrics_in_prometheus_text_format(start_live, redis_client):
    live = start_live(AFA_LIVE_MAX_PER_ADDRESS="1")
    with live.stream() as stream:
        live.client.get(f"/live/{EVENT}/stream")  # refused: 429
        publish(redis_client, [1, 2])
        assert seqs(stream.take(2)) == [1, 2]
        response = live.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    samples = {}
    for line in response.text.splitlines():
        if line.startswith("# "):
            assert line.split(" ")[1] in ("HELP", "TYPE"), line
            continue
        name, value = line.rsplit(" ", 1)
        samples[name] = float(value)
    assert samples["afa_live_up"] == 1 and samples["afa_live_redis_up"] == 1
    assert samples["afa_live_connections"] == 1
    assert samples[f'afa_live_viewers{{event="{EVENT}"}}'] == 1
    assert samples[f'afa_live_entries_read_total{{event="{EVENT}"}}'] == 2
    assert samples["afa_live_posts_sent_total"] == 2
    assert samples['afa_live_rejected_total{reason="per_address"}'] == 1
    assert samples['afa_live_rejected_total{reason="full"}'] == 0
    assert "# TYPE afa_live_posts_sent_total counter" in response.text
