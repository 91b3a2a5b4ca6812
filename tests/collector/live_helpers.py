"""Helpers for live-source tests: run collect() in a thread-free asyncio loop until a condition."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

from collector.collect import Options, collect
from core.events import load_events

SAMPLE_CONTENT = Path(__file__).resolve().parents[2] / "content"

FAST = Options(
    status_seconds=0.2,
    stop_grace=3.0,
    restart_base=0.05,
    restart_cap=0.2,
    source_backoff=(0.05, 0.5),
)


def sample_event(*sources: dict):
    event = load_events(SAMPLE_CONTENT)[0]
    return dataclasses.replace(event, sources=tuple(sources))


async def run_until(settings, events, done: Callable[[], bool], timeout: float = 20.0, **kwargs):
    """Run collect() until `done()` is true (checked every 50 ms), then stop; returns states
    and how long the stop took."""
    stop = asyncio.Event()
    kwargs.setdefault("options", FAST)
    task = asyncio.create_task(collect(settings, events, stop, **kwargs))
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline and not task.done():
        await asyncio.sleep(0.05)
    stopping = time.monotonic()
    stop.set()
    states = await asyncio.wait_for(task, timeout=15)
    return states, time.monotonic() - stopping


def state_shows(redis_client, slug: str, key: str, state: str) -> Callable[[], bool]:
    """A `done()` for run_until: the collector has persisted `state` for source `key` in Redis.

    Tests wait on this instead of a fixed run time, which a loaded machine may spend before a
    source even starts."""
    import json

    from core.tail import status_key

    def done() -> bool:
        raw = redis_client.hget(status_key(slug), key)
        return raw is not None and json.loads(raw)["state"] == state

    return done


def held_for(condition: Callable[[], bool], seconds: float) -> Callable[[], bool]:
    """A `done()` that holds once `condition` has been true for `seconds` (a lower bound: a loaded
    machine only makes it longer), for tests that check nothing more happens after it."""
    since: list[float] = []

    def done() -> bool:
        if not condition():
            since.clear()
            return False
        since[:] = since or [time.monotonic()]
        return time.monotonic() - since[0] >= seconds

    return done


def count(db_path, sql: str, *params) -> int:
    import sqlite3

    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(sql, params).fetchone()[0]
    finally:
        conn.close()
