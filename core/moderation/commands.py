"""The moderation commands of `python -m collector` (hide, block, rule add, approve …): each
opens the archive and Redis, makes one decision through the Moderator and prints its summary;
the listing commands read core.moderation.queries. Defined here, beside what they call, and
added to the collector's command group by collector/cli.py."""

from __future__ import annotations

import contextlib
import getpass
import logging

import click

from ..archive import open_archive
from ..cli import print_table, short_time
from ..events import Event, find_event
from ..settings import Settings, load_settings
from . import queries
from .decisions import Moderator
from .pins import Pinner


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
    find_event(settings.content_dir, event)
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


@click.command()
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


@click.command()
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


@click.command()
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


@click.command()
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


@click.group()
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
        found = queries.rules(db, event)
        hidden, blocked = queries.hidden_posts(db, event), queries.blocked_accounts(db, event)
        first = queries.approve_first(db, event)
    click.echo(f"approve-first: {'on' if first else 'off'}")
    print_table(["id", "kind", "pattern", "action", "from", "who", "why"],
           [(r.id, r.kind, r.pattern, r.action, r.origin, r.who, r.why) for r in found])  # fmt: skip
    for title, rows in (("hidden post", hidden), ("blocked account", blocked)):
        click.echo()
        print_table([title, "from", "who", "when", "why"],
               [(d.target, d.origin, d.who, short_time(d.at), d.why) for d in rows])  # fmt: skip


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


@click.command("approve-first")
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


@click.command()
@click.argument("event")
@click.option("--limit", type=int, default=50, show_default=True, help="Show at most this many.")
def queue(event: str, limit: int) -> None:
    """List the posts waiting for approval, oldest first (the order approval delivers them in).

    \b
    Example:
        python -m collector queue northwind-2026
    """
    with _reading() as db:
        held, total = queries.queue(db, event, limit), queries.queue_length(db, event)
    print_table(["uri", "author", "held", "why", "text"],
           [(h.uri, h.item["author"].get("handle") or h.item["author"].get("name"),
             short_time(h.held_at), h.reason, " ".join(h.item.get("text", "").split())[:60])
            for h in held])  # fmt: skip
    click.echo(f"{total} waiting")


@click.command()
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


@click.command()
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


@click.command()
@click.argument("event")
@click.option("--limit", type=int, default=50, show_default=True, help="Show at most this many.")
def audit(event: str, limit: int) -> None:
    """Show the moderation audit log, newest first: who, when, what, why.

    \b
    Example:
        python -m collector audit northwind-2026 --limit 20
    """
    with _reading() as db:
        entries = queries.audit_log(db, event, limit)
    print_table(["when", "who", "action", "target", "why", "live changes"],
           [(short_time(e.at), e.who, e.action, e.target, e.why, e.changes) for e in entries])  # fmt: skip


@click.command("moderation-sync")
@click.argument("event")
def moderation_sync(event: str) -> None:
    """Load content/EVENT/moderation.yaml into the archive (collectors also do it at start).

    Entries from the file are stored as coming from content; the file is the truth for them.

    \b
    Example:
        python -m collector moderation-sync northwind-2026
    """
    settings = load_settings()
    found = find_event(settings.content_dir, event)
    _decide(event, lambda m: m.sync_content(event, found.path))


@contextlib.contextmanager
def _reading():
    db = open_archive(load_settings().archive_path)
    try:
        yield db
    finally:
        db.close()


# -- pinned posts (pins.py): on top of every wall and live page until unpinned


def _pin(event: str, act) -> None:
    settings = load_settings()
    find_event(settings.content_dir, event)
    pinner = Pinner.open(settings)
    try:
        outcome = act(pinner)
    finally:
        pinner.close()
    click.echo(outcome.summary())
    if pinner.redis is None:
        click.echo("REDIS_URL is not set: the collector publishes it when it (re)starts", err=True)


@click.command()
@click.argument("event")
@click.argument("uri")
@click.option("--why", default="", help="Why, for the audit log.")
@by_option
def pin(event: str, uri: str, why: str, by: str | None) -> None:
    """Pin a post: open walls and live pages show it on top until it is unpinned.

    URI is the post's identity (its canonical URI). Only a post the pages show can be pinned;
    hiding a pinned post still takes it off every page.

    \b
    Example:
        python -m collector pin northwind-2026 https://mastodon.social/users/x/statuses/1
    """
    _pin(event, lambda p: p.pin(event, uri, who=_who(by), why=why))


@click.command()
@click.argument("event")
@click.argument("uri")
@click.option("--why", default="", help="Why, for the audit log.")
@by_option
def unpin(event: str, uri: str, why: str, by: str | None) -> None:
    """Unpin a post: open walls and live pages drop it from the pinned posts.

    \b
    Example:
        python -m collector unpin northwind-2026 https://mastodon.social/users/x/statuses/1
    """
    _pin(event, lambda p: p.unpin(event, uri, who=_who(by), why=why))


COMMANDS = [hide, unhide, block, unblock, rule, approve_first_command, queue, approve, reject,
            audit, moderation_sync, pin, unpin]  # fmt: skip
