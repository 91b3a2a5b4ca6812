"""Run a replay: read the recording on a simulated clock, save batches, publish, report.

One loop, three rules: a batch and its cursor commit together before anything is published; a
stop signal finishes the current batch and exits cleanly; the stream is re-seeded from the
archive at start, so a crash between commit and publish (or a Redis that lost its data) is
repaired on restart with the same IDs.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import redis as redis_lib

from core.archive import load_cursor, open_archive
from core.errors import AfaError, ParseError
from core.events import Event
from core.items import format_time, parse_time
from core.redisconn import connect, redact
from core.settings import Settings
from core.tail import status_key

from .normalise import SkipItem
from .publish import publish_after_commit, reseed_from_archive
from .sources import replay as recording
from .store import Checkpointer, Malformed, save_batch, save_cursor, tune_for_writing

log = logging.getLogger("collector")
BATCH_LINES = 2_000
PROGRESS_SECONDS = 5.0
HEAL_SECONDS = 60.0  # how long a replay that ends with Redis away keeps trying to re-seed


def event_hashtags(event: Event) -> set[str]:
    """Every hashtag that makes a post the event's: the event's, the rooms' and the talks'."""
    tags = set(event.hashtags) | {r.hashtag for r in event.rooms if r.hashtag}
    tags |= {p.hashtag for p in event.presentations if p.hashtag}
    return {t.lstrip("#").casefold() for t in tags}


class Stopper:
    """SIGTERM/SIGINT ask the loop to stop after the batch in hand; a second signal too."""

    def __init__(self) -> None:
        self.stopped = False

    def install(self) -> Stopper:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self.stop)
        return self

    def stop(self, *_args) -> None:
        self.stopped = True


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
class Stats:
    lines: int = 0
    posts: int = 0
    changes: int = 0
    malformed: int = 0
    skipped: int = 0
    started: float = field(default_factory=time.monotonic)

    def rate(self) -> float:
        return self.posts / max(time.monotonic() - self.started, 1e-6)


@dataclass
class _Pending:
    """Lines read but not yet committed."""

    changes: list = field(default_factory=list)
    malformed: list[Malformed] = field(default_factory=list)
    last_line: int = 0
    lines: int = 0
    clock: datetime | None = None


class Replay:
    def __init__(self, settings: Settings, event: Event, path: Path, speed: float,
                 max_gap_minutes: float, stopper: Stopper | None = None,
                 workers: int = 1) -> None:  # fmt: skip
        self.settings, self.event, self.path = settings, event, Path(path)
        self.workers = workers  # > 1: lines parsed ahead in that many processes
        self.slug, self.source_key = event.slug, f"replay:{self.path.name}"
        self.speed, self.max_gap = speed, timedelta(minutes=max_gap_minutes)
        self.stopper = stopper or Stopper()
        self.hashtags, self.handles = event_hashtags(event), {}
        self.stats, self.pending = Stats(), _Pending()
        self.clock: ReplayClock | None = None
        self.last_progress = time.monotonic()
        self.behind = False  # a publish failed: the stream lacks committed changes

    def run(self) -> Stats:
        self.db = open_archive(self.settings.archive_path)
        tune_for_writing(self.db)
        self.redis = connect(self.settings.redis_url, socket_timeout=5, socket_connect_timeout=3)
        try:
            self._reseed()
            cursor = load_cursor(self.db, self.slug, self.source_key) or {}
            self.pending.last_line = int(cursor.get("line", 0))
            self.pending.clock = parse_time(cursor.get("clock"))
            with Checkpointer(self.db, self.settings.archive_path):
                self._read(self.pending.last_line)
                self.flush()
            self._heal()
            self._progress("done" if not self.stopper.stopped else "stopped")
        finally:
            self.redis.close()
            self.db.close()
        return self.stats

    def _reseed(self) -> None:
        try:
            reseed_from_archive(self.redis, self.db, self.slug, self.settings.tail_length)
        except redis_lib.ConnectionError as exc:
            raise AfaError(
                f"cannot reach Redis at {redact(self.settings.redis_url)}: {exc}"
            ) from exc

    def _heal(self) -> None:
        """The last publish failed (Redis away, or failing over to a replica): keep trying to
        bring the stream level with the archive for a while, so the replay does not end with
        the live tail short of what it committed."""
        delay, deadline = 0.2, time.monotonic() + HEAL_SECONDS
        while self.behind and not self.stopper.stopped and time.monotonic() < deadline:
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
            try:
                reseed_from_archive(self.redis, self.db, self.slug, self.settings.tail_length)
                self.behind = False
                log.info("Redis answers again: stream %s re-seeded from the archive", self.slug)
            except redis_lib.RedisError as exc:
                log.debug("re-seed failed, retrying: %s", exc)

    def _read(self, after: int) -> None:
        for outcome in self._outcomes(after):
            if self.stopper.stopped:
                return
            kind, number = outcome[0], outcome[1]
            if kind == "bad":
                self._malformed(None, recording.Line(number, outcome[2]), outcome[3])
            elif kind != "header":
                if not self._wait_for(outcome[2]):
                    return
                self._apply(outcome)
            self.pending.last_line = number
            self.pending.lines += 1
            if self.pending.lines >= BATCH_LINES:
                self.flush()
            self._maybe_progress()

    def _outcomes(self, after: int) -> Iterator[tuple]:
        """What each line after `after` parses to, in order (see parse_line)."""
        lines = recording.read_lines(self.path, after)
        if self.workers <= 1:
            for line in lines:
                yield parse_line(line.number, line.text, self.hashtags, self.handles)
            return
        yield from parse_in_workers(lines, self.workers, self.hashtags, self.handles)

    def _apply(self, outcome: tuple) -> None:
        kind, number, at, detail = outcome
        if kind == "skip":
            self.stats.skipped += 1
        elif kind == "error":
            data, reason = detail
            self._malformed(data, recording.Line(number, ""), reason, raw=data)
        else:
            self.pending.changes.extend(detail)
            self.pending.clock = max(filter(None, [self.pending.clock, at]))

    def _malformed(self, data, line: recording.Line, reason: str, raw=None) -> None:
        source = (data or {}).get("source", "replay")
        name = recording.identity(data, line.number)
        log.warning("Could not process %s:%s: %s", source, name, reason)
        text = line.text if raw is None else _dump(raw)
        self.pending.malformed.append(Malformed(f"{source}:{name}", reason, text))
        self.stats.malformed += 1

    def _wait_for(self, at: datetime) -> bool:
        """Sleep until the recording's `at` is due; commit what is pending first. Saves a
        clock-only cursor every simulated minute, so the site scheduler sees time pass."""
        if self.clock is None:
            self.clock = ReplayClock(self.pending.clock or at, self.speed, self.max_gap)
        if self.clock.seconds_until(at) <= 0:
            return True
        self.flush()
        minute = _minute(self.clock.now())
        while (wait := self.clock.seconds_until(at)) > 0:
            if self.stopper.stopped:
                return False
            to_next_minute = (minute + timedelta(minutes=1) - self.clock.now()).total_seconds()
            to_next_minute = max(to_next_minute / self.speed, 0.0)
            time.sleep(min(wait, to_next_minute + 0.001, 0.2))
            now = self.clock.now()
            if _minute(now) > minute and now < at:
                minute = _minute(now)
                self._save_clock(now)
            self._maybe_progress()
        return True

    def _save_clock(self, now: datetime) -> None:
        self.pending.clock = now
        cursor = self._cursor()
        with self.db.atomic():
            save_cursor(self.db, self.slug, self.source_key, cursor)

    def _cursor(self) -> dict:
        return {"line": self.pending.last_line, "clock": format_time(self.pending.clock)}

    def flush(self) -> None:
        """Commit the pending lines with their cursor, then publish what changed."""
        pending = self.pending
        if not pending.lines and not pending.changes and not pending.malformed:
            return
        committed = save_batch(self.db, self.slug, pending.changes, self.source_key,
                               self._cursor(), pending.malformed)  # fmt: skip
        self.stats.lines += pending.lines
        self.stats.changes += len(committed)
        self.stats.posts += sum(1 for c in committed if c.kind == "post")
        self.pending = _Pending(last_line=pending.last_line, clock=pending.clock)
        self._publish(committed)

    def _publish(self, committed) -> None:
        try:
            publish_after_commit(
                self.redis, self.db, self.slug, committed, self.settings.tail_length
            )
            self.redis.hset(status_key(self.slug), self.source_key, _dump(self._cursor()))
            self.behind = False
        except redis_lib.RedisError as exc:
            # The archive holds the batch; the next publish (or _heal, or a restart) re-seeds
            # the gap, whichever server is the primary by then.
            if not self.behind:
                log.warning("Redis unavailable, will re-seed from the archive: %s", exc)
            self.behind = True

    def _maybe_progress(self) -> None:
        if time.monotonic() - self.last_progress >= PROGRESS_SECONDS:
            self._progress("progress")

    def _progress(self, what: str) -> None:
        self.last_progress = time.monotonic()
        s = self.stats
        log.info(
            "replay %s %s: %d lines, %d posts archived, %d changes, %.1f posts/s, "
            "%d malformed, %d skipped, clock %s",
            self.slug, what, s.lines, s.posts, s.changes, s.rate(), s.malformed, s.skipped,
            format_time(self.pending.clock) or "-",
        )  # fmt: skip


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
    import json

    return json.dumps(value, ensure_ascii=False)
