"""`python -m collector`: replay a recording, migrate the archive, show what was collected."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import logging
import signal
from pathlib import Path

import click

from core.archive import open_archive, source_states
from core.cli import AfaGroup, configure_logging
from core.errors import AfaError
from core.events import Event, load_events
from core.moderation import (
    approve_first,
    audit_log,
    blocked_accounts,
    hidden_posts,
    queue_length,
)
from core.moderation import queue as moderation_queue
from core.moderation import rules as moderation_rules
from core.settings import Settings, load_settings

from .collect import USER_AGENT, collect
from .enrich.refresh import refresh_now
from .moderation import Moderator
from .notes import make_note
from .pipeline import Pipeline
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
    found = find_event(settings, event)
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
        _table(["event", "source", "state", "last post", "lag", "received", "errors",
                "last error", "updated"],
               [(e, k, s.get("state"), _when(s.get("last_post_at")), _seconds(s.get("lag_seconds")),
                 s.get("received", 0), s.get("errors", 0), (s.get("last_error") or "-")[:80],
                 _when(u)) for e, k, s, u in states])  # fmt: skip
        click.echo()
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
    chosen = [find_event(settings, slug) for slug in events] or load_events(settings.content_dir)
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
    found = find_event(settings, event)
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
    _table(["source", "received", "gaps", "backfilled", "malformed", "disconnected",
            "rate limited"], rows)  # fmt: skip
    click.echo(f"written to {path}")


@cli.command()
@click.argument("event")
@click.argument("text")
@click.option("--author", default="Organizers", show_default=True, help="Who signs the note.")
def note(event: str, text: str, author: str) -> None:
    """Post an organizer's announcement into EVENT's archive and live stream.

    \b
    Example:
        python -m collector note northwind-2026 "Lunch is served in the Garden Room" \\
            --author "Northwind team"
    """
    settings = load_settings()
    need_redis(settings)
    found = find_event(settings, event)
    try:
        item = make_note(found.slug, text, author)
    except ValueError as exc:
        raise AfaError(str(exc)) from exc
    pipeline = Pipeline.open(settings)
    try:
        committed = pipeline.commit(found.slug, "note", [item], None).changes
    finally:
        pipeline.close()
    if pipeline.needs_reseed:
        click.echo("archived, not yet live (Redis unavailable); the collector will re-seed it",
                   err=True)  # fmt: skip
    click.echo(f"{item.uri} (seq {committed[0].seq if committed else '-'})")


def _seconds(value) -> str:
    return "-" if value is None else f"{float(value):.0f} s"


def _when(iso: str | None) -> str:
    if not iso:
        return "-"
    return iso.replace("T", " ")[:19]


# -- moderation (collector/moderation.py): decisions go to the archive, the live tail and the audit


def sync_moderation(settings: Settings, events: list[Event]) -> None:
    """Load each event's content/<event>/moderation.yaml before collecting. Nothing is published
    here: the collector re-seeds the stream from the archive as it starts."""
    mod = Moderator.open(settings.with_overrides(redis_url=""))
    try:
        for event in events:
            outcome = mod.sync_content(event.slug, event.path)
            if outcome.changes or outcome.rebuild:
                logging.getLogger("collector").info("moderation: %s", outcome.summary())
    finally:
        mod.close()


def _who(by: str | None) -> str:
    if by:
        return by
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "organizer"


def _decide(event: str, decide) -> None:
    """Open the archive and Redis, make one decision, print what it did."""
    settings = load_settings()
    find_event(settings, event)
    mod = Moderator.open(settings)
    try:
        outcome = decide(mod)
    finally:
        mod.close()
    click.echo(outcome.summary())
    if mod.redis is None and outcome.changes:
        click.echo("REDIS_URL is not set: the collector publishes it when it (re)starts", err=True)


by_option = click.option("--by", help="Who decides, for the audit log (default: your user name).")
why_option = click.option("--why", required=True, help="Why, for the audit log.")


@cli.command()
@click.argument("event")
@click.argument("uri")
@why_option
@by_option
def hide(event: str, uri: str, why: str, by: str | None) -> None:
    """Hide a post: open live pages drop it now, the site after the rebuild this requests.

    URI is the post's identity (its canonical URI); a post not collected yet stays hidden when
    it arrives.

    \b
    Example:
        python -m collector hide northwind-2026 \\
            https://mastodon.social/users/x/statuses/1 --why "personal data"
    """
    _decide(event, lambda m: m.hide(event, uri, who=_who(by), why=why))


@cli.command()
@click.argument("event")
@click.argument("uri")
@why_option
@by_option
def unhide(event: str, uri: str, why: str, by: str | None) -> None:
    """Show a hidden post again (unless a block or a rule still hides it).

    \b
    Example:
        python -m collector unhide northwind-2026 \\
            https://mastodon.social/users/x/statuses/1 --why "hidden by mistake"
    """
    _decide(event, lambda m: m.unhide(event, uri, who=_who(by), why=why))


@cli.command()
@click.argument("event")
@click.argument("account")
@why_option
@by_option
def block(event: str, account: str, why: str, by: str | None) -> None:
    """Block an account: its past posts leave the live pages and the site, its future posts never
    reach them. ACCOUNT is an author id (account URI, DID) or a handle.

    \b
    Example:
        python -m collector block northwind-2026 @spammer@example.social --why spam
    """
    _decide(event, lambda m: m.block(event, account, who=_who(by), why=why))


@cli.command()
@click.argument("event")
@click.argument("account")
@why_option
@by_option
def unblock(event: str, account: str, why: str, by: str | None) -> None:
    """Unblock an account: its posts come back (those no other decision hides).

    \b
    Example:
        python -m collector unblock northwind-2026 @spammer@example.social --why "appeal accepted"
    """
    _decide(event, lambda m: m.unblock(event, account, who=_who(by), why=why))


@cli.group()
def rule() -> None:
    """Keyword and pattern rules: add, list, remove."""


@rule.command("add")
@click.argument("event")
@click.option("--keyword", help="A word or phrase, matched whole and ignoring case.")
@click.option("--pattern", help="A Python regular expression, searched ignoring case.")
@click.option("--action", type=click.Choice(["hide", "hold"]), default="hide", show_default=True,
              help="hide: keep matching posts off the pages (now and later); "
                   "hold: new matching posts wait for approval.")  # fmt: skip
@why_option
@by_option
def rule_add(event, keyword, pattern, action, why, by) -> None:
    """Add a rule: it matches a post's text, content warning, author name and alt texts.

    \b
    Example:
        python -m collector rule add northwind-2026 --keyword "free crypto" --why spam
        python -m collector rule add northwind-2026 --pattern "https?://bit\\.ly/" \\
            --action hold --why "short links wait for a look"
    """
    if bool(keyword) == bool(pattern):
        raise click.UsageError("give exactly one of --keyword or --pattern")
    kind, text = ("keyword", keyword) if keyword else ("pattern", pattern)
    _decide(event, lambda m: m.add_rule(event, kind, text, action=action, who=_who(by), why=why))


@rule.command("list")
@click.argument("event")
def rule_list(event: str) -> None:
    """List an event's rules, hidden posts and blocked accounts, with where each comes from.

    \b
    Example:
        python -m collector rule list northwind-2026
    """
    with _reading() as db:
        found = moderation_rules(db, event)
        hidden, blocked = hidden_posts(db, event), blocked_accounts(db, event)
        first = approve_first(db, event)
    click.echo(f"approve-first: {'on' if first else 'off'}")
    _table(["id", "kind", "pattern", "action", "from", "who", "why"],
           [(r.id, r.kind, r.pattern, r.action, r.origin, r.who, r.why) for r in found])  # fmt: skip
    for title, rows in (("hidden post", hidden), ("blocked account", blocked)):
        click.echo()
        _table([title, "from", "who", "when", "why"],
               [(d.target, d.origin, d.who, _when(d.at), d.why) for d in rows])  # fmt: skip


@rule.command("remove")
@click.argument("event")
@click.argument("rule_id", type=int)
@why_option
@by_option
def rule_remove(event: str, rule_id: int, why: str, by: str | None) -> None:
    """Remove a rule by its id (see `rule list`); the posts it alone hid come back.

    \b
    Example:
        python -m collector rule remove northwind-2026 3 --why "too broad"
    """
    _decide(event, lambda m: m.remove_rule(event, rule_id, who=_who(by), why=why))


@cli.command("approve-first")
@click.argument("event")
@click.argument("state", type=click.Choice(["on", "off"]))
@click.option("--why", default="", help="Why, for the audit log.")
@by_option
def approve_first_command(event: str, state: str, why: str, by: str | None) -> None:
    """Turn approve-first on or off: when on, new posts wait in the queue for an organizer.

    Turning it off leaves the waiting posts in the queue: approve or reject them.

    \b
    Example:
        python -m collector approve-first northwind-2026 on --why "keynote Q&A"
    """
    _decide(event, lambda m: m.set_approve_first(event, state == "on", who=_who(by), why=why))


@cli.command()
@click.argument("event")
@click.option("--limit", type=int, default=50, show_default=True, help="Show at most this many.")
def queue(event: str, limit: int) -> None:
    """List the posts waiting for approval, oldest first (the order approval delivers them in).

    \b
    Example:
        python -m collector queue northwind-2026
    """
    with _reading() as db:
        held, total = moderation_queue(db, event, limit), queue_length(db, event)
    _table(["uri", "author", "held", "why", "text"],
           [(h.uri, h.item["author"].get("handle") or h.item["author"].get("name"),
             _when(h.held_at), h.reason, " ".join(h.item.get("text", "").split())[:60])
            for h in held])  # fmt: skip
    click.echo(f"{total} waiting")


@cli.command()
@click.argument("event")
@click.argument("uris", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Approve every waiting post.")
@click.option("--why", default="", help="Why, for the audit log.")
@by_option
def approve(event: str, uris: tuple[str, ...], everything: bool, why: str, by: str | None) -> None:
    """Approve waiting posts: they reach the live pages in the order they were written.

    \b
    Example:
        python -m collector approve northwind-2026 --all
        python -m collector approve northwind-2026 https://mastodon.social/users/x/statuses/1
    """
    if everything == bool(uris):
        raise click.UsageError("give the URIs to approve, or --all")
    chosen = None if everything else list(uris)
    _decide(event, lambda m: m.approve(event, chosen, who=_who(by), why=why))


@cli.command()
@click.argument("event")
@click.argument("uris", nargs=-1, required=True)
@why_option
@by_option
def reject(event: str, uris: tuple[str, ...], why: str, by: str | None) -> None:
    """Reject waiting posts: they are hidden for good and never reach the live pages.

    \b
    Example:
        python -m collector reject northwind-2026 https://mastodon.social/users/x/statuses/1 \\
            --why "off topic"
    """
    _decide(event, lambda m: m.reject(event, list(uris), who=_who(by), why=why))


@cli.command()
@click.argument("event")
@click.option("--limit", type=int, default=50, show_default=True, help="Show at most this many.")
def audit(event: str, limit: int) -> None:
    """Show the moderation audit log, newest first: who, when, what, why.

    \b
    Example:
        python -m collector audit northwind-2026 --limit 20
    """
    with _reading() as db:
        entries = audit_log(db, event, limit)
    _table(["when", "who", "action", "target", "why", "live changes"],
           [(_when(e.at), e.who, e.action, e.target, e.why, e.changes) for e in entries])  # fmt: skip


@cli.command("moderation-sync")
@click.argument("event")
def moderation_sync(event: str) -> None:
    """Load content/EVENT/moderation.yaml into the archive (collectors also do it at start).

    Entries from the file are stored as coming from content; the file is the truth for them.

    \b
    Example:
        python -m collector moderation-sync northwind-2026
    """
    settings = load_settings()
    found = find_event(settings, event)
    _decide(event, lambda m: m.sync_content(event, found.path))


@contextlib.contextmanager
def _reading():
    db = open_archive(load_settings().archive_path)
    try:
        yield db
    finally:
        db.close()
