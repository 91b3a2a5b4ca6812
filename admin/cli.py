"""`python -m admin`: run every process under supervisord, and serve the organizers' dashboard."""

from __future__ import annotations

from pathlib import Path

import click
import uvicorn

from core.archive import open_archive
from core.cli import AfaGroup, configure_logging
from core.errors import AfaError
from core.events import load_events
from core.paths import private_dir
from core.redisconn import redact
from core.settings import load_settings, secret

from . import supervise as sv
from .app import create_app
from .auth import secret_problem
from .deploy import Topology, write_deployment
from .replica import restore_archive, write_replica_config

SECRET_NAME = "AFA_ADMIN_SECRET"


@click.group(cls=AfaGroup)
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail.")
def cli(verbose: bool) -> None:
    """Run A Feed Apart under a supervisor and watch it from the organizers' dashboard."""
    configure_logging(verbose)


@cli.command()
@click.option("--host", default=None, help="Address to listen on (default AFA_ADMIN_HOST).")
@click.option("--port", type=int, default=None, help="Port to listen on (default AFA_ADMIN_PORT).")
def serve(host: str | None, port: int | None) -> None:
    """Serve the dashboard: processes, sources, viewers, posts per minute, moderation.

    Refuses to start unless AFA_ADMIN_SECRET holds a secret of 16 characters or more; organizers
    sign in with it. Put it behind HTTPS when it is reachable from anywhere but this machine.

    \b
    Example:
        AFA_ADMIN_SECRET=… python -m admin serve --port 8002
    """
    settings = load_settings()
    value = secret(SECRET_NAME)
    problem = secret_problem(value)
    if problem:
        raise AfaError(problem)
    app = create_app(settings, value)
    uvicorn.run(
        app,
        host=host or settings.admin_host,
        port=port or settings.admin_port,
        proxy_headers=bool(settings.admin_trusted_proxies),  # else a client names itself
        forwarded_allow_ips=settings.admin_trusted_proxies or None,
        log_level="info",
        server_header=False,
    )


@cli.command()
@click.argument("events", nargs=-1)
@click.option(
    "--replay",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Replay this recording instead of following live sources (one event).",
)
@click.option("--speed", type=float, default=None, help="Replay clock speed-up (with --replay).")
@click.option(
    "--static/--no-static",
    default=True,
    show_default=True,
    help="Also serve output/ (leave it out when a web server or CDN serves it).",
)
@click.option("--config-only", is_flag=True,
              help="Write var/run/supervisord.conf and print its path; do not start.")  # fmt: skip
def supervise(
    events: tuple[str, ...], replay: Path | None, speed: float | None, static: bool,
    config_only: bool,
) -> None:  # fmt: skip
    """Run every process of EVENTS (all events by default) under supervisord until Ctrl-C.

    The embedded Redis (when REDIS_URL is unset), a collector and a site scheduler per event, the
    live sidecar, the static server and the dashboard (when AFA_ADMIN_SECRET is set). A process
    that crashes is restarted; each writes a log under var/run/logs/, rotated at 10 MB.

    \b
    Example:
        AFA_ADMIN_SECRET=… python -m admin supervise northwind-2026
    """
    settings = load_settings()
    private_dir(settings.var_dir)
    known = {e.slug: e for e in load_events(settings.content_dir)}
    missing = [slug for slug in events if slug not in known]
    if missing:
        raise AfaError(f"no event {missing[0]!r} in {settings.content_dir}/ "
                       f"(known: {', '.join(sorted(known)) or 'none'})")  # fmt: skip
    chosen = [known[slug] for slug in events] or list(known.values())
    if replay and len(chosen) != 1:
        raise AfaError("--replay needs exactly one event")
    problem = secret_problem(secret(SECRET_NAME))
    if problem:
        click.echo(f"dashboard left out: {problem}", err=True)
    embedded = not settings.redis_url
    found = sv.programs(settings, chosen, embedded_redis=embedded, replay=replay, speed=speed,
                        static=static, dashboard=problem is None)  # fmt: skip
    redis_url = sv.embedded(settings).url if embedded else settings.redis_url
    run = sv.plan(settings, found, redis_url if embedded else "")
    config = sv.write_config(run, Path.cwd())
    if settings.replica_url:
        write_replica_config(settings, run.run_dir)
    open_archive(settings.archive_path).close()  # migrate once, not in six processes at once
    if config_only:
        click.echo(str(config))
        return
    banner(settings, run, redis_url, static, problem is None)
    sv.exec_supervisord(config)


def banner(settings, run: sv.RunPlan, redis_url: str, static: bool, dashboard: bool) -> None:
    lines = ["", "A Feed Apart under supervisord: " + ", ".join(p.name for p in run.programs)]
    if static:
        lines.append(f"  site         http://127.0.0.1:{settings.site_port}/")
    lines.append(f"  live         http://{settings.live_host}:{settings.live_port}/stats")
    if dashboard:
        lines.append(f"  dashboard    http://{settings.admin_host}:{settings.admin_port}/")
    lines += [f"  redis        {redact(redis_url)}", f"  logs         {run.log_dir}/",
              f"  config       {run.config_path}", "Press Ctrl-C to stop everything.", ""]  # fmt: skip
    click.echo("\n".join(lines))


@cli.command()
def restore() -> None:
    """Bring the archive back from its Litestream replica as of its last replicated transaction.

    The replica is AFA_REPLICA_URL. Stop `make run` first. An archive still in place is kept
    beside it as archive.db.before-restore-TIME. Start again afterwards: each collector resumes
    from the restored cursors, and its source's backfill fetches what came after them.

    \b
    Example:
        AFA_REPLICA_URL=s3://my-bucket/archive python -m admin restore
    """
    settings = load_settings()
    config = write_replica_config(settings, sv.run_dir(settings))
    click.echo(restore_archive(settings, config))


@cli.command("deploy-config")
@click.option("--sidecars", default="2", show_default=True,
              help="How many live sidecars (live-1.internal …), or HOST:PORT,HOST:PORT,…")  # fmt: skip
@click.option("--workers", type=int, default=2, show_default=True,
              help="AFA_LIVE_WORKERS on each sidecar host (one per core).")  # fmt: skip
@click.option("--bind", default="*:80", show_default=True, help="What HAProxy listens on.")
@click.option("--maxconn", type=int, default=100_000, show_default=True,
              help="Open viewers HAProxy accepts in all (two descriptors each).")  # fmt: skip
@click.option("--app-dir", default="/srv/afa", show_default=True, help="The checkout on each host.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("var/deploy"),
              show_default=True, help="Folder to write into.")  # fmt: skip
def deploy_config(
    sidecars: str, workers: int, bind: str, maxconn: int, app_dir: str, out: Path
) -> None:
    """Write a reference deployment: HAProxy for N sidecars, systemd units, Litestream, Sentinel.

    The files go into --out for review: haproxy.cfg (SSE unbuffered, hour-long streams, health
    checks on /healthz), one systemd unit per program, litestream.yml (when AFA_REPLICA_URL is
    set), a Sentinel sketch and README.txt saying which host runs what. No secret is written.

    \b
    Example:
        python -m admin deploy-config --sidecars 4 --workers 2 --out var/deploy
    """
    settings = load_settings()
    events = [e.slug for e in load_events(settings.content_dir)]
    topology = Topology.parse(sidecars, events, workers=workers, bind=bind, maxconn=maxconn,
                              app_dir=app_dir)  # fmt: skip
    for path in write_deployment(settings, topology, out):
        click.echo(str(path))
