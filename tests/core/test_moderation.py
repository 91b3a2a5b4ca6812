"""core/moderation (rules, content) and core/rebuild.py: what rules match, the Gate,
moderation.yaml, rebuild requests."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.archive import open_archive
from core.errors import AfaError, ContentErrors
from core.items import Author, Item, Media, item_to_dict
from core.moderation.content import ContentModeration, load_content_moderation
from core.moderation.decisions import Moderator
from core.moderation.rules import (
    MATCH_COLUMNS_SQL,
    Gate,
    check_rule,
    compile_matcher,
    compile_rule,
    item_match_text,
    load_gate,
    match_text,
)
from core.rebuild import newer_request, rebuild_request, request_rebuild

ROOT = Path(__file__).resolve().parents[2]


def post(uri="u1", text="hello", handle="@ana@example.social", source="mastodon", **kw) -> Item:
    author = Author(id=f"https://example.social/users/{handle.split('@')[1]}", handle=handle,
                    name=kw.pop("name", "Ana"))  # fmt: skip
    return Item(uri=uri, source=source, origin="example.social", local_id=uri, url="",
                created_at=datetime(2026, 10, 24, 9, tzinfo=UTC), author=author, text=text, **kw)  # fmt: skip


@pytest.mark.parametrize(
    "kind,pattern,text,hit",
    [
        ("keyword", "crypto", "Free CRYPTO here", True),
        ("keyword", "crypto", "cryptography talk", False),
        ("keyword", "free crypto", "get free\n  crypto now", True),
        ("keyword", "c++", "I like C++ a lot", True),
        ("pattern", r"bit\.ly/\w+", "see https://BIT.LY/abc", True),
        ("pattern", r"^spam", "not spam", False),
    ],
)
def test_rules_match_whole_words_and_patterns_ignoring_case(kind, pattern, text, hit):
    assert bool(compile_rule(kind, pattern).search(text)) is hit


def test_bad_rules_are_refused_with_the_reason():
    with pytest.raises(ValueError, match=r"not a regular expression: '\(unclosed': missing \)"):
        compile_rule("pattern", "(unclosed")
    with pytest.raises(ValueError, match="keyword or pattern, not 'regex'"):
        compile_rule("regex", "x")
    with pytest.raises(ValueError, match="non-empty"):
        compile_rule("keyword", "  ")


@pytest.mark.parametrize("pattern", [r"(a+)+$", r"(\w+\s?)+$", r"(x*y?)*z", r"((ab)+c)*d"])
def test_a_pattern_with_nested_repetition_is_refused_when_added(pattern, tmp_path):
    with pytest.raises(ValueError, match="nested repetition"):
        check_rule("pattern", pattern)
    with pytest.raises(AfaError, match="nested repetition"):
        Moderator(open_archive(tmp_path / "a.db")).add_rule("ev", "pattern", pattern, who="a",
                                                            why="b")  # fmt: skip


@pytest.mark.parametrize("pattern", [r"bit\.ly/\w+", r"(foo|bar)+", r"(\d{1,3}\.){3}\d+", r"a++b"])
def test_ordinary_patterns_pass_the_check(pattern):
    check_rule("pattern", pattern)


RUNAWAY = """
import sys
from core.archive import open_archive
from collector.store import save_batch
from core.moderation import queries
from datetime import UTC, datetime
from core.items import Author, Item
def post(uri, text):
    return Item(uri=uri, source="mastodon", origin="x", local_id=uri, url="", text=text,
                created_at=datetime(2026, 10, 24, 9, tzinfo=UTC), author=Author(id="a"))
db = open_archive(sys.argv[1])
# (a|aa)+$ passes the check (no nested repetition) yet backtracks without end on a run of a's;
# a rule stored before the check existed is not checked either
db.execute("INSERT INTO moderation (event, approve_first, version) VALUES ('ev', 0, 1)")
db.execute("INSERT INTO moderation_rules (event, kind, pattern, action, origin, who, at, why) "
           "VALUES ('ev', 'pattern', '(a|aa)+$', 'hide', 'organizer', 'a', 't', 'b')")
crafted, fine = post("u1", "a" * 5000 + "!"), post("u2", "hello")
save_batch(db, "ev", [crafted, fine], "s", None)
print(*db.execute("SELECT status FROM items ORDER BY id").fetchall())
print(queries.reasons(db, "ev", "u1"))
"""


def test_a_runaway_rule_does_not_stall_the_save_path(tmp_path):
    """A crafted post against a rule that backtracks without end: the search stops at its time
    limit (CPU time) and the rule counts as matching, so the post is kept off. Run in a child
    process, so the old engine's endless search fails the test instead of hanging it."""
    result = subprocess.run([sys.executable, "-c", RUNAWAY, str(tmp_path / "a.db")], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    statuses, reasons = result.stdout.splitlines()
    assert statuses == "('moderated',) ('visible',)"
    assert "took too long" in reasons and "rule #1" in reasons


def test_one_matcher_for_many_rules():
    match = compile_matcher([("keyword", "spam"), ("keyword", "scam"), ("pattern", r"\d{4}-\d{4}")])
    assert match("a SCAM") and match("call 1234-5678") and not match("spammer of words")
    assert compile_matcher([]) is None


@pytest.mark.parametrize(
    "patterns,text,hit",
    [
        ([r"(q)x", r"(\w)\1\1"], "aaa", True),  # back-references keep their numbers
        ([r"(q)x", r"(\w)\1\1"], "abc", False),
        ([r"(?s)a.b", "x"], "a\nb", True),  # global flags: each on its own
        (["^start", "end$"], "the end", True),
    ],
)
def test_patterns_keep_their_meaning_together(patterns, text, hit):
    assert compile_matcher([("pattern", p) for p in patterns])(text) is hit


def test_a_rule_sees_text_warning_author_name_and_alt_texts(archive):
    item = post(text="body", spoiler="cw words", name="Display Name",
                media=(Media("image", "https://x/1.jpg", alt="alt one"),
                       Media("image", "https://x/2.jpg", alt="alt two")))  # fmt: skip
    archive.execute("CREATE TABLE t (data TEXT)")
    archive.execute("INSERT INTO t VALUES (?)", [json.dumps(item_to_dict(item))])
    stored = archive.execute(f"SELECT {MATCH_COLUMNS_SQL} FROM t").fetchone()
    assert (
        match_text(*stored)
        == item_match_text(item)
        == "body\ncw words\nDisplay Name\nalt one alt two"
    )


def test_gate_decides_a_new_posts_status():
    gate = Gate(approve_first=False, hidden=frozenset({"gone"}), blocked=frozenset({"bad@x.social"}),
                hide=compile_matcher([("keyword", "spam")]), hold=compile_matcher([("keyword", "link")]))  # fmt: skip
    assert gate.admit(post()) == ("visible", None)
    assert gate.admit(post(uri="gone")) == ("moderated", None)
    assert gate.admit(post(handle="@BAD@x.social")) == ("moderated", None)
    assert gate.admit(post(text="pure SPAM")) == ("moderated", None)
    assert gate.admit(post(text="a link")) == ("held", "rule")
    assert gate.admit(post(text="spam link")) == ("moderated", "rule")  # queued, and hidden too
    # organizer notes answer only to an explicit hide
    assert gate.admit(post(text="spam link", source="note")) == ("visible", None)
    assert gate.admit(post(uri="gone", source="note")) == ("moderated", None)
    held = Gate(approve_first=True)
    assert held.admit(post()) == ("held", "approve-first")


def test_no_moderation_means_no_gate(archive):
    assert load_gate(archive, "ev") is None
    archive.execute("INSERT INTO moderation (event, approve_first, version) VALUES ('ev', 0, 3)")
    assert load_gate(archive, "ev") is None  # a row, but nothing in it
    archive.execute("INSERT INTO moderation_blocks VALUES ('ev', 'x', 'organizer', 'me', 't', '')")
    assert load_gate(archive, "ev").blocked == {"x"}


def test_content_file_is_read(tmp_path):
    (tmp_path / "moderation.yaml").write_text(
        "approve_first: true\n"
        "rules:\n"
        "  - keyword: free crypto\n"
        "    why: spam\n"
        "  - pattern: 'bit\\.ly/'\n"
        "    action: hold\n"
        "hidden:\n"
        "  - uri: https://example.social/users/a/statuses/1\n"
        "    why: personal data\n"
        "  - https://example.social/users/a/statuses/2\n"
        "blocked:\n"
        "  - account: '@Spammer@Example.social'\n"
    )
    assert load_content_moderation(tmp_path) == ContentModeration(
        approve_first=True,
        rules=(("keyword", "free crypto", "hide", "spam"), ("pattern", r"bit\.ly/", "hold", "")),
        hidden=(("https://example.social/users/a/statuses/1", "personal data"),
                ("https://example.social/users/a/statuses/2", "")),
        blocked=(("spammer@example.social", ""),),
    )  # fmt: skip
    assert load_content_moderation(tmp_path / "nothing") is None


def test_content_mistakes_are_reported_with_file_and_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "moderation.yaml").write_text(
        "approve_first: yes please\n"
        "rules:\n"
        "  - keyword: a\n"
        "    pattern: b\n"
        "  - pattern: '(oops'\n"
        "  - keyword: fine\n"
        "    action: delete\n"
        "  - pattern: '(a+)+$'\n"
        "blocks: []\n"
    )
    with pytest.raises(ContentErrors) as caught:
        load_content_moderation(tmp_path)
    assert str(caught.value).splitlines() == [
        "moderation.yaml:9: unknown key 'blocks' (known: approve_first, blocked, hidden, rules)",
        "moderation.yaml:1: 'approve_first' must be bool, not 'yes please'",
        "moderation.yaml:3: a rule needs exactly one of 'keyword' or 'pattern'",
        "moderation.yaml:5: not a regular expression: '(oops': missing ) at position 5",
        "moderation.yaml:7: 'action' must be hide or hold, not 'delete'",
        "moderation.yaml:8: pattern '(a+)+$' has a nested repetition (a repeated group that "
        "itself repeats without bound, like (a+)+ or (\\w+\\s?)*): it can take exponential time on "
        "a crafted post; write it without the nesting",
    ]


def test_rebuild_requests_are_numbered_rows_of_the_archive(tmp_path):
    db = open_archive(tmp_path / "a.db")
    assert rebuild_request(db, "ev") is None and newer_request(db, "ev", 0) is None
    assert request_rebuild(db, "ev", "hide x", 7) == 1
    assert request_rebuild(db, "ev", "block y", 9) == 2  # a newer request replaces the older
    assert request_rebuild(db, "other", "hide z", 3) == 1
    request = newer_request(db, "ev", 0)
    assert (request.event, request.number, request.reason, request.last_seq) == (
        "ev", 2, "block y", 9)  # fmt: skip
    assert newer_request(db, "ev", 2) is None  # the scheduler has seen it
    assert request_rebuild(db, "ev", "unhide x", 10) == 3  # one made during that rebuild
    assert newer_request(db, "ev", 2).number == 3
    db.close()


def test_pinned_posts_are_found_by_key_not_by_walking_the_event(tmp_path):
    """Reading the pins costs the pins, not the archive: pins drive the look-up of each post."""
    from core.moderation.pins import PINNED_SQL

    db = open_archive(tmp_path / "archive.db")
    plan = " | ".join(r[3] for r in db.execute("EXPLAIN QUERY PLAN " + PINNED_SQL, ["e"]))
    assert plan.startswith("SEARCH p "), plan
    assert "SEARCH i USING INDEX sqlite_autoindex_items_1 (event=? AND uri=?)" in plan, plan
