"""Run every live source of the chosen events, each as its own asyncio task, until stopped.

Every batch a source hands to `ctx.save` goes through the one pipeline step (pipeline.py:
commit, publish, heal), one batch at a time in this process, so the event's sequence reaches
Redis in order. A source that fails is logged, marked failing and restarted after a backoff with
jitter, never taking the others down. A SourceError is a configuration problem: that source
stays failing with its message.

Every few seconds (and at stop) each source's SourceState is written to the archive
(`source_state`, read by `python -m collector status` even with Redis down) and to the Redis hash
`core.tail.status_key(event)` (field = source key, value = JSON) for a dashboard.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import sqlite_utils

from core.archive import load_cursor, source_states
from core.errors import SourceError
from core.events import Event
from core.items import format_time
from core.settings import Settings, secret

from .enrich import Enrichment
from .enrich.counts import Refresher, archived_posts
from .enrich.hydrate import Hydrator
from .enrich.refresh import run_schedule
from .normalise import Change, event_hashtags
from .pipeline import Committed, Pipeline
from .sources import live_source
from .sources.base import Backoff, SourceContext, SourceRun, SourceState
from .sources.recording import Recorder
from .store import Malformed

log = logging.getLogger("collector")
USER_AGENT = "AFeedApart/0.1 (conference archive; +https://github.com/afeedapart)"


@dataclass(frozen=True)
class Options:
    status_seconds: float = 2.0  # how often every SourceState is persisted
    stop_grace: float = 5.0  # how long sources get to finish after stop before being cancelled
    restart_base: float = 1.0  # backoff before restarting a crashed source: base, doubling …
    restart_cap: float = 120.0  # … up to this
    healthy_seconds: float = 60.0  # a source that ran this long before failing restarts fast
    source_backoff: tuple[float, float] = (1.0, 300.0)  # ctx.backoff: base and cap, seconds
    refresh_counts: bool = True  # refresh reaction counts as sessions end (enrich/refresh.py)
    refresh_catch_up: float = 120.0  # refreshes missed while stopped wait this long after start


def source_key(config: Mapping[str, Any], event: Event) -> str:
    """A source's name in status tables and its cursor's key: `flickr:northwind26`."""
    if config.get("key"):
        return str(config["key"])
    kind = str(config.get("type") or "?")
    if kind == "feed":
        return f"feed:{config.get('url', '?')}"
    tags = config.get("hashtags") or config.get("tags") or event.hashtags
    tags = "+".join(str(t).lstrip("#").casefold() for t in tags)
    if kind == "mastodon":
        host = urlsplit(str(config.get("instance", ""))).hostname or str(config.get("instance"))
        return f"mastodon:{host}:{tags}"
    return f"{kind}:{tags}"


@dataclass
class _Source:
    event: Event
    config: dict[str, Any]
    ctx: SourceContext
    task: asyncio.Task | None = None
    hydrator: Hydrator | None = None  # enrichment before each commit (Bluesky authors)


@dataclass
class Collector:
    settings: Settings
    events: Sequence[Event]
    stop: asyncio.Event
    resolve: Callable[[str], SourceRun] = live_source
    environ: Mapping[str, str] | None = None
    options: Options = field(default_factory=Options)
    record: Path | None = None  # write every delivery to this afa-recording/1 file

    def __post_init__(self) -> None:
        # One batch at a time, in order. A caller cancelled at shutdown leaves this lock while
        # its worker thread still writes; the pipeline's own lock makes the next one wait.
        self.lock = asyncio.Lock()
        self.sources: list[_Source] = []

    # -- lifecycle --------------------------------------------------------------------------

    async def run(self) -> dict[str, SourceState]:
        self.pipeline = Pipeline.open(self.settings)
        self.db = self.pipeline.db
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(30.0, connect=10.0), headers={"User-Agent": USER_AGENT}
        )
        self.enrichment = Enrichment(self.http, self.stop)
        self.recorder = self._recorder()
        try:
            await asyncio.to_thread(
                self.pipeline.reseed, [e.slug for e in self.events], required=True
            )
            self._build()
            log.info("collecting %d sources for %s", len(self.sources),
                     ", ".join(e.slug for e in self.events) or "no events")  # fmt: skip
            for source in self.sources:
                source.task = asyncio.create_task(self._supervise(source), name=source.ctx.key)
            persister = asyncio.create_task(self._persist_loop())
            refreshes = [asyncio.create_task(self._refresh_loop(e)) for e in self.events
                         if self.options.refresh_counts]  # fmt: skip
            await self.stop.wait()
            await self._finish([s.task for s in self.sources if s.task] + refreshes)
            persister.cancel()
            await asyncio.gather(persister, return_exceptions=True)
            await self.persist()
        finally:
            await self.enrichment.close()
            await self.http.aclose()
            self.pipeline.close()
            if self.recorder is not None:
                self.recorder.close()
        return {s.ctx.key: s.ctx.state for s in self.sources}

    async def _finish(self, tasks: list[asyncio.Task]) -> None:
        if not tasks:
            return
        _done, pending = await asyncio.wait(tasks, timeout=self.options.stop_grace)
        for task in pending:
            log.warning("source %s did not stop within %.0f s: cancelled",
                        task.get_name(), self.options.stop_grace)  # fmt: skip
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _build(self) -> None:
        for event in self.events:
            previous = {key: state for _e, key, state, _u in source_states(self.db, event.slug)}
            keys: set[str] = set()
            for config in event.sources:
                key = source_key(config, event)
                while key in keys:
                    key += "+"
                keys.add(key)
                self.sources.append(self._source(event, dict(config), key, previous.get(key)))

    def _source(self, event: Event, config: dict, key: str, previous: dict | None) -> _Source:
        backoff = _backoff(config.pop("backoff_seconds", None), self.options.source_backoff)
        ctx = SourceContext(
            event=event, key=key, config=config, settings=self.settings,
            hashtags=event_hashtags(event), cursor=load_cursor(self.db, event.slug, key),
            save=self._saver(event, key), http=self.http,  # replaced below, to count
            secrets=lambda name: secret(name, self.environ),
            state=_restore(previous), stopping=self.stop,
            backoff=backoff,
        )  # fmt: skip
        source = _Source(event, config, ctx)
        ctx.save = self._saver(event, key, source)
        source.hydrator = self.enrichment.hydrator(config, self._late(event))
        ctx.archived = self._archived(event, str(config.get("type") or ""))
        if self.recorder is not None:
            ctx.recorded = []
        return source

    def _recorder(self) -> Recorder | None:
        if self.record is None:
            return None
        if len(self.events) != 1:
            raise SourceError("collector", str(self.record), "--record takes exactly one event")
        return Recorder(self.record, self.events[0].slug)

    # -- one source -------------------------------------------------------------------------

    async def _supervise(self, source: _Source) -> None:
        ctx = source.ctx
        restart = Backoff(self.options.restart_base, self.options.restart_cap)
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                run = self.resolve(str(source.config.get("type") or ""))
                await run(ctx)
                if self.stop.is_set():
                    break
                raise RuntimeError("source returned before the collector stopped")
            except SourceError as exc:
                log.error("source %s failed: %s", ctx.key, exc)
                ctx.state.error(str(exc))
                ctx.state.set("failing")
                return  # a configuration problem: retrying cannot fix it
            except Exception as exc:  # noqa: BLE001 - one source's bug must not stop the others
                log.error("source %s failed: %s: %s", ctx.key, type(exc).__name__, exc)
                ctx.state.error(exc)
                ctx.state.set("failing")
            if time.monotonic() - started >= self.options.healthy_seconds:
                restart.reset()
            await self._wait_restart(ctx, restart.next_delay())
        ctx.state.set("stopped")

    async def _wait_restart(self, ctx: SourceContext, delay: float) -> None:
        down = time.monotonic()
        awake = await ctx.sleep(delay)
        ctx.state.disconnected_seconds += time.monotonic() - down
        if awake:  # resume exactly where the archive ends, whatever the crash left in memory
            async with self.lock:
                ctx.cursor = await self._in_thread(load_cursor, self.db, ctx.event.slug, ctx.key)

    async def _in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        def locked() -> Any:
            with self.pipeline.lock:
                return fn(*args)

        return await asyncio.to_thread(locked)

    def _saver(self, event: Event, key: str, source: _Source | None = None):
        async def save(
            changes: Iterable[Change], cursor: dict[str, Any] | None,
            malformed: Iterable[Malformed] = (),
        ) -> int:  # fmt: skip
            changes = list(changes)
            hydrator = source.hydrator if source is not None else None
            if hydrator is not None:
                changes = await hydrator.enrich(changes)  # at most its bound
            async with self.lock:
                lines = []
                if hydrator is not None:
                    changes = hydrator.apply_cached(changes)
                    lines = hydrator.take_answers()  # the answers this batch used come first
                if source is not None and source.ctx.recorded:
                    lines, source.ctx.recorded = lines + source.ctx.recorded, []
                done = await asyncio.to_thread(
                    self._commit, event.slug, key, changes, cursor, malformed, lines
                )
            if source is not None:
                source.ctx.state.count(changes, done.malformed)
            return len(done.changes)

        return save

    def _late(self, event: Event):
        """What enrichment learned after the posts it concerns went out (a late profile, a
        count refresh): committed on its own, no cursor."""

        async def late(changes: list[Change], lines: list[dict[str, Any]]) -> None:
            async with self.lock:
                await asyncio.to_thread(
                    self._commit, event.slug, "enrich", changes, None, (), lines
                )

        return late

    def _archived(self, event: Event, kind: str):
        async def archived(since: datetime, until: datetime) -> list[str]:
            posts = await self._in_thread(archived_posts, self.db, event.slug, since, until)
            return [p.uri for p in posts if p.source == kind]

        return archived

    async def _refresh_loop(self, event: Event) -> None:
        refresher = Refresher(self.http, event, lambda name: secret(name, self.environ),
                              self.enrichment.appview, self.stop)  # fmt: skip

        async def read(fn: Callable[..., Any], *args: Any) -> Any:
            return await self._in_thread(fn, self.db, *args)

        await run_schedule(refresher, read, self._late(event), event, self.stop,
                           self.options.refresh_catch_up)  # fmt: skip

    def _commit(self, slug, key, changes, cursor, malformed, lines) -> Committed:
        """Record the deliveries (when recording), then the pipeline step."""
        if self.recorder is not None and lines:
            self.recorder.write(self._worth_recording(slug, lines))
        return self.pipeline.commit(slug, key, changes, cursor, malformed)

    def _worth_recording(self, slug: str, lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Jetstream sends every delete on the network: only those of archived posts are kept."""
        uris = [line["deletes"] for line in lines if "deletes" in line]
        if uris:
            with self.pipeline.lock:
                marks = ",".join("?" * len(uris))
                found = {r[0] for r in self.db.execute(
                    f"SELECT uri FROM items WHERE event = ? AND uri IN ({marks})", [slug, *uris]
                )}  # fmt: skip
            lines = [
                line for line in lines if line.get("deletes", "") in found or "deletes" not in line
            ]
        return [{k: v for k, v in line.items() if k != "deletes"} for line in lines]

    # -- state --------------------------------------------------------------------------------

    async def _persist_loop(self) -> None:
        while not self.stop.is_set():
            try:
                await asyncio.wait_for(self.stop.wait(), timeout=self.options.status_seconds)
            except TimeoutError:
                pass
            await self.persist()

    async def persist(self) -> None:
        """Write every source's state to the archive and to Redis; retry a pending reseed."""
        rows = [(s.event.slug, s.ctx.key, s.ctx.state.as_dict()) for s in self.sources]
        async with self.lock:
            await self._in_thread(save_source_states, self.db, rows)
            await asyncio.to_thread(self.pipeline.publish_states, rows)
            await asyncio.to_thread(self.pipeline.check_level, [e.slug for e in self.events])
            await asyncio.to_thread(self.pipeline.heal)


def save_source_states(db: sqlite_utils.Database, rows: Iterable[tuple[str, str, dict]]) -> None:
    now = format_time(datetime.now(UTC))
    with db.atomic():
        for slug, key, state in rows:
            db.execute(
                "INSERT INTO source_state (event, source_key, state, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (event, source_key) DO UPDATE SET "
                "state = excluded.state, updated_at = excluded.updated_at",
                [slug, key, _json(state), now],
            )


def _backoff(configured: Any, default: tuple[float, float]) -> Backoff:
    """`backoff_seconds: [base, cap]` in a source's entry overrides the collector's default."""
    if configured is None:
        return Backoff(*default)
    try:
        base, cap = (float(v) for v in configured)
    except (TypeError, ValueError):
        raise SourceError(
            "collector", "event.yaml", "backoff_seconds must be [base, cap]"
        ) from None
    return Backoff(base, cap)


def _restore(previous: dict | None) -> SourceState:
    """The counters of an earlier run carry on, so a report covers every run of the collector."""
    state = SourceState()
    names = {f.name for f in dataclasses.fields(SourceState)} - {"state", "since"}
    for name in names & set(previous or {}):
        setattr(state, name, previous[name])
    return state


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


async def collect(
    settings: Settings, events: Sequence[Event], stop: asyncio.Event, **kwargs: Any
) -> dict[str, SourceState]:
    """Run every source of `events` until `stop` is set; returns each source's final state."""
    return await Collector(settings, events, stop, **kwargs).run()
