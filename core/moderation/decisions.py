"""Organizers' decisions applied to the archive and the live tail: the one API the dashboard
and the command line call.

Every decision is one SQLite transaction, audited, then published, and returns an `Outcome`:

    mod = Moderator(db, redis, tail_length=settings.tail_length)
    mod = Moderator.open(settings)            # opens the archive and Redis (None without REDIS_URL)
    mod.hide(event, uri, who=, why=)          # hide a post (also one not collected yet)
    mod.unhide(event, uri, who=, why=)
    mod.block(event, account, who=, why=)     # author id or handle: past posts and future ones
    mod.unblock(event, account, who=, why=)
    mod.add_rule(event, "keyword"|"pattern", text, action="hide"|"hold", who=, why=)
    mod.remove_rule(event, rule_id, who=, why=)
    mod.set_approve_first(event, on, who=, why=)
    mod.approve(event, uris or None, who=, why=)  # None approves the whole queue, oldest first
    mod.reject(event, uris, who=, why=)       # a held post is hidden for good
    mod.sync_content(event, folder)           # content/<event>/moderation.yaml → archive
    mod.close()                               # closes what Moderator.open opened

Reading is in core.moderation.queries. Mistakes an organizer can make (an unknown rule, unhiding
what is not hidden, removing what content/ defines) raise AfaError with a message to show as it
is.

How a decision reaches viewers: the statuses it touches are recomputed (core.moderation.statuses)
with a live change for each post that appears or disappears. After the commit everything the
stream lacks is published (core.stream.publish_pending: from the stream's last entry on, so a
collector's batch committed just before is never skipped and entries stay in sequence order).
With Redis away the decision still stands; the collector re-seeds the stream when it reconnects
or starts. A decision that changed what pages show asks for a rebuild (core.rebuild: a row in the
archive that the site scheduler reads).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis as redis_lib
import sqlite_utils

from ..archive import Change, last_seq, open_archive, write_transaction
from ..errors import AfaError
from ..items import format_time
from ..rebuild import request_rebuild
from ..redisconn import connect
from ..settings import Settings
from ..stream import publish_pending
from .content import ContentModeration, load_content_moderation, sync_entries
from .queries import reasons
from .rules import account_key, check_rule, compile_matcher
from .statuses import refresh

log = logging.getLogger("core.moderation")


@dataclass
class Outcome:
    """What one decision did."""

    action: str
    event: str
    target: str
    changes: list[Change] = field(default_factory=list)  # live changes made, in sequence order
    published: int = 0  # stream entries added (0 when Redis was away: the collector re-seeds)
    rebuild: int | None = None  # the rebuild request's number, when pages must change
    redis_error: str | None = None

    def summary(self) -> str:
        kinds = [c.kind for c in self.changes]
        text = f"{self.action} {self.target}: "
        if not kinds:
            text += "no live change"
        else:
            counts = ", ".join(f"{kinds.count(k)} {k}" for k in ("retract", "post") if k in kinds)
            text += f"{counts} (seq {self.changes[0].seq}-{self.changes[-1].seq})"
            text += ", published" if self.redis_error is None and self.published else ""
        if self.redis_error:
            text += f"; not live yet (Redis: {self.redis_error}), the collector will re-seed it"
        if self.rebuild:
            text += "; rebuild requested"
        return text


ALL = ("1", [])  # a scope: every moderatable item of the event


class Moderator:
    """Applies organizers' decisions to one archive (and its Redis live tail, when given)."""

    def __init__(
        self, db: sqlite_utils.Database, redis: redis_lib.Redis | None = None, *,
        tail_length: int = 10_000,
    ) -> None:  # fmt: skip
        self.db, self.redis = db, redis
        self.tail_length = tail_length
        self._owned = False

    @classmethod
    def open(cls, settings: Settings) -> Moderator:
        redis = None
        if settings.redis_url:
            redis = connect(settings.redis_url, socket_timeout=5, socket_connect_timeout=3)
        mod = cls(open_archive(settings.archive_path), redis,
                  tail_length=settings.tail_length)  # fmt: skip
        mod._owned = True
        return mod

    def close(self) -> None:
        if self._owned:
            if self.redis is not None:
                self.redis.close()
            self.db.close()

    # -- posts and accounts

    def hide(self, event: str, uri: str, *, who: str, why: str) -> Outcome:
        def apply(db, now):
            db.execute(
                "INSERT INTO moderation_hidden (event, uri, origin, who, at, why) "
                "VALUES (?, ?, 'organizer', ?, ?, ?) ON CONFLICT (event, uri) DO UPDATE SET "
                "who = excluded.who, at = excluded.at, why = excluded.why",
                [event, uri, who, now, why],
            )

        return self._decide(event, "hide", uri, who, why, apply, ("uri = ?", [uri]))

    def unhide(self, event: str, uri: str, *, who: str, why: str) -> Outcome:
        def apply(db, now):
            self._remove(
                db, "moderation_hidden", "uri", event, uri, "hidden post", _why_off(db, event, uri)
            )

        return self._decide(event, "unhide", uri, who, why, apply, ("uri = ?", [uri]))

    def block(self, event: str, account: str, *, who: str, why: str) -> Outcome:
        key = _account(account)

        def apply(db, now):
            db.execute(
                "INSERT INTO moderation_blocks (event, account, origin, who, at, why) "
                "VALUES (?, ?, 'organizer', ?, ?, ?) ON CONFLICT (event, account) DO UPDATE SET "
                "who = excluded.who, at = excluded.at, why = excluded.why",
                [event, key, who, now, why],
            )

        return self._decide(event, "block", key, who, why, apply, _by_account(event, key))

    def unblock(self, event: str, account: str, *, who: str, why: str) -> Outcome:
        key = _account(account)

        def apply(db, now):
            self._remove(db, "moderation_blocks", "account", event, key, "blocked account")

        return self._decide(event, "unblock", key, who, why, apply, _by_account(event, key))

    # -- rules

    def add_rule(
        self, event: str, kind: str, pattern: str, *, action: str = "hide", who: str, why: str
    ) -> Outcome:
        try:
            check_rule(kind, pattern)
        except ValueError as exc:
            raise AfaError(str(exc)) from None
        if action not in ("hide", "hold"):
            raise AfaError(f"a rule's action must be hide or hold, not {action!r}")

        def apply(db, now):
            try:
                db.execute(
                    "INSERT INTO moderation_rules (event, kind, pattern, action, origin, who, at, "
                    "why) VALUES (?, ?, ?, ?, 'organizer', ?, ?, ?)",
                    [event, kind, pattern, action, who, now, why],
                )
            except Exception as exc:  # sqlite3.IntegrityError: the UNIQUE (event, kind, pattern)
                raise AfaError(f"{event} already has the {kind} rule {pattern!r}") from exc

        # A hide rule can only take visible posts down, and only those it matches; a hold rule
        # applies to new posts only.
        scope = _rule_scope(kind, pattern) if action == "hide" else None
        matches = compile_matcher([(kind, pattern)])
        return self._decide(event, "rule add", f"{kind} {pattern!r} {action}", who, why, apply,
                            scope, keep=matches)  # fmt: skip

    def remove_rule(self, event: str, rule_id: int, *, who: str, why: str) -> Outcome:
        row = None
        if 0 <= rule_id < 2**63:  # a number past SQLite's INTEGER would raise, not match
            row = self.db.execute(
                "SELECT kind, pattern, action FROM moderation_rules WHERE event = ? AND id = ?",
                [event, rule_id],
            ).fetchone()
        if row is None:
            raise AfaError(f"{event} has no rule {rule_id}")

        def apply(db, now):
            self._remove(db, "moderation_rules", "id", event, rule_id, "rule")

        target = f"#{rule_id} {row[0]} {row[1]!r} {row[2]}"
        return self._decide(event, "rule remove", target, who, why, apply,
                            ("status = 'moderated'", []))  # fmt: skip

    # -- approve-first

    def set_approve_first(self, event: str, on: bool, *, who: str, why: str) -> Outcome:
        def apply(db, now):
            db.execute(
                "INSERT INTO moderation (event, approve_first, version) VALUES (?, ?, 0) "
                "ON CONFLICT (event) DO UPDATE SET approve_first = excluded.approve_first",
                [event, int(on)],
            )

        action = "approve-first on" if on else "approve-first off"
        return self._decide(event, action, event, who, why, apply, None)

    def approve(
        self, event: str, uris: Iterable[str] | None = None, *, who: str, why: str = ""
    ) -> Outcome:
        """Release held posts (all of them when `uris` is None); they go live oldest first."""
        chosen = self._queued(event, uris)

        def apply(db, now):
            db.execute("DELETE FROM moderation_queue WHERE event = ? AND uri IN "
                       "(SELECT value FROM json_each(?))", [event, json.dumps(chosen)])  # fmt: skip

        scope = ("uri IN (SELECT value FROM json_each(?))", [json.dumps(chosen)])
        return self._decide(event, "approve", _targets(chosen, "approve"), who, why, apply, scope)

    def reject(self, event: str, uris: Iterable[str], *, who: str, why: str) -> Outcome:
        """Hide held posts for good (they leave the queue and never reach the tail)."""
        chosen = self._queued(event, uris)

        def apply(db, now):
            db.execute("DELETE FROM moderation_queue WHERE event = ? AND uri IN "
                       "(SELECT value FROM json_each(?))", [event, json.dumps(chosen)])  # fmt: skip
            db.conn.executemany(
                "INSERT OR IGNORE INTO moderation_hidden (event, uri, origin, who, at, why) "
                "VALUES (?, ?, 'organizer', ?, ?, ?)",
                [(event, uri, who, now, why) for uri in chosen],
            )

        scope = ("uri IN (SELECT value FROM json_each(?))", [json.dumps(chosen)])
        return self._decide(event, "reject", _targets(chosen, "reject"), who, why, apply, scope)

    def _queued(self, event: str, uris: Iterable[str] | None) -> list[str]:
        rows = self.db.execute(
            "SELECT q.uri FROM moderation_queue q JOIN items i ON i.event = q.event AND "
            "i.uri = q.uri WHERE q.event = ? AND i.status = 'held' ORDER BY i.created_at, i.id",
            [event],
        ).fetchall()  # fmt: skip
        queued = [r[0] for r in rows]
        if uris is None:
            return queued
        chosen = list(dict.fromkeys(uris))
        missing = [u for u in chosen if u not in set(queued)]
        if missing:
            raise AfaError(f"not waiting for approval in {event}: {', '.join(missing)}")
        return chosen

    # -- content/<event>/moderation.yaml

    def sync_content(self, event: str, folder: Path | str, *, who: str = "content") -> Outcome:
        """Make the archive's content entries exactly what `folder/moderation.yaml` says."""
        found = load_content_moderation(Path(folder)) or ContentModeration()
        rel = f"{Path(folder).name}/moderation.yaml"
        with write_transaction(self.db):
            now = _now()
            differences = sync_entries(self.db, event, found, who, now)
            if not differences:
                return Outcome("content sync", event, rel)
            _bump(self.db, event)
            changes = refresh(self.db, event, ALL, now)
            for action, target, why in differences:
                _audit(self.db, event, now, who, action, target, why or f"from {rel}", 0)
            _audit(self.db, event, now, who, "content sync", rel,
                   f"{len(differences)} entries changed", len(changes))  # fmt: skip
        return self._after(Outcome("content sync", event, rel, changes))

    # -- the engine

    def _decide(self, event, action, target, who, why, apply, scope, *, keep=None) -> Outcome:
        """Apply a decision and refresh the statuses it touches. With `keep` (a check a post's
        text must pass to be touched at all), the posts an open live page can still show (the
        live tail) are refreshed and published first, and older posts in a second transaction,
        so a rule that has to read every post still reaches live pages at once."""
        if not who or not who.strip():
            raise AfaError("a decision needs who made it")
        older = None
        with write_transaction(self.db):
            now = _now()
            apply(self.db, now)
            _bump(self.db, event)
            if callable(scope):  # worked out inside the transaction, so nothing slips past
                scope = scope(self.db)
            if scope and keep is not None:
                boundary = last_seq(self.db, event) - self.tail_length
                scope, older = _split(scope, boundary)
            changes = refresh(self.db, event, scope, now, keep) if scope else []
            audit = _audit(self.db, event, now, who.strip(), action, target, why or "",
                           len(changes))  # fmt: skip
        outcome = Outcome(action, event, target, changes)
        if older is None:
            return self._after(outcome)
        self._publish(outcome)
        with write_transaction(self.db):
            more = refresh(self.db, event, older, now, keep)
            if more:
                self.db.execute("UPDATE moderation_audit SET changes = changes + ? WHERE id = ?",
                                [len(more), audit])  # fmt: skip
        outcome.changes += more
        return self._after(outcome)

    def _after(self, outcome: Outcome) -> Outcome:
        if not outcome.changes:
            return outcome
        self._publish(outcome)
        outcome.rebuild = request_rebuild(
            self.db, outcome.event, f"{outcome.action} {outcome.target}",
            outcome.changes[-1].seq,
        )  # fmt: skip
        return outcome

    def _publish(self, outcome: Outcome) -> None:
        if self.redis is None or not outcome.changes:
            return
        try:
            outcome.published += publish_pending(
                self.redis, self.db, outcome.event, self.tail_length
            )
        except redis_lib.RedisError as exc:
            log.warning("moderation %s: not published: %s", outcome.action, exc)
            outcome.redis_error = str(exc) or type(exc).__name__

    def _remove(
        self, db, table: str, column: str, event: str, value: Any, what: str, more: str = ""
    ) -> None:
        row = db.execute(f"SELECT origin FROM {table} WHERE event = ? AND {column} = ?",
                         [event, value]).fetchone()  # fmt: skip
        if row is None:
            raise AfaError(f"{event} has no {what} {value}{more}")
        if row[0] == "content":
            raise AfaError(f"{what} {value} comes from content/{event}/moderation.yaml: "
                           "remove it there (and run `python -m collector moderation-sync`)")  # fmt: skip
        db.execute(f"DELETE FROM {table} WHERE event = ? AND {column} = ?", [event, value])


def _bump(db, event: str) -> None:
    db.execute(
        "INSERT INTO moderation (event, approve_first, version) VALUES (?, 0, 1) "
        "ON CONFLICT (event) DO UPDATE SET version = version + 1",
        [event],
    )


def _audit(db, event, now, who, action, target, why, changes: int) -> int:
    return db.execute(
        "INSERT INTO moderation_audit (event, at, who, action, target, why, changes) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [event, now, who, action, target, why, changes],
    ).lastrowid


def _account(account: str) -> str:
    key = account_key(account)
    if not key:
        raise AfaError("an account to block needs an author id or a handle")
    return key


def _by_account(event: str, key: str):
    """A scope: the items of the authors whose id or handle is `key`. The authors are found
    through the (event, author_id) index, one stored post each, not by reading every post."""

    def scope(db) -> tuple[str, list]:
        firsts = db.execute(
            "SELECT author_id, min(id) FROM items WHERE event = ? GROUP BY author_id", [event]
        ).fetchall()
        handles = db.execute(
            "SELECT author_id, json_extract(data, '$.author.handle') FROM items WHERE id IN "
            "(SELECT value FROM json_each(?))",
            [json.dumps([first for _a, first in firsts])],
        ).fetchall()
        found = [a for a, h in handles if key in (account_key(a), account_key(h))]
        return "author_id IN (SELECT value FROM json_each(?))", [json.dumps(found)]

    return scope


def _rule_scope(kind: str, pattern: str) -> tuple[str, list]:
    """A scope for a new hide rule: the visible posts, narrowed for a keyword by a LIKE that every
    post it matches also passes (each word, with i, k and s as wildcards since Python's
    ignore-case also folds İ ı K ſ onto them), so the scan reads few posts' JSON."""
    where, params = "status = 'visible'", []
    words = pattern.split() if kind == "keyword" else []
    if all(w.isascii() and w.isprintable() and not set(w) & set('"\\') for w in words):
        for word in words:
            where += " AND data LIKE ? ESCAPE '\\'"
            params.append("%" + "".join(_like_char(c) for c in word) + "%")
    return where, params


def _split(scope: tuple[str, list], boundary: int) -> tuple[tuple[str, list], tuple[str, list]]:
    """A scope cut at a sequence number: the live tail's posts, and the older ones."""
    where, params = scope
    return (f"({where}) AND seq > ?", [*params, boundary]), (
        f"({where}) AND seq <= ?", [*params, boundary])  # fmt: skip


def _like_char(char: str) -> str:
    if char in "iksIKS":
        return "_"
    return "\\" + char if char in "%_" else char


def _why_off(db, event: str, uri: str) -> str:
    found = reasons(db, event, uri)
    return f" (it is kept off by: {'; '.join(found)})" if found else ""


def _targets(uris: list[str], verb: str) -> str:
    if not uris:
        raise AfaError(f"nothing to {verb}: the approval queue is empty")
    return uris[0] if len(uris) == 1 else f"{len(uris)} posts"


def _now() -> str:
    return format_time(datetime.now(UTC))
