"""`python -m collector`: replay a recording, migrate the archive, show what was collected."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from core.archive import open_archive
from core.errors import AfaError
from core.events import Event, load_events
from core.settings import Settings, load_settings

from .runner import Replay, Stopper


class AfaGroup(click.Group):
    """The one place where an AfaError becomes a clean message and exit code 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except AfaError as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=AfaGroup)
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail.")
def cli(verbose: bool) -> None:
    """Collect posts from sources into the archive (SQLite) and the live tail (Redis)."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )  # fmt: skip


def need_redis(settings: Settings) -> None:
    if not settings.redis_url:
        raise AfaError(
            "REDIS_URL is not set: point it at a Redis server, e.g. "
            "REDIS_URL=redis://127.0.0.1:6379/0 (`make demo` starts one and sets it for you)"
        )


def find_event(settings: Settings, slug: str) -> Event:
    events = {e.slug: e for e in load_events(settings.content_dir)}
    if slug not in events:
        known = ", ".join(sorted(events)) or "none"
        raise AfaError(f"no event {slug!r} in {settings.content_dir}/ (known: {known})")
    return events[slug]


@cli.command()
@click.argument("event")
@click.argument("recording", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--speed",
    type=float,
    default=None,
    help="Clock speed-up (default AFA_REPLAY_SPEED); 0 means as fast as possible.",
)
@click.option("--max-gap-minutes", type=float, default=20.0, show_default=True,
              help="Skip quiet spells longer than this (simulated minutes).")  # fmt: skip
def replay(event: str, recording: Path, speed: float | None, max_gap_minutes: float) -> None:
    """Replay a recorded stream of source deliveries into the archive and Redis.

    Resumes after the last committed line when run again; SIGTERM or Ctrl-C finish the
    batch in hand and exit cleanly.

    \b
    Example:
        REDIS_URL=redis://127.0.0.1:6379/0 python -m collector replay \\
            northwind-2026 var/recordings/northwind-2026.jsonl --speed 60
    """
    settings = load_settings()
    need_redis(settings)
    found = find_event(settings, event)
    speed = settings.replay_speed if speed is None else speed
    stopper = Stopper().install()
    Replay(settings, found, recording, speed, max_gap_minutes, stopper).run()


@cli.command()
def migrate() -> None:
    """Create the archive or bring its schema up to date.

    \b
    Example:
        AFA_ARCHIVE_PATH=var/archive.db python -m collector migrate
    """
    settings = load_settings()
    db = open_archive(settings.archive_path)
    names = [r[0] for r in db.execute("SELECT name FROM _sqlite_migrations ORDER BY applied_at")]
    db.close()
    click.echo(f"{settings.archive_path}: migrations applied: {', '.join(names)}")


@cli.command()
def status() -> None:
    """Show each event's source cursors and item counts from the archive.

    \b
    Example:
        python -m collector status
    """
    settings = load_settings()
    db = open_archive(settings.archive_path, create=False)
    try:
        cursors = db.execute(
            "SELECT event, source_key, cursor, updated_at FROM cursors ORDER BY event, source_key"
        ).fetchall()
        counts = db.execute(
            "SELECT event, source, status, count(*) FROM items "
            "GROUP BY event, source, status ORDER BY event, source, status"
        ).fetchall()
        seqs = dict(db.execute("SELECT event, last_seq FROM sequences").fetchall())
        malformed = dict(
            db.execute("SELECT event, count(*) FROM malformed GROUP BY event").fetchall()
        )
    finally:
        db.close()
    _table(["event", "source", "cursor", "updated"], cursors)
    click.echo()
    _table(["event", "source", "status", "items"], counts)
    click.echo()
    events = sorted(set(seqs) | set(malformed))
    _table(["event", "last seq", "malformed"],
           [(e, seqs.get(e, 0), malformed.get(e, 0)) for e in events])  # fmt: skip


def _table(headers: list[str], rows) -> None:
    rows = [[str(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    for row in [headers, ["-" * w for w in widths], *rows]:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
