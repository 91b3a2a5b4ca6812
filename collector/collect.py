"""Run every live source of the chosen events, each as its own asyncio task, until stopped.

Three rules, as in the replay runner: a batch and its cursor commit together before anything is
published (one lock per process, so the event's sequence reaches Redis in order); the stream is
re-seeded from the archive at start and whenever Redis comes back; a source that fails is logged,
marked failing and restarted after a backoff with jitter, never taking the others down. A
SourceError is a configuration problem: that source stays failing with its message.

Every few seconds (and at stop) each source's SourceState is written to the archive
(`source_state`, read by `python -m collector status` even with Redis down) and to the Redis hash
`core.tail.status_key(event)` (field = source key, value = JSON) for a dashboard.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import redis as redis_lib
import sqlite_utils

from core.archive import last_seq, load_cursor, open_archive, source_states
from core.errors import AfaError, SourceError
from core.events import Event
from core.items import format_time
from core.redisconn import connect, redact
from core.settings import Settings, secret
from core.tail import status_key

from .normalise import Change
from .publish import publish_after_commit, reseed_from_archive, stream_last_seq
from .runner import event_hashtags
from .sources import live_source
from .sources.base import Backoff, SourceContext, SourceRun, SourceState
from .store import Malformed, fresh_malformed, save_batch, tune_for_writing

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


@dataclass
class Collector:
    settings: Settings
    events: Sequence[Event]
    stop: asyncio.Event
    resolve: Callable[[str], SourceRun] = live_source
    environ: Mapping[str, str] | None = None
    options: Options = field(default_factory=Options)

    def __post_init__(self) -> None:
        self.lock = asyncio.Lock()
        # A caller cancelled at shutdown leaves self.lock while its worker thread still writes
        # through the one connection; this lock makes the next writer wait for that thread.
        self.db_lock = threading.Lock()
        self.sources: list[_Source] = []
        self.needs_reseed: set[str] = set()

    # -- lifecycle --------------------------------------------------------------------------

    async def run(self) -> dict[str, SourceState]:
        self.db = open_archive(self.settings.archive_path)
        tune_for_writing(self.db)
        self.redis = connect(self.settings.redis_url, socket_timeout=5, socket_connect_timeout=3)
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(30.0, connect=10.0), headers={"User-Agent": USER_AGENT}
        )
        try:
            await self._reseed_all(at_start=True)
            self._build()
            log.info("collecting %d sources for %s", len(self.sources),
                     ", ".join(e.slug for e in self.events) or "no events")  # fmt: skip
            for source in self.sources:
                source.task = asyncio.create_task(self._supervise(source), name=source.ctx.key)
            persister = asyncio.create_task(self._persist_loop())
            await self.stop.wait()
            await self._finish([s.task for s in self.sources if s.task])
            persister.cancel()
            await asyncio.gather(persister, return_exceptions=True)
            await self.persist()
        finally:
            await self.http.aclose()
            self.redis.close()
            with self.db_lock:
                self.db.close()
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
        return source

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
            with self.db_lock:
                return fn(*args)

        return await asyncio.to_thread(locked)

    def _saver(self, event: Event, key: str, source: _Source | None = None):
        async def save(
            changes: Iterable[Change], cursor: dict[str, Any] | None,
            malformed: Iterable[Malformed] = (),
        ) -> int:  # fmt: skip
            changes, malformed = list(changes), list(malformed)
            async with self.lock:
                committed, malformed = await self._in_thread(
                    self._commit, event.slug, key, changes, cursor, malformed
                )
            if source is not None:
                source.ctx.state.count(changes, malformed)
            return len(committed)

        return save

    def _commit(self, slug: str, key: str, changes, cursor, malformed) -> tuple[list, list]:
        """Save (under self.lock: the one writer) and publish; returns the committed changes
        and the malformed payloads kept for the first time."""
        malformed = fresh_malformed(self.db, slug, key, malformed)
        committed = save_batch(self.db, slug, changes, key, cursor, malformed)
        if committed:
            self._publish(slug, committed)
        return committed, malformed

    def _publish(self, slug: str, committed: list) -> None:
        try:
            if slug in self.needs_reseed:
                reseed_from_archive(self.redis, self.db, slug, self.settings.tail_length)
                self.needs_reseed.discard(slug)
            else:
                publish_after_commit(
                    self.redis, self.db, slug, committed, self.settings.tail_length
                )
        except redis_lib.RedisError as exc:
            # The archive holds the batch; the stream is re-seeded when Redis answers again.
            if slug not in self.needs_reseed:
                log.warning("Redis unavailable, will re-seed %s from the archive: %s", slug, exc)
            self.needs_reseed.add(slug)

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
            await self._in_thread(self._write_states, rows)
            if self.needs_reseed:
                await self._reseed_all()

    def _write_states(self, rows: list[tuple[str, str, dict]]) -> None:
        save_source_states(self.db, rows)
        try:
            pipe = self.redis.pipeline(transaction=False)
            for slug, key, state in rows:
                pipe.hset(status_key(slug), key, _json(state))
            pipe.execute()
            self._check_level()
        except redis_lib.RedisError as exc:
            log.debug("source states not written to Redis: %s", exc)

    def _check_level(self) -> None:
        """A stream behind the archive with no error seen: Redis failed over to a replica
        that had not received the last entries (replication is asynchronous), or lost them.
        Under the lock every commit is published, so any gap is one: re-seed it now rather
        than at the event's next post."""
        for event in self.events:
            if event.slug not in self.needs_reseed and (
                stream_last_seq(self.redis, event.slug) < last_seq(self.db, event.slug)
            ):
                log.warning("stream of %s is behind the archive: re-seeding it", event.slug)
                self.needs_reseed.add(event.slug)

    async def _reseed_all(self, at_start: bool = False) -> None:
        slugs = [e.slug for e in self.events] if at_start else sorted(self.needs_reseed)
        for slug in slugs:
            try:
                await self._in_thread(
                    reseed_from_archive, self.redis, self.db, slug, self.settings.tail_length
                )
                self.needs_reseed.discard(slug)
            except redis_lib.RedisError as exc:
                if at_start:
                    raise AfaError(
                        f"cannot reach Redis at {redact(self.settings.redis_url)}: {exc}"
                    ) from exc
                self.needs_reseed.add(slug)


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
