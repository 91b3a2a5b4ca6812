"""`make demo` from this checkout serves the event page and a live stream that delivers posts,
and Ctrl-C stops every process it started."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import psutil

from core.redisd import free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent


def read_posts(url: str, want: int, timeout: float) -> list[dict]:
    posts: list[dict] = []
    deadline = time.monotonic() + timeout
    with httpx.stream("GET", url, timeout=httpx.Timeout(10, read=timeout)) as response:
        assert response.status_code == 200
        event = None
        for line in response.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event == "post":
                posts.append(json.loads(line.split(":", 1)[1]))
            if len(posts) >= want or time.monotonic() > deadline:
                break
    return posts


def test_make_demo_serves_pages_and_a_live_stream(tmp_path):
    site_port, live_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(
        AFA_VAR_DIR=str(tmp_path / "var"),
        AFA_OUTPUT_DIR=str(tmp_path / "output"),
        AFA_SITE_PORT=str(site_port),
        AFA_LIVE_PORT=str(live_port),
    )
    demo = subprocess.Popen(
        ["make", "--no-print-directory", "demo", "SPEED=600", "DURATION=240"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    failed: AssertionError | None = None
    try:
        wait_for_port(site_port, timeout=120)
        wait_for_port(live_port, timeout=120)
        page = httpx.get(f"http://127.0.0.1:{site_port}/northwind-2026/", timeout=10)
        assert page.status_code == 200
        assert "Northwind Conf 2026" in page.text
        live = httpx.get(f"http://127.0.0.1:{site_port}/northwind-2026/live/", timeout=10)
        assert live.status_code == 200 and f":{live_port}/live/northwind-2026/stream" in live.text
        posts = read_posts(
            f"http://127.0.0.1:{live_port}/live/northwind-2026/stream?after=0", 30, 90
        )
        assert len(posts) == 30
        seqs = [p["seq"] for p in posts]
        assert seqs == list(range(1, 31))
        started = psutil.Process(demo.pid).children(recursive=True)
        assert len(started) >= 5  # demo.py, redis, live, static server, scheduler, collector
    except AssertionError as error:
        failed = error
    finally:
        os.killpg(demo.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        output, _ = demo.communicate(timeout=60)
    if failed is not None:  # what the demo printed is what tells why
        raise AssertionError(f"{failed}\n--- make demo printed:\n{output}") from failed
    alive = [p for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert alive == [], output
    assert "live page" in output and "stopping every process" in output
