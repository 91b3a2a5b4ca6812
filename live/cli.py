"""`python -m live`: serve the SSE sidecar that carries each event's Redis tail to browsers."""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from types import FrameType

import click
import uvicorn

from core.errors import AfaError
from core.settings import Settings, load_settings

from .app import create_app

GRACEFUL_SHUTDOWN_SECONDS = 5


class AfaGroup(click.Group):
    """The one place where an AfaError becomes a clean message and exit code 1."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except AfaError as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=AfaGroup)
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail.")
def cli(verbose: bool) -> None:
    """Serve live updates (Server-Sent Events) from each event's Redis stream."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )  # fmt: skip


def need_redis(settings: Settings) -> None:
    if not settings.redis_url:
        raise AfaError(
            "REDIS_URL is not set: the live sidecar reads the stream the collector writes, e.g. "
            "REDIS_URL=redis://127.0.0.1:6379/0 (`make demo` starts one and sets it for you)"
        )


@cli.command()
@click.option("--host", default=None, help="Address to listen on (default AFA_LIVE_HOST).")
@click.option("--port", type=int, default=None, help="Port to listen on (default AFA_LIVE_PORT).")
def serve(host: str | None, port: int | None) -> None:
    """Serve GET /live/EVENT/stream (SSE), /healthz and /stats until SIGTERM or Ctrl-C.

    On shutdown open streams end and browsers reconnect with Last-Event-ID.

    \b
    Example:
        REDIS_URL=redis://127.0.0.1:6379/0 python -m live serve --port 8001
        curl -N http://127.0.0.1:8001/live/northwind-2026/stream?after=0
    """
    settings = load_settings()
    need_redis(settings)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=host or settings.live_host,
        port=port or settings.live_port,
        lifespan="on",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        log_level="info",
        access_log=False,
    )
    LiveServer(config).run()


class LiveServer(uvicorn.Server):
    """uvicorn, told to end every open stream the moment it is asked to stop: otherwise the
    streams would hold the graceful shutdown until its timeout. Browsers reconnect by
    Last-Event-ID after their `retry:` delay."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        fanout = getattr(self.config.app.state, "fanout", None)
        if fanout is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(fanout.close)
        super().handle_exit(sig, frame)

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    _loop: asyncio.AbstractEventLoop | None = None
