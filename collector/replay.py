"""Run a replay: the recording as a source (sources/replayed.py: deliveries in order, paced by a
simulated clock), each of its batches committed through the pipeline, progress reported.

The pipeline is the live collector's (pipeline.py): a batch and its cursor commit together,
what changed is published after the commit, the stream is re-seeded when Redis is back (and
always at start). A stop signal finishes the batch in hand and exits cleanly; a replay that
ends with Redis away keeps re-seeding for a while (HEAL_SECONDS).
"""

from __future__ import annotations

import logging
import signal
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from core.archive import load_cursor
from core.events import Event
from core.settings import Settings

from .normalise import event_hashtags
from .pipeline import Pipeline
from .sources.replayed import Batch, RecordingSource
from .store import Checkpointer

log = logging.getLogger("collector")
PROGRESS_SECONDS = 5.0
HEAL_SECONDS = 60.0  # how long a replay that ends with Redis away keeps trying to re-seed


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


class Replay:
    def __init__(self, settings: Settings, event: Event, path: Path, speed: float,
                 max_gap_minutes: float, stopper: Stopper | None = None,
                 workers: int = 1) -> None:  # fmt: skip
        self.settings, self.slug = settings, event.slug
        self.source_key = f"replay:{Path(path).name}"
        self.stopper = stopper or Stopper()
        self.source = RecordingSource(
            path, event_hashtags(event), speed, timedelta(minutes=max_gap_minutes),
            lambda: self.stopper.stopped, workers=workers,
        )  # fmt: skip
        self.source.tick = self._maybe_progress
        self.stats = Stats()
        self.clock_text: str | None = None
        self.last_progress = time.monotonic()

    def run(self) -> Stats:
        self.pipeline = Pipeline.open(self.settings)
        try:
            self.pipeline.reseed([self.slug], required=True)
            cursor = load_cursor(self.pipeline.db, self.slug, self.source_key)
            self.clock_text = (cursor or {}).get("clock")
            with Checkpointer(self.pipeline.db, self.settings.archive_path):
                for batch in self.source.batches(cursor):
                    self.commit(batch)
                    self._maybe_progress()
            self._heal()
            self._progress("done" if not self.stopper.stopped else "stopped")
        finally:
            self.pipeline.close()
        return self.stats

    def commit(self, batch: Batch) -> None:
        """One batch and its cursor through the pipeline; a clock-only one moves the cursor."""
        if batch.empty() and not batch.clock_only:
            return
        cursor = batch.cursor
        done = self.pipeline.commit(self.slug, self.source_key, batch.changes, cursor,
                                    batch.malformed, keep_once=False)  # fmt: skip
        self.clock_text = cursor["clock"]
        if batch.clock_only:
            return
        self.stats.lines += batch.lines
        self.stats.changes += len(done.changes)
        self.stats.posts += sum(1 for c in done.changes if c.kind == "post")
        self.stats.malformed += len(batch.malformed)
        self.stats.skipped += batch.skipped
        self.pipeline.publish_states([(self.slug, self.source_key, cursor)])

    def _heal(self) -> None:
        """The last publish failed (Redis away, or failing over to a replica): keep trying to
        bring the stream level with the archive for a while, so the replay does not end with
        the live tail short of what it committed."""
        delay, deadline = 0.2, time.monotonic() + HEAL_SECONDS
        while (
            self.pipeline.needs_reseed and not self.stopper.stopped and time.monotonic() < deadline
        ):
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
            self.pipeline.heal()
            if not self.pipeline.needs_reseed:
                log.info("Redis answers again: stream %s re-seeded from the archive", self.slug)

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
            self.clock_text or "-",
        )  # fmt: skip
