"""What the dashboard reads from a real archive: posts per minute, each source's health."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from admin import health
from core.items import format_time
from core.redisd import free_port

NOW = datetime(2026, 10, 24, 10, 30, 20, tzinfo=UTC)


def add_item(db, event: str, n: int, first_seen: datetime) -> None:
    db.execute(
        "INSERT INTO items (event, uri, source, origin, local_id, created_at, author_id, data, "
        "first_seen, seq) VALUES (?, ?, 'mastodon', 'x', ?, ?, 'a', '{}', ?, ?)",
        [event, f"https://x/{n}", str(n), format_time(first_seen), format_time(first_seen), n],
    )


def test_posts_per_minute_counts_each_minute_per_event(archive):
    for n, ago in enumerate([0, 5, 15, 61, 65, 14 * 60 + 10, 15 * 60 + 30, 3600]):
        add_item(archive, "a", n, NOW - timedelta(seconds=ago))
    add_item(archive, "b", 100, NOW)
    found = health.posts_per_minute(archive, minutes=15, now=NOW)
    assert found["a"] == [1] + [0] * 12 + [2, 3]  # 10:16 … 10:30; 10:15:30 and older left out
    assert found["b"] == [0] * 14 + [1]


def test_sources_show_live_states_and_replays_and_flag_stale_ones(archive):
    fresh, stale = format_time(NOW - timedelta(seconds=3)), format_time(NOW - timedelta(minutes=5))
    state = {"state": "streaming", "lag_seconds": 1.5, "received": 7, "errors": 1,
             "last_error": "ReadTimeout: x", "gaps_detected": 2, "gaps_backfilled": 2}  # fmt: skip
    archive.execute("INSERT INTO source_state VALUES ('a', 'mastodon:social', ?, ?)",
                    [json.dumps(state), fresh])  # fmt: skip
    archive.execute("INSERT INTO source_state VALUES ('a', 'flickr:x', ?, ?)",
                    [json.dumps({"state": "polling"}), stale])  # fmt: skip
    archive.execute("INSERT INTO cursors VALUES ('a', 'replay:r.jsonl', ?, ?)",
                    [json.dumps({"line": 4, "clock": "2026-10-24T09:00:00.000Z"}), fresh])  # fmt: skip
    rows = {r.key: r for r in health.sources(archive, now=NOW)}
    assert rows["mastodon:social"].state == "streaming" and not rows["mastodon:social"].stale
    assert rows["mastodon:social"].gaps == "2/2" and rows["mastodon:social"].errors == 1
    assert rows["flickr:x"].stale
    assert rows["replay:r.jsonl"].state == "replaying"
    assert rows["replay:r.jsonl"].last_post_at == "2026-10-24T09:00:00.000Z"


class Stats(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        body = json.dumps({"viewers": {"a": 3, "b": 1}, "connections": 4}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def sidecar_urls():
    """Two real HTTP servers answering /stats as a live sidecar does, and a port nobody serves."""
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), Stats) for _ in range(2)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield [f"http://127.0.0.1:{s.server_address[1]}/stats" for s in servers] + [
        f"http://127.0.0.1:{free_port()}/stats"
    ]
    for server in servers:
        server.shutdown()
        server.server_close()


def test_viewers_are_summed_over_sidecars_and_a_silent_one_is_named(sidecar_urls):
    async def ask() -> health.Viewers:
        async with httpx.AsyncClient() as client:
            return await health.viewers(client, sidecar_urls)

    found = asyncio.run(ask())
    assert found.per_event == {"a": 6, "b": 2} and found.sidecars == 2
    assert found.problems == [f"{sidecar_urls[2]}: ConnectError"]
