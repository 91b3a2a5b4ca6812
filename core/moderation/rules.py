"""What a rule matches, and the Gate: an event's moderation as one precompiled check.

What a rule sees: the post's plain text, its content warning, its author's display name and its
media's alt texts, joined by newlines (`match_text`). A `keyword` rule matches a whole word or
phrase, ignoring case; a `pattern` rule is a regular expression (the `regex` package, Python's
syntax and more) searched ignoring case, with a time limit: a new pattern with a nested
repetition is refused (`check_rule`), and a search that runs out of time counts as a match.
A rule's action is `hide` (the post is moderated, now and later) or `hold` (a new post matching
it waits in the approval queue even when approve-first is off; posts already shown stay).

Accounts are blocked by author id (an account URI, a DID, a Flickr NSID) or by handle, compared
without a leading '@' and ignoring case (`account_key`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from re import _constants as re_constants
from re import _parser as re_parser

import regex
import sqlite_utils

from ..items import Item

RULE_KINDS = ("keyword", "pattern")
RULE_ACTIONS = ("hide", "hold")
Matcher = Callable[[str], bool]
Compiled = re.Pattern[str] | regex.Pattern
RULE_SECONDS = 0.05  # CPU time one pattern search may take on one post (the save path waits)
log = logging.getLogger("core.moderation")


def match_text(text: str, spoiler: str, name: str, alts: str) -> str:
    """The text a rule is matched against (the same for a new Item and a stored row)."""
    return "\n".join((text or "", spoiler or "", name or "", alts or ""))


def item_match_text(item: Item) -> str:
    return match_text(
        item.text, item.spoiler, item.author.name, " ".join(m.alt for m in item.media)
    )


# The same four fields read from a stored item in SQL, for decisions that scan the archive.
MATCH_COLUMNS_SQL = (
    "json_extract(data, '$.text'), json_extract(data, '$.spoiler'), "
    "json_extract(data, '$.author.name'), "
    "(SELECT group_concat(json_extract(m.value, '$.alt'), ' ') FROM json_each(data, '$.media') m)"
)


def account_key(account: str | None) -> str:
    return (account or "").strip().lstrip("@").casefold()


def compile_rule(kind: str, pattern: str) -> Compiled:
    """The compiled form of one rule; ValueError names what is wrong. A keyword is a literal
    (Python's re); a pattern is compiled by the `regex` package, whose searches take a time
    limit (`rule_hits`)."""
    if kind not in RULE_KINDS:
        raise ValueError(f"rule kind must be keyword or pattern, not {kind!r}")
    if not pattern.strip():
        raise ValueError("a rule needs a non-empty keyword or pattern")
    if kind == "keyword":
        return re.compile(rf"(?<!\w)(?:{_keyword(pattern)})(?!\w)", re.IGNORECASE)
    try:
        return regex.compile(pattern, regex.IGNORECASE)
    except regex.error as exc:
        raise ValueError(f"not a regular expression: {pattern!r}: {exc}") from None


def check_rule(kind: str, pattern: str) -> None:
    """What a new rule must pass (the CLI, the dashboard, moderation.yaml): it compiles, and a
    pattern repeats no repetition (like `(a+)+`), the shape that backtracks for ages on a crafted
    post. Rules already stored are not checked again; the time limit holds them."""
    compile_rule(kind, pattern)
    if kind == "pattern" and _nested_repetition(pattern):
        raise ValueError(
            f"pattern {pattern!r} has a nested repetition (a repeated group that itself repeats "
            "without bound, like (a+)+ or (\\w+\\s?)*): it can take exponential time on a "
            "crafted post; write it without the nesting"
        )


def rule_hits(compiled: Compiled, text: str) -> bool | None:
    """Whether one compiled rule matches `text`; None when a pattern's search ran out of its
    CPU time (RULE_SECONDS)."""
    if isinstance(compiled, re.Pattern):
        return compiled.search(text) is not None
    try:
        return compiled.search(text, timeout=RULE_SECONDS) is not None
    except TimeoutError:
        return None


def _keyword(text: str) -> str:
    return r"\s+".join(re.escape(w) for w in text.split())


def compile_matcher(rules: list[tuple[str, str]]) -> Matcher | None:
    """One check for many (kind, pattern) rules: the keywords as one expression with the word
    boundaries outside the alternation (many times faster than a boundary per keyword), the
    patterns as one more when they combine safely (none has groups a back-reference could
    count, none has global flags); otherwise each pattern on its own. A pattern search that
    runs out of time counts as a match: the post is kept off rather than the collector held up."""
    if not rules:
        return None
    for kind, pattern in rules:
        if kind != "pattern":
            compile_rule(kind, pattern)  # each one valid on its own, or ValueError
    keywords = [_keyword(p) for kind, p in rules if kind == "keyword"]
    patterns = [p for kind, p in rules if kind == "pattern"]
    compiled: list[Compiled] = []
    if keywords:
        compiled.append(re.compile(rf"(?<!\w)(?:{'|'.join(keywords)})(?!\w)", re.IGNORECASE))
    alone = [compile_rule("pattern", p) for p in patterns]
    plain = regex.compile("", regex.IGNORECASE).flags
    if len(alone) > 1 and all(c.groups == 0 and c.flags == plain for c in alone):
        try:  # no group numbers to shift, no global flag to spread to the others
            alone = [regex.compile("|".join(f"(?:{p})" for p in patterns), regex.IGNORECASE)]
        except regex.error:
            pass
    checks = [_check(c) for c in compiled + alone]
    if len(checks) == 1:
        return checks[0]
    return lambda text: any(check(text) for check in checks)


def _check(compiled: Compiled) -> Matcher:
    if isinstance(compiled, re.Pattern):
        search = compiled.search
        return lambda text: search(text) is not None

    def check(text: str) -> bool:
        hit = rule_hits(compiled, text)
        if hit is None:
            log.warning("a pattern rule ran past %s s of CPU on one post: counted as a match "
                        "(pattern %.80r)", RULE_SECONDS, compiled.pattern)  # fmt: skip
            return True
        return hit

    return check


def _nested_repetition(pattern: str) -> bool:
    """True when the pattern repeats a repetition without bound (star height two), read with
    the standard library's parser; a pattern only `regex` reads is left to the time limit."""
    try:
        tree = re_parser.parse(pattern, re.IGNORECASE)
    except (re.error, OverflowError, RecursionError):
        return False
    return _repeats_a_repeat(tree, repeated=False)


def _repeats_a_repeat(items, repeated: bool) -> bool:
    for op, av in items:
        if op in (re_constants.ATOMIC_GROUP, re_constants.POSSESSIVE_REPEAT):
            continue  # gives nothing back to backtrack into
        if op in (re_constants.MAX_REPEAT, re_constants.MIN_REPEAT):
            _low, high, sub = av
            if repeated and high == re_constants.MAXREPEAT:
                return True
            if _repeats_a_repeat(sub, repeated or high > 1):
                return True
        elif any(_repeats_a_repeat(child, repeated) for child in _subpatterns(av)):
            return True
    return False


def _subpatterns(value):
    if isinstance(value, re_parser.SubPattern):
        yield value
    elif isinstance(value, tuple | list):
        for part in value:
            yield from _subpatterns(part)


@dataclass(frozen=True)
class Gate:
    """An event's moderation as one precompiled check, built by `load_gate`."""

    approve_first: bool = False
    hidden: frozenset[str] = frozenset()
    blocked: frozenset[str] = frozenset()
    hide: Matcher | None = None
    hold: Matcher | None = None

    def suppresses(self, uri: str, author_id: str, handle: str, text: str) -> bool:
        """True when a decision or a hide rule keeps this post off pages and the live tail."""
        return (
            uri in self.hidden
            or (bool(self.blocked) and (account_key(author_id) in self.blocked
                                        or account_key(handle) in self.blocked))
            or (self.hide is not None and self.hide(text))
        )  # fmt: skip

    def holds(self, text: str) -> str | None:
        """Why a new post waits for approval, or None."""
        if self.hold is not None and self.hold(text):
            return "rule"
        return "approve-first" if self.approve_first else None

    def status_of(self, uri: str, author_id: str, handle: str, text: str, *, queued: bool,
                  note: bool = False) -> str:  # fmt: skip
        """moderated, held or visible. Organizer notes answer only to an explicit hide."""
        if note:
            return "moderated" if uri in self.hidden else "visible"
        if self.suppresses(uri, author_id, handle, text):
            return "moderated"
        return "held" if queued else "visible"

    def edit_suppressed(self, item: Item) -> bool:
        """True when a new version of a visible post must be taken down (a hide rule, a block)."""
        if item.source == "note":
            return item.uri in self.hidden
        return self.suppresses(item.uri, item.author.id, item.author.handle, item_match_text(item))

    def admit(self, item: Item) -> tuple[str, str | None]:
        """(status, hold reason) for a newly collected item."""
        note = item.source == "note"
        text = "" if note else item_match_text(item)
        held = None if note else self.holds(text)
        status = self.status_of(item.uri, item.author.id, item.author.handle, text,
                                queued=held is not None, note=note)  # fmt: skip
        return status, held


def load_gate(db: sqlite_utils.Database, event: str) -> Gate | None:
    """The event's Gate, or None when it has no moderation at all (the save path skips it)."""
    row = db.execute("SELECT approve_first FROM moderation WHERE event = ?", [event]).fetchone()
    if row is None:
        return None
    hidden = {
        r[0] for r in db.execute("SELECT uri FROM moderation_hidden WHERE event = ?", [event])
    }
    blocked = {
        r[0] for r in db.execute("SELECT account FROM moderation_blocks WHERE event = ?", [event])
    }
    rules = {"hide": [], "hold": []}
    for kind, pattern, action in db.execute(
        "SELECT kind, pattern, action FROM moderation_rules WHERE event = ? ORDER BY id", [event]
    ):
        rules[action].append((kind, pattern))
    if not (row[0] or hidden or blocked or rules["hide"] or rules["hold"]):
        return None
    return Gate(bool(row[0]), frozenset(hidden), frozenset(blocked),
                compile_matcher(rules["hide"]), compile_matcher(rules["hold"]))  # fmt: skip


def moderation_version(db: sqlite_utils.Database, event: str) -> int | None:
    row = db.execute("SELECT version FROM moderation WHERE event = ?", [event]).fetchone()
    return row[0] if row else None
