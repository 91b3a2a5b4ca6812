"""A decision reaches an open live page: a real `python -m live serve` subprocess, a real
redis-server, an SSE client over httpx; hide sends a retract, unhide sends the post again."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import httpx

from collector.publish import publish_after_commit
from collector.sources.mastodon import parse_status
from collector.store import save_batch
from core.archive import last_seq
from core.moderation.decisions import Moderator
from core.redisd import free_port

from .conftest import mastodon_status

ROOT = Path(__file__).resolve().parents[2]
EVENT = "northwind-2026"


def sse_messages(response: httpx.Response):
    """(event, data) per dispatched SSE block; comments and the retry hint are skipped."""
    event, data = "message", []
    for line in response.iter_lines():
        if line == "":
            if data:
                yield event, "\n".join(data)
            event, data = "message", []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())


def test_hide_and_unhide_reach_an_open_live_stream(
    archive, redis_client, redis_url, start_child, tmp_path
):
    posts = [parse_status(mastodon_status(k), "mastodon.social") for k in (1, 2)]
    publish_after_commit(
        redis_client, archive, EVENT, save_batch(archive, EVENT, posts, "s", None), 100
    )
    port = free_port()
    child = start_child([sys.executable, "-m", "live", "serve", "--port", str(port)], port=port,
                        env={"REDIS_URL": redis_url, "AFA_CONTENT_DIR": str(ROOT / "content")})  # fmt: skip
    child.wait_ready()
    mod = Moderator(archive, redis_client)
    url = f"http://127.0.0.1:{port}/live/{EVENT}/stream?after={last_seq(archive, EVENT)}"
    with httpx.Client(timeout=10) as client, client.stream("GET", url) as response:
        assert response.status_code == 200
        messages = sse_messages(response)
        time.sleep(0.3)  # the sidecar's reader is following the stream from here
        mod.hide(EVENT, posts[0].uri, who="ana", why="test")
        kind, data = next(messages)
        assert (kind, json.loads(data)["uri"], json.loads(data)["seq"]) == (
            "retract",
            posts[0].uri,
            3,
        )
        mod.unhide(EVENT, posts[0].uri, who="ana", why="test")
        kind, data = next(messages)
        assert (kind, json.loads(data)["item"]["uri"]) == ("post", posts[0].uri)
