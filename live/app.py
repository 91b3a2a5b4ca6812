"""The live sidecar's Starlette app: one stream route per event, health and stats.

`create_app(settings)` reads the event slugs from content/ once; the lifespan opens one Redis
connection pool and the fan-out (readers start on an event's first client, see fanout.py) and
closes both on shutdown.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any, TypedDict

import anyio
import redis.asyncio as aredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from sse_starlette import EventSourceResponse
from sse_starlette.sse import SendTimeoutError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from core.events import load_events
from core.settings import Settings
from core.tail import seq_of

from .fanout import BLOCK_MS, Fanout, Feed, Subscriber, catch_up, follow
from .sse import SEP, ping_event

log = logging.getLogger("live.app")
RETRY_AFTER_SECONDS = 5


class State(TypedDict):
    settings: Settings
    redis: aredis.Redis
    fanout: Fanout


class LiveResponse(EventSourceResponse):
    """An EventSourceResponse that ends as soon as its subscriber is dropped as slow, and treats
    a timed-out send as the same thing rather than as a server error."""

    def __init__(self, feed: Feed, subscriber: Subscriber, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.feed, self.subscriber = feed, subscriber

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        stats = self.feed.stats
        stats.connections += 1
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._end_when_dropped, group.cancel_scope)
                await super().__call__(scope, receive, send)
                group.cancel_scope.cancel()
        except* SendTimeoutError:
            if not self.subscriber.dropped.is_set():
                stats.slow_dropped += 1
        finally:
            stats.connections -= 1
            self.feed.unsubscribe(self.subscriber)  # also when the body never ran (HEAD)

    async def _end_when_dropped(self, scope: anyio.CancelScope) -> None:
        await self.subscriber.dropped.wait()
        scope.cancel()


def redis_client(url: str) -> aredis.Redis:
    """One pool for the process; a failed command is retried once, the reader backs off itself."""
    return aredis.Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=2,
        socket_timeout=BLOCK_MS / 1000 + 5,
        retry=Retry(NoBackoff(), 1),
    )


def parse_cursor(request: Request) -> int | None:
    """The resume point: Last-Event-ID (a reconnecting EventSource), else ?after=, else None."""
    raw = request.headers.get("last-event-id") or request.query_params.get("after")
    if raw is None or raw.strip() == "":
        return None
    seq = seq_of(raw.strip())
    if seq < 0:
        raise ValueError(raw)
    return seq


def too_busy(message: str) -> JSONResponse:
    return JSONResponse(
        {"error": message}, status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
    )


async def stream(request: Request) -> Response:
    settings: Settings = request.state.settings
    fanout: Fanout = request.state.fanout
    event = request.path_params["event"]
    if event not in fanout.events:
        return JSONResponse({"error": f"no event {event!r}"}, status_code=404)
    try:
        after = parse_cursor(request)
    except ValueError:
        return JSONResponse({"error": "Last-Event-ID / after must be a sequence number"}, 400)
    if fanout.clients >= settings.live_max_clients:
        fanout.stats.rejected += 1
        return too_busy("this live server is full; try again shortly")
    feed = fanout.feed(event)
    try:
        subscriber = await feed.subscribe()
    except RedisError as exc:
        log.warning("cannot subscribe to %s: %s", event, exc)
        return too_busy("the live tail is unavailable; try again shortly")
    try:
        start = await catch_up(feed, after, settings.catchup_limit)
    except RedisError as exc:
        feed.unsubscribe(subscriber)
        log.warning("cannot catch up on %s: %s", event, exc)
        return too_busy("the live tail is unavailable; try again shortly")
    return LiveResponse(
        feed,
        subscriber,
        content=follow(feed, subscriber, start, settings.catchup_limit),
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        ping=settings.heartbeat_seconds,
        ping_message_factory=ping_event,
        send_timeout=settings.live_send_timeout,
        sep=SEP,
    )


async def healthz(request: Request) -> JSONResponse:
    redis: aredis.Redis = request.state.redis
    try:
        ok = bool(await redis.ping())
    except (RedisError, OSError):
        ok = False
    return JSONResponse({"status": "ok", "redis": ok})


async def stats(request: Request) -> JSONResponse:
    fanout: Fanout = request.state.fanout
    return JSONResponse(fanout.snapshot())


def create_app(settings: Settings) -> Starlette:
    """The sidecar for every event in settings.content_dir (ContentErrors if content is broken)."""
    events = {event.slug for event in load_events(settings.content_dir)}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[State]:
        redis = redis_client(settings.redis_url)
        fanout = Fanout(redis, events, settings.live_queue_size, settings.catchup_limit)
        try:
            yield {"settings": settings, "redis": redis, "fanout": fanout}
        finally:
            await fanout.stop()
            await redis.aclose()

    cors = Middleware(
        CORSMiddleware,
        allow_origins=[settings.site_origin],
        allow_methods=["GET"],
        allow_headers=["Last-Event-ID", "Cache-Control"],
    )
    routes = [
        Route("/live/{event}/stream", stream),
        Route("/healthz", healthz),
        Route("/stats", stats),
    ]
    return Starlette(routes=routes, middleware=[cors], lifespan=lifespan)
