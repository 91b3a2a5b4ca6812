"""python -m sitegen: build, check-content, schedule, serve. AfaError becomes a clean message here."""

from __future__ import annotations

import functools
import signal
import threading
from collections.abc import Callable
from pathlib import Path

import click

from core.errors import AfaError, ContentError, ContentErrors
from core.events import load_events
from core.moderation.content import load_content_moderation
from core.settings import Settings, load_settings

from .build import build_site
from .publish import publish_site
from .rebuild_loop import run_rebuild_loop
from .serve import serve_output


def reports_errors(command: Callable) -> Callable:
    """The one place an AfaError turns into a ClickException (exit code 1, message on stderr)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except AfaError as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper


@click.group()
@click.version_option(package_name="afeedapart")
def cli() -> None:
    """Build the static site from content/ and the archive into output/."""


def settings_from(output: Path | None) -> Settings:
    settings = load_settings()
    return settings.with_overrides(output_dir=output) if output else settings


@cli.command()
@click.option(
    "--output", type=click.Path(path_type=Path), help="Write here instead of AFA_OUTPUT_DIR."
)
@click.option("--quiet", "-q", is_flag=True, help="Print only the summary.")
@click.option("--no-search", is_flag=True, help="Skip the Pagefind search index.")
@reports_errors
def build(output: Path | None, quiet: bool, no_search: bool) -> None:
    """Build every page of every event into output/.

    \b
    Example:
        python -m sitegen build
    """
    settings = settings_from(output)
    log = (lambda line: None) if quiet else click.echo
    report = build_site(settings, log=log, search=not no_search)
    click.echo(f"{report.summary()} → {settings.output_dir}/")


@cli.command("check-content")
@reports_errors
def check_content() -> None:
    """Check content/ and list every mistake as path:line: message.

    \b
    Example:
        python -m sitegen check-content
    """
    settings = load_settings()
    errors: list[ContentError] = []
    events = []
    try:
        events = load_events(settings.content_dir)
    except ContentErrors as exc:
        errors.extend(exc.errors)
    errors.extend(moderation_errors(settings.content_dir))
    if errors:
        for error in errors:
            click.echo(str(error), err=True)
        raise click.ClickException(f"{len(errors)} mistake(s) in {settings.content_dir}/")
    talks = sum(len(e.presentations) for e in events)
    click.echo(f"content OK: {len(events)} events, {talks} presentations")


def moderation_errors(content_dir: Path) -> list[ContentError]:
    """Every mistake in each event's moderation.yaml (events are the folders with an event.yaml)."""
    errors: list[ContentError] = []
    if not Path(content_dir).is_dir():
        return errors
    for folder in sorted(p for p in Path(content_dir).iterdir() if (p / "event.yaml").exists()):
        try:
            load_content_moderation(folder)
        except ContentErrors as exc:
            errors.extend(exc.errors)
    return errors


@cli.command()
@click.argument("event")
@click.option("--interval", default=2.0, show_default=True, help="Seconds between clock checks.")
@reports_errors
def schedule(event: str, interval: float) -> None:
    """Rebuild the site each time a session of EVENT ends (plus grace) by the collector's clock.

    \b
    Example:
        python -m sitegen schedule northwind-2026 --interval 2
    """
    stop = threading.Event()
    with stop_on_signals(stop):
        run_rebuild_loop(load_settings(), event, interval, stop, log=click.echo)


@cli.command()
@click.option(
    "--full", is_flag=True, help="Ignore what this machine knows the target holds: list it first."
)
@reports_errors
def publish(full: bool) -> None:
    """Publish output/ to AFA_PUBLISH_TARGET (object storage or rsync): only what changed.

    New and changed files go up before the pages that link to them, and files the build removed
    are deleted last. Object storage credentials come from AWS_ACCESS_KEY_ID and
    AWS_SECRET_ACCESS_KEY, and its endpoint from AFA_S3_ENDPOINT.

    \b
    Example:
        AFA_PUBLISH_TARGET=s3://my-bucket/site python -m sitegen publish
    """
    click.echo(publish_site(load_settings(), full=full, log=click.echo).summary())


@cli.command()
@click.option("--port", type=int, default=None, help="Port to listen on (default AFA_SITE_PORT).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@reports_errors
def serve(port: int | None, host: str) -> None:
    """Serve output/ as plain static files, for the demo and for checking a build.

    \b
    Example:
        python -m sitegen serve --port 8000
    """
    settings = load_settings()
    serve_output(settings.output_dir, host, port or settings.site_port, log=click.echo)


class stop_on_signals:  # noqa: N801  (used as a context manager)
    """Set `stop` on SIGTERM or SIGINT, and put the old handlers back afterwards."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.old: dict[int, object] = {}

    def __enter__(self) -> threading.Event:
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.old[sig] = signal.signal(sig, lambda *_: self.stop.set())
        return self.stop

    def __exit__(self, *exc) -> None:
        for sig, handler in self.old.items():
            signal.signal(sig, handler)
