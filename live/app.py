"""The live sidecar's Starlette app: one stream route per event, health, stats and metrics.

`create_app(settings)` reads the event slugs from content/ once; the lifespan opens one Redis
connection pool and the fan-out (readers start on an event's first client, see fanout.py) and
closes both on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import threading
from collections.abc import AsyncIterator, Callable
from types import FrameType
from typing import Any, TypedDict

import redis.asyncio as aredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from core.events import load_events
from core.redisconn import connect_async
from core.settings import Settings, load_settings
from core.tail import seq_of

from .census import Census, sidecar_group
from .fanout import BLOCK_MS, Fanout, Feed, catch_up
from .metrics import CONTENT_TYPE, prometheus_text
from .response import LiveResponse

log = logging.getLogger("live.app")
RETRY_AFTER_SECONDS = 5


class State(TypedDict):
    settings: Settings
    redis: aredis.Redis
    fanout: Fanout
    census: Census


def redis_client(url: str) -> aredis.Redis:
    """One pool for the process; a failed command is retried once, the reader backs off itself."""
    return connect_async(
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


def too_many_from(address: str, limit: int) -> JSONResponse:
    message = (
        f"too many live connections from {address} (at most {limit}); "
        "close other live pages or try again shortly"
    )
    return JSONResponse(
        {"error": message}, status_code=429, headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
    )


class StreamApp:
    """GET and HEAD /live/EVENT/stream straight from the ASGI scope, everything else to
    Starlette. A stream's every write then goes to the server's `send` directly, not through
    three middleware wrappers, and CORS is two header lines added here (preflights still go
    to Starlette's CORSMiddleware)."""

    def __init__(self, app: Starlette) -> None:
        self.app = app

    @property
    def state(self) -> Any:
        return self.app.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        event = stream_event(scope)
        if event is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        response = await stream_for(request, event)
        cors = cors_headers(request.state.settings.site_origin, request.headers.get("origin"))
        if isinstance(response, LiveResponse):
            response.headers = [*response.headers, *cors]
        else:
            response.raw_headers += cors
        await response(scope, receive, send)


def stream_event(scope: Scope) -> str | None:
    """The EVENT of a GET or HEAD /live/EVENT/stream, else None."""
    if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
        return None
    path: str = scope["path"]
    if not (path.startswith("/live/") and path.endswith("/stream")):
        return None
    event = path[len("/live/") : -len("/stream")]
    return event if event and "/" not in event else None


def cors_headers(allowed: str, origin: str | None) -> list[tuple[bytes, bytes]]:
    """What Starlette's CORSMiddleware adds to a simple request's response."""
    if allowed == "*":
        return [(b"access-control-allow-origin", b"*")]
    if origin == allowed:
        return [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin")]
    return [(b"vary", b"Origin")]


async def stream(request: Request) -> Response | LiveResponse:
    return await stream_for(request, request.path_params["event"])


async def stream_for(request: Request, event: str) -> Response | LiveResponse:
    settings: Settings = request.state.settings
    fanout: Fanout = request.state.fanout
    if event not in fanout.events:
        return JSONResponse({"error": f"no event {event!r}"}, status_code=404)
    try:
        after = parse_cursor(request)
    except ValueError:
        return JSONResponse({"error": "Last-Event-ID / after must be a sequence number"}, 400)
    if fanout.closing:
        return too_busy("this live server is shutting down; try again shortly")
    # Both limits count streams from enter() on, before any await: a burst on an idle reader
    # (whose subscribe() awaits Redis) cannot slip past them while the first ones subscribe.
    if fanout.admitted >= settings.live_max_clients:
        fanout.stats.rejected += 1
        return too_busy("this live server is full; try again shortly")
    address = request.client.host if request.client else ""
    per_address = settings.live_max_per_address
    fanout.enter(address)
    try:
        if per_address and not await request.state.census.admit(address, per_address):
            fanout.stats.rejected_per_address += 1  # admit() has given the place back
            return too_many_from(address, per_address)
        return await open_stream(fanout, fanout.feed(event), after, settings, address)
    except BaseException:
        fanout.leave(address)
        raise


async def open_stream(
    fanout: Fanout, feed: Feed, after: int | None, settings: Settings, address: str
) -> Response | LiveResponse:
    try:
        subscriber = await feed.subscribe()
    except RedisError as exc:
        log.warning("cannot subscribe to %s: %s", feed.event, exc)
        fanout.leave(address)
        return too_busy("the live tail is unavailable; try again shortly")
    try:
        start = await catch_up(feed, after, settings.catchup_limit)
    except RedisError as exc:
        feed.unsubscribe(subscriber)
        fanout.leave(address)
        log.warning("cannot catch up on %s: %s", feed.event, exc)
        return too_busy("the live tail is unavailable; try again shortly")
    return LiveResponse(fanout, feed, subscriber, start, settings.catchup_limit, address)


async def redis_up(redis: aredis.Redis) -> bool:
    try:
        return bool(await redis.ping())
    except (RedisError, OSError):
        return False


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok", "redis": await redis_up(request.state.redis)})


async def stats(request: Request) -> JSONResponse:
    """The sidecar's figures, summed over its worker processes (see census.py)."""
    census: Census = request.state.census
    return JSONResponse(await census.snapshot())


async def metrics(request: Request) -> PlainTextResponse:
    """The /stats figures in Prometheus text format (version 0.0.4)."""
    census: Census = request.state.census
    text = prometheus_text(await census.snapshot(), await redis_up(request.state.redis))
    return PlainTextResponse(text, media_type=CONTENT_TYPE)


def create_app(settings: Settings, group: str | None = None) -> StreamApp:
    """The sidecar for every event in settings.content_dir (ContentErrors if content is broken).

    `group` names the sidecar whose worker processes share their counts through Redis
    (census.py); None for a sidecar of one process. The running Fanout is also kept on
    `app.state.fanout`."""
    events = {event.slug for event in load_events(settings.content_dir)}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[State]:
        redis = redis_client(settings.redis_url)
        fanout = Fanout(
            redis, events, settings.live_queue_size, settings.catchup_limit,
            settings.heartbeat_seconds, settings.live_send_timeout,
        )  # fmt: skip
        app.state.fanout = fanout
        census = Census(redis, fanout, group)
        await census.start()
        restore = end_streams_on_exit(fanout)
        try:
            yield {"settings": settings, "redis": redis, "fanout": fanout, "census": census}
        finally:
            restore()
            fanout.close()
            await census.stop()
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
        Route("/metrics", metrics),
    ]
    app = Starlette(routes=routes, middleware=[cors], lifespan=lifespan)
    return StreamApp(app)


def end_streams_on_exit(fanout: Fanout) -> Callable[[], None]:
    """Chain the server's SIGINT/SIGTERM handlers so that a stop request first ends every open
    stream cleanly: otherwise the streams hold the server's graceful shutdown until it times
    out. Browsers reconnect by Last-Event-ID after their `retry:` delay. Returns the undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None  # signals reach the main thread only; nothing to chain
    loop, previous = asyncio.get_running_loop(), {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(sig)
        if callable(handler):
            previous[sig] = handler
            signal.signal(sig, functools.partial(_end_then, handler, loop, fanout))

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


def _end_then(
    handler: Callable[[int, FrameType | None], Any], loop: asyncio.AbstractEventLoop,
    fanout: Fanout, sig: int, frame: FrameType | None,
) -> None:  # fmt: skip
    loop.call_soon_threadsafe(fanout.close)
    handler(sig, frame)


def app_from_environment() -> StreamApp:
    """The factory each worker process calls (`live serve --workers N`); the workers' parent
    owns the socket, so its pid names the sidecar they share counts under."""
    return create_app(load_settings(), sidecar_group(os.getppid()))
