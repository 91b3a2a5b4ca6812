"""`python -m collector`: replay a recording, migrate the archive, show what was collected."""

from __future__ import annotations

import asyncio
import getpass
import signal
from pathlib import Path

import click

from core.archive import open_archive, source_states
from core.cli import AfaGroup, configure_logging, print_table, short_time
from core.errors import AfaError
from core.events import Event, find_event, load_events
from core.moderation.commands import COMMANDS, sync_moderation
from core.settings import Settings, load_settings

from .collect import USER_AGENT, collect
from .enrich.refresh import refresh_now
from .notes import make_note, post_note
from .replay import Replay, Stopper
from .report import build_report, save_report, write_report


@click.group(cls=AfaGroup)
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail.")
def cli(verbose: bool) -> None:
    """Collect posts from sources into the archive (SQLite) and the live tail (Redis)."""
    configure_logging(verbose)


def need_redis(settings: Settings) -> None:
    if not settings.redis_url:
        raise AfaError(
            "REDIS_URL is not set: point it at a Redis server, e.g. "
            "REDIS_URL=redis://127.0.0.1:6379/0 (`make demo` starts one and sets it for you)"
        )


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
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Processes that parse ahead of the one writer (for a fast bulk import).")  # fmt: skip
def replay(
    event: str, recording: Path, speed: float | None, max_gap_minutes: float, workers: int
) -> None:
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
    found = find_event(settings.content_dir, event)
    speed = settings.replay_speed if speed is None else speed
    sync_moderation(settings, [found])
    stopper = Stopper().install()
    Replay(settings, found, recording, speed, max_gap_minutes, stopper, workers=workers).run()


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
    """Show each live source's state, each event's source cursors and item counts.

    Read from the archive alone, so it works while Redis is down.

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
        states = source_states(db)
    finally:
        db.close()
    if states:
        print_table(["event", "source", "state", "last post", "lag", "received", "errors",
                "last error", "updated"],
               [(e, k, s.get("state"), short_time(s.get("last_post_at")), _seconds(s.get("lag_seconds")),
                 s.get("received", 0), s.get("errors", 0), (s.get("last_error") or "-")[:80],
                 short_time(u)) for e, k, s, u in states])  # fmt: skip
        click.echo()
    print_table(["event", "source", "cursor", "updated"], cursors)
    click.echo()
    print_table(["event", "source", "status", "items"], counts)
    click.echo()
    events = sorted(set(seqs) | set(malformed))
    print_table(["event", "last seq", "malformed"],
           [(e, seqs.get(e, 0), malformed.get(e, 0)) for e in events])  # fmt: skip


@cli.command()
@click.argument("events", nargs=-1)
@click.option("--record", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write every delivery (enrichment answers too) to this afa-recording/1 "
              "file, for `collector replay`; one event only. An existing file is continued.")  # fmt: skip
def run(events: tuple[str, ...], record: Path | None) -> None:
    """Collect from every live source of EVENTS (all events by default) until stopped.

    Each source runs on its own; SIGTERM or Ctrl-C stop them all within a few seconds. Source
    states are saved every few seconds for `status` and `report`.

    \b
    Example:
        REDIS_URL=redis://127.0.0.1:6379/0 AFA_FLICKR_KEY=… python -m collector run northwind-2026
        python -m collector run northwind-2026 --record var/recordings/northwind-2026-live.jsonl
    """
    settings = load_settings()
    need_redis(settings)
    content = settings.content_dir
    chosen = [find_event(content, slug) for slug in events] or load_events(content)
    if record is not None and len(chosen) != 1:
        raise AfaError("--record takes exactly one event: name it (run EVENT --record FILE)")
    sync_moderation(settings, chosen)
    asyncio.run(_run_until_signal(settings, chosen, record))


async def _run_until_signal(settings: Settings, events: list[Event], record: Path | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    states = await collect(settings, events, stop, record=record)
    for key, state in states.items():
        click.echo(f"{key}: {state.state}, {state.received} received, {state.errors} errors")


@cli.command("refresh-counts")
@click.argument("event")
@click.option("--session", help="Only the posts of this session (by its slug); default: all.")
def refresh_counts(event: str, session: str | None) -> None:
    """Ask the sources for the current reaction counts of EVENT's posts.

    Bluesky through the AppView's getPosts, Mastodon through each instance the event follows,
    Flickr through its search; posts the sources no longer have are retracted. The counts
    re-rank the pages at the next build; the live stream does not carry them.

    \b
    Example:
        REDIS_URL=redis://127.0.0.1:6379/0 AFA_FLICKR_KEY=… \\
            python -m collector refresh-counts northwind-2026
    """
    settings = load_settings()
    need_redis(settings)
    found = find_event(settings.content_dir, event)
    outcome = asyncio.run(refresh_now(settings, found, session, user_agent=USER_AGENT))
    if outcome.failed:  # for cron: what was asked is committed, what was not is an error
        raise AfaError(outcome.summary())
    click.echo(outcome.summary())


@cli.command()
@click.argument("event")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report here (default var/reports/EVENT.json).")  # fmt: skip
def report(event: str, json_path: Path | None) -> None:
    """Print an event's completeness report per source and save it as JSON.

    Posts received, gaps detected and backfilled, malformed payloads skipped, time
    disconnected and time rate-limited. The JSON also goes into the archive for sitegen.

    \b
    Example:
        python -m collector report northwind-2026 --json var/reports/northwind-2026.json
    """
    settings = load_settings()
    db = open_archive(settings.archive_path, create=False)
    try:
        found = build_report(db, event)
        save_report(db, found)
    finally:
        db.close()
    path = write_report(found, json_path or settings.var_dir / "reports" / f"{event}.json")
    archive = found["archive"]
    click.echo(f"{event}: {archive['items']} items archived ({archive['visible']} visible, "
               f"{archive['deleted']} deleted)")  # fmt: skip
    rows = [(s["source"], s.get("received", "-"), s.get("gaps_detected", "-"),
             s.get("gaps_backfilled", "-"), s.get("malformed", 0),
             _seconds(s.get("disconnected_seconds")), _seconds(s.get("rate_limited_seconds")))
            for s in found["sources"]]  # fmt: skip
    print_table(["source", "received", "gaps", "backfilled", "malformed", "disconnected",
            "rate limited"], rows)  # fmt: skip
    click.echo(f"written to {path}")


@cli.command()
@click.argument("event")
@click.argument("text")
@click.option("--author", default="Organizers", show_default=True, help="Who signs the note.")
@click.option("--markdown", is_flag=True, help="TEXT is Markdown (sanitised like any post).")
@click.option("--pin", is_flag=True, help="Pin it on the walls and live pages too.")
@click.option("--by", help="Who pins it, for the audit log (default: your user name).")
@click.option(
    "--preview", is_flag=True, help="Print the note's HTML as it would be posted; post nothing."
)
def note(event: str, text: str, author: str, markdown: bool, pin: bool, by: str | None,
         preview: bool) -> None:  # fmt: skip
    """Post an organizer's announcement into EVENT's archive and live stream.

    \b
    Example:
        python -m collector note northwind-2026 "Lunch is served in the Garden Room" \\
            --author "Northwind team" --pin
    """
    settings = load_settings()
    found = find_event(settings.content_dir, event)
    try:
        item = make_note(found.slug, text, author, markdown=markdown)
    except ValueError as exc:
        raise AfaError(str(exc)) from exc
    if preview:
        click.echo(item.html)
        return
    need_redis(settings)
    posted = post_note(settings, found.slug, item, pin=pin, who=by or _user())
    if posted.redis_error:
        click.echo(f"archived, not yet live (Redis: {posted.redis_error}); the collector will "
                   "re-seed it", err=True)  # fmt: skip
    click.echo(f"{item.uri} (seq {posted.seq or '-'})")
    if posted.pinned:
        click.echo(posted.pinned)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "organizer"


def _seconds(value) -> str:
    return "-" if value is None else f"{float(value):.0f} s"


for command in COMMANDS:  # hide, block, rule …: moderation's commands, defined with it
    cli.add_command(command)
