"""The recording as a source driven by a clock: its deliveries, parsed in order (here or in
worker processes), paced by a ReplayClock that maps the recording's time onto wall time, and
handed over in batches with the cursor that covers them, `{"line", "clock"}`. Like a live
source it never touches SQLite or Redis: the replay (collector/replay.py) commits each batch
through the pipeline.

The enrichment step of a replay is here too: the recording's getProfiles answers name the
posts after them (KnownAuthors), as the live collector's cache did when it recorded them.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from core.errors import ParseError
from core.items import format_time, parse_time

from ..enrich.profiles import KnownAuthors
from ..normalise import SkipItem
from ..store import Malformed
from . import recording

log = logging.getLogger("collector")
BATCH_LINES = 2_000


class ReplayClock:
    """Maps the recording's times onto wall time at `speed`x; gaps over `max_gap` are skipped."""

    def __init__(self, start: datetime, speed: float, max_gap: timedelta) -> None:
        self.speed, self.max_gap = speed, max_gap
        self.base, self.wall = start, time.monotonic()

    def now(self) -> datetime:
        return self.base + timedelta(seconds=(time.monotonic() - self.wall) * self.speed)

    def seconds_until(self, at: datetime) -> float:
        if self.speed <= 0:
            return 0.0
        ahead = at - self.now()
        if ahead > self.max_gap:  # an overnight lull: jump to just before the next delivery
            self.base, self.wall = at, time.monotonic()
            return 0.0
        return max(ahead.total_seconds() / self.speed, 0.0)


@dataclass
class Batch:
    """Lines read and not yet committed: what they change, what could not be parsed, and the
    cursor that covers them. A batch of no lines only moves the clock (time passed)."""

    line: int = 0  # the last line read
    clock: datetime | None = None  # the recording's time reached
    changes: list = field(default_factory=list)
    malformed: list[Malformed] = field(default_factory=list)
    lines: int = 0
    skipped: int = 0
    clock_only: bool = False  # time passed while waiting: commit the cursor, nothing else

    @property
    def cursor(self) -> dict:
        return {"line": self.line, "clock": format_time(self.clock)}

    def empty(self) -> bool:
        return not (self.lines or self.changes or self.malformed)

    def next(self) -> Batch:
        return Batch(line=self.line, clock=self.clock)


class RecordingSource:
    """Batches of a recording after a cursor, each due by the clock (`speed` times faster than
    the recording; 0: no waiting). A batch ends at BATCH_LINES lines, before each wait, and
    every simulated minute of a wait (a clock-only batch: the site scheduler sees time pass).
    `stopped()` ends it after the batch in hand."""

    def __init__(self, path: Path, hashtags: set[str], speed: float, max_gap: timedelta,
                 stopped: Callable[[], bool], workers: int = 1) -> None:  # fmt: skip
        self.path, self.hashtags, self.workers = Path(path), hashtags, workers
        self.speed, self.max_gap, self.stopped = speed, max_gap, stopped
        self.handles: dict[str, str] = {}
        self.authors = KnownAuthors()  # enrichment: the recording's getProfiles answers
        self.clock: ReplayClock | None = None
        self.tick: Callable[[], None] = lambda: None  # called while waiting (progress lines)

    def batches(self, cursor: dict | None) -> Iterator[Batch]:
        cursor = cursor or {}
        batch = Batch(line=int(cursor.get("line", 0)), clock=_time(cursor.get("clock")))
        for outcome in self._outcomes(batch.line):
            if self.stopped():
                break
            kind, number = outcome[0], outcome[1]
            if kind == "bad":
                batch.malformed.append(_malformed(None, number, outcome[2], outcome[3]))
            elif kind != "header":
                if self._due_later(batch, outcome[2]):
                    yield batch
                    batch = batch.next()
                    yield from self._wait(batch, outcome[2])
                    if self.stopped():
                        return
                self._apply(batch, outcome)
            batch.line = number
            batch.lines += 1
            if batch.lines >= BATCH_LINES:
                yield batch
                batch = batch.next()
        yield batch

    def _outcomes(self, after: int) -> Iterator[tuple]:
        """What each line after `after` parses to, in order (see parse_line)."""
        lines = recording.read_lines(self.path, after)
        if self.workers <= 1:
            for line in lines:
                yield parse_line(line.number, line.text, self.hashtags, self.handles)
            return
        yield from parse_in_workers(lines, self.workers, self.hashtags, self.handles)

    def _apply(self, batch: Batch, outcome: tuple) -> None:
        kind, number, at, detail = outcome
        if kind == "skip":
            batch.skipped += 1
        elif kind == "error":
            data, reason = detail
            batch.malformed.append(_malformed(data, number, _dump(data), reason))
        else:
            batch.changes.extend(self.authors.apply(detail))
            batch.clock = max(filter(None, [batch.clock, at]))

    def _due_later(self, batch: Batch, at: datetime) -> bool:
        if self.clock is None:
            self.clock = ReplayClock(batch.clock or at, self.speed, self.max_gap)
        return self.clock.seconds_until(at) > 0

    def _wait(self, batch: Batch, at: datetime) -> Iterator[Batch]:
        """Sleep until the recording's `at` is due, a clock-only batch every simulated minute."""
        assert self.clock is not None
        minute = _minute(self.clock.now())
        while (wait := self.clock.seconds_until(at)) > 0:
            if self.stopped():
                return
            to_next_minute = (minute + timedelta(minutes=1) - self.clock.now()).total_seconds()
            to_next_minute = max(to_next_minute / self.speed, 0.0)
            time.sleep(min(wait, to_next_minute + 0.001, 0.2))
            now = self.clock.now()
            if _minute(now) > minute and now < at:
                minute = _minute(now)
                batch.clock = now
                yield Batch(line=batch.line, clock=now, clock_only=True)
            self.tick()


def _malformed(data, number: int, text: str, reason: str) -> Malformed:
    source = (data or {}).get("source", "replay")
    name = recording.identity(data, number)
    log.warning("Could not process %s:%s: %s", source, name, reason)
    return Malformed(f"{source}:{name}", reason, text)


def _time(value: str | None) -> datetime | None:
    return parse_time(value)


# -- parsing, in this process or in worker processes ------------------------------------------

CHUNK_LINES = 250  # lines per task sent to a worker process


def parse_line(number: int, text: str, hashtags: set[str], handles: dict[str, str]) -> tuple:
    """One recording line → an outcome tuple (kind, line number, …), pure but for `handles`:
    ("bad", n, text, reason): not a delivery (kept raw); ("header", n, None, None);
    ("ok", n, at, changes); ("skip", n, at, None); ("error", n, at, (data, reason))."""
    try:
        data = recording.load_line(recording.Line(number, text))
        if recording.is_header(data):
            return ("header", number, None, None)
        at = recording.line_time(data)  # a bad time is this line's fault: say so now
    except ParseError as exc:
        return ("bad", number, text, str(exc))
    try:
        delivery = recording.parse_delivery(data, number, hashtags, handles)
    except SkipItem:
        return ("skip", number, at, None)
    except (ParseError, KeyError, TypeError, ValueError, AttributeError) as exc:
        reason = str(exc) if isinstance(exc, ParseError) else f"{type(exc).__name__}: {exc}"
        return ("error", number, at, (data, reason))
    return ("ok", number, delivery.at, delivery.changes)


def parse_in_workers(
    lines: Iterable[recording.Line], workers: int, hashtags: set[str], handles: dict[str, str]
) -> Iterator[tuple]:
    """parse_line over `lines` in a pool of processes, yielded in line order. Bluesky identity
    events teach `handles` what later posts are named: they are read here too, in order, so
    each chunk starts from the handles the lines before it taught (as one process would)."""
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_worker_start, initargs=(os.getpid(),))  # fmt: skip
    ahead: deque[Future] = deque()
    try:
        for chunk in _chunks(lines, CHUNK_LINES):
            ahead.append(pool.submit(_parse_chunk, chunk, hashtags, dict(handles)))
            _learn_handles(chunk, hashtags, handles)
            if len(ahead) > workers * 2:
                yield from ahead.popleft().result()
        while ahead:
            yield from ahead.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _parse_chunk(chunk: list[tuple[int, str]], hashtags, handles) -> list[tuple]:
    return [parse_line(number, text, hashtags, handles) for number, text in chunk]


def _chunks(lines: Iterable[recording.Line], size: int) -> Iterator[list[tuple[int, str]]]:
    chunk: list[tuple[int, str]] = []
    for line in lines:
        chunk.append((line.number, line.text))
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _learn_handles(chunk: list[tuple[int, str]], hashtags, handles: dict[str, str]) -> None:
    """Parse the chunk's identity events, for what they teach `handles`. A line that does not
    say "identity" (or hide it behind a \\u escape) is not one."""
    for number, text in chunk:
        if "identity" in text or "\\u" in text:
            try:
                parse_line(number, text, hashtags, handles)
            except Exception:  # noqa: BLE001, S110 - the worker reports this line's failure
                pass


def _worker_start(parent: int) -> None:
    """Workers leave SIGINT and SIGTERM to the replay, which stops them between chunks, and
    exit on their own when the replay is gone (SIGKILLed, it cannot stop them)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()


def _exit_with(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _minute(value: datetime) -> datetime:
    return value.replace(second=0, microsecond=0)


def _dump(value) -> str:
    return json.dumps(value, ensure_ascii=False)
