"""`python -m live`: serve the SSE sidecar that carries each event's Redis tail to browsers."""

from __future__ import annotations

import click
import uvicorn
from uvicorn.supervisors import Multiprocess

from core.cli import AfaGroup, configure_logging
from core.errors import AfaError
from core.settings import Settings, load_settings

from .app import create_app

GRACEFUL_SHUTDOWN_SECONDS = 5
# uvicorn's parent pings each worker and kills one that has not answered within this many
# seconds, as hung. Its default, 5 s, killed workers that were only starved of CPU (a loaded
# host, or a worker still importing after spawn), and every viewer of a killed worker
# reconnects at once. A worker that is really gone is noticed at once anyway (not alive). The
# cost: the parent checks its workers one by one, so a worker that does not answer holds up
# the parent's reaction to SIGTERM for as long (stop timeouts: 60 s in the README's systemd unit).
WORKER_HEALTHCHECK_SECONDS = 30


@click.group(cls=AfaGroup)
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail.")
def cli(verbose: bool) -> None:
    """Serve live updates (Server-Sent Events) from each event's Redis stream."""
    configure_logging(verbose)


def need_redis(settings: Settings) -> None:
    if not settings.redis_url:
        raise AfaError(
            "REDIS_URL is not set: the live sidecar reads the stream the collector writes, e.g. "
            "REDIS_URL=redis://127.0.0.1:6379/0 (`make demo` starts one and sets it for you)"
        )


@cli.command()
@click.option("--host", default=None, help="Address to listen on (default AFA_LIVE_HOST).")
@click.option("--port", type=int, default=None, help="Port to listen on (default AFA_LIVE_PORT).")
@click.option(
    "--workers", type=int, default=None, help="Worker processes (default AFA_LIVE_WORKERS)."
)
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Serve GET /live/EVENT/stream (SSE), /healthz, /stats and /metrics until SIGTERM or Ctrl-C.

    On shutdown open streams end and browsers reconnect with Last-Event-ID.

    \b
    Example:
        REDIS_URL=redis://127.0.0.1:6379/0 python -m live serve --port 8001
        curl -N http://127.0.0.1:8001/live/northwind-2026/stream?after=0
    """
    settings = load_settings()
    need_redis(settings)
    app = create_app(settings)  # content errors stop here, before any worker starts
    workers = workers or settings.live_workers
    options = dict(
        host=host or settings.live_host,
        port=port or settings.live_port,
        lifespan="on",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        log_level="info",
        access_log=False,
        backlog=4096,  # a room reconnecting at once (the kernel caps it at somaxconn)
    )
    if workers <= 1:
        uvicorn.Server(uvicorn.Config(app, **options)).run()
        return
    config = uvicorn.Config("live.app:app_from_environment", factory=True, workers=workers,
                            timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
                            **options)  # fmt: skip
    Multiprocess(config, sockets=[config.bind_socket()]).run()
