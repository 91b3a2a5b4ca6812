"""core/moderation/decisions.py against a real SQLite archive and a real redis-server: every decision
reaches the Redis stream as a change with the event's next sequence number."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import pytest
import redis as redis_lib

from collector.normalise import Delete
from collector.publish import publish_after_commit
from collector.sources.mastodon import parse_status
from collector.store import save_batch
from core import rebuild
from core.archive import archive_state, changes_after, last_seq, open_archive, visible_items
from core.errors import AfaError
from core.moderation import queries
from core.moderation.decisions import Moderator
from core.redisd import free_port
from core.stream import publish_pending
from core.tail import decode_entry, seq_of, stream_key

from .conftest import T0, iso, mastodon_status

EVENT = "northwind-2026"
TAIL = 10_000


def post(k: int, author: int | None = None, text: str | None = None, minute: int | None = None):
    status = mastodon_status(k)
    if author is not None:
        status["account"] = mastodon_status(author)["account"]
    if text is not None:
        status["content"] = f"<p>{text}</p>"
    if minute is not None:
        status["created_at"] = iso(T0 + timedelta(minutes=minute))
    return parse_status(status, "mastodon.social")


def collect(db, redis, items) -> list[int]:
    """What a collector does with a batch: save it, then publish it after the commit."""
    committed = save_batch(db, EVENT, items, "src", None)
    publish_after_commit(redis, db, EVENT, committed, TAIL)
    return [c.seq for c in committed]


def stream(redis) -> list[tuple[int, str, str]]:
    """(seq, kind, uri) of every entry in the event's stream."""
    out = []
    for entry_id, fields in redis.xrange(stream_key(EVENT)):
        kind, data = decode_entry(fields)
        out.append((seq_of(entry_id), kind, json.loads(data)["uri"]))
    return out


def visible(db) -> list[str]:
    return [i.uri for i in visible_items(db, EVENT)]


@pytest.fixture
def mod(archive, redis_client):
    return Moderator(archive, redis_client, tail_length=TAIL)


def test_hide_retracts_live_and_unhide_posts_again(archive, redis_client, mod, tmp_path):
    a, b = post(1), post(2)
    collect(archive, redis_client, [a, b])
    before = archive_state(archive, EVENT)
    outcome = mod.hide(EVENT, a.uri, who="ana", why="personal data")
    assert [(c.seq, c.kind, c.uri) for c in outcome.changes] == [(3, "retract", a.uri)]
    assert stream(redis_client)[-1] == (3, "retract", a.uri)
    assert outcome.published == 1 and outcome.redis_error is None
    assert visible(archive) == [b.uri]
    assert archive_state(archive, EVENT) != before
    request = rebuild.rebuild_request(archive, EVENT)
    assert (request.number, request.last_seq, request.reason) == (1, 3, f"hide {a.uri}")

    outcome = mod.unhide(EVENT, a.uri, who="ana", why="mistake")
    assert stream(redis_client)[-1] == (4, "post", a.uri)
    payload = json.loads(decode_entry(redis_client.xrange(stream_key(EVENT))[-1][1])[1])
    assert payload["item"]["html"] == a.html and payload["seq"] == 4
    assert visible(archive) == [a.uri, b.uri]
    assert [(e.who, e.action, e.why, e.changes) for e in queries.audit_log(archive, EVENT)] == [
        ("ana", "unhide", "mistake", 1),
        ("ana", "hide", "personal data", 1),
    ]


def test_a_post_hidden_before_it_arrives_never_reaches_the_tail(archive, redis_client, mod):
    a = post(1)
    assert mod.hide(EVENT, a.uri, who="ana", why="reported").changes == []
    assert collect(archive, redis_client, [a, post(2)]) == [1]
    assert stream(redis_client) == [(1, "post", post(2).uri)]
    assert archive.execute("SELECT status FROM items WHERE uri = ?", [a.uri]).fetchone() == (
        "moderated",
    )


def test_block_takes_past_posts_down_and_keeps_future_ones_off(archive, redis_client, mod):
    mine = [post(1, author=7, minute=2), post(2, author=7, minute=1)]
    other = post(3)
    collect(archive, redis_client, [*mine, other])
    outcome = mod.block(EVENT, "@User7@mastodon.social", who="ana", why="spam")
    # oldest first: post 2 was written before post 1
    assert [(c.kind, c.uri) for c in outcome.changes] == [
        ("retract", mine[1].uri),
        ("retract", mine[0].uri),
    ]
    later = post(4, author=7, minute=3)
    assert collect(archive, redis_client, [later, post(5)]) == [6]
    uris_live = {u for _s, kind, u in stream(redis_client) if kind == "post"}
    assert later.uri not in uris_live
    assert visible(archive) == [other.uri, post(5).uri]
    outcome = mod.unblock(EVENT, "user7@mastodon.social", who="ana", why="appeal")
    assert [(c.kind, c.uri) for c in outcome.changes] == [
        ("post", mine[1].uri),
        ("post", mine[0].uri),
        ("post", later.uri),
    ]
    assert [s for s, _k, _u in stream(redis_client)] == list(range(1, last_seq(archive, EVENT) + 1))


def test_block_by_account_id(archive, redis_client, mod):
    a = post(1)
    collect(archive, redis_client, [a])
    assert len(mod.block(EVENT, a.author.id, who="ana", why="spam").changes) == 1


def test_keyword_rule_now_and_later_and_an_edit_that_breaks_it(archive, redis_client, mod):
    spam, fine = post(1, text="Get FREE crypto now"), post(2, text="Great talk")
    collect(archive, redis_client, [spam, fine])
    outcome = mod.add_rule(EVENT, "keyword", "free crypto", who="ana", why="spam")
    assert [(c.kind, c.uri) for c in outcome.changes] == [("retract", spam.uri)]
    assert collect(archive, redis_client, [post(3, text="free crypto again")]) == []
    # an edit that adds the phrase takes the post down, live
    edited = post(2, text="Great talk, free crypto inside")
    edited = edited.__class__(**{**edited.__dict__, "edited_at": T0 + timedelta(hours=1)})
    assert collect(archive, redis_client, [edited]) == [4]
    assert stream(redis_client)[-1] == (4, "retract", fine.uri)
    assert visible(archive) == []
    rule_id = queries.rules(archive, EVENT)[0].id
    outcome = mod.remove_rule(EVENT, rule_id, who="ana", why="too broad")
    assert [c.kind for c in outcome.changes] == ["post", "post", "post"]
    assert len(visible(archive)) == 3


def test_a_pattern_rule_takes_the_live_tails_posts_down_first(archive, redis_client, tmp_path):
    """A rule that must read every post retracts what open live pages can show (the tail) in a
    first transaction and publishes it, then the older posts; one audit entry counts them all."""
    mod = Moderator(archive, redis_client, tail_length=3)
    texts = ["spam1 here", "fine", "fine", "spam4 here", "fine", "fine", "spam7 here", "fine"]
    items = [post(k, text=text) for k, text in enumerate(texts, start=1)]
    collect(archive, redis_client, items)
    outcome = mod.add_rule(EVENT, "pattern", r"spam\d\b", who="ana", why="spam")
    assert [(c.seq, c.kind, c.uri) for c in outcome.changes] == [
        (9, "retract", items[6].uri), (10, "retract", items[0].uri), (11, "retract", items[3].uri)
    ]  # fmt: skip
    assert stream(redis_client)[-3:] == [(c.seq, c.kind, c.uri) for c in outcome.changes]
    assert len(visible(archive)) == 5
    assert queries.audit_log(archive, EVENT)[0].changes == 3
    assert outcome.rebuild is not None


def test_hold_rule_sends_new_matching_posts_to_the_queue(archive, redis_client, mod):
    mod.add_rule(EVENT, "pattern", r"bit\.ly/", action="hold", who="ana", why="links")
    held, fine = post(1, text="see bit.ly/xyz"), post(2)
    assert collect(archive, redis_client, [held, fine]) == [1]
    assert [(h.uri, h.reason) for h in queries.queue(archive, EVENT)] == [(held.uri, "rule")]


def test_approve_first_holds_then_delivers_in_order(archive, redis_client, mod):
    collect(archive, redis_client, [post(1)])
    mod.set_approve_first(EVENT, True, who="ana", why="Q&A")
    # arrivals in an order that is not the order they were written
    late, early, middle = post(2, minute=30), post(3, minute=10), post(4, minute=20)
    assert collect(archive, redis_client, [late]) == []
    assert collect(archive, redis_client, [early, middle]) == []
    assert [s for s, _k, _u in stream(redis_client)] == [1]
    assert [h.uri for h in queries.queue(archive, EVENT)] == [early.uri, middle.uri, late.uri]
    assert queries.queue_length(archive, EVENT) == 3
    outcome = mod.approve(EVENT, None, who="ana")
    assert stream(redis_client)[1:] == [
        (2, "post", early.uri),
        (3, "post", middle.uri),
        (4, "post", late.uri),
    ]
    assert outcome.published == 3 and queries.queue(archive, EVENT) == []
    # still on: the next ones wait too; one approved, one rejected for good
    one, two = post(5, minute=40), post(6, minute=41)
    collect(archive, redis_client, [one, two])
    mod.approve(EVENT, [two.uri], who="ana")
    mod.reject(EVENT, [one.uri], who="ana", why="off topic")
    assert stream(redis_client)[-1] == (5, "post", two.uri)
    assert one.uri not in visible(archive) and queries.queue(archive, EVENT) == []
    with pytest.raises(AfaError, match="not waiting for approval"):
        mod.approve(EVENT, [one.uri], who="ana")
    # off: new posts flow again; notes from organizers were never held
    mod.set_approve_first(EVENT, False, who="ana", why="Q&A over")
    assert collect(archive, redis_client, [post(7)]) == [6]


def test_a_held_post_deleted_at_the_source_leaves_the_queue(archive, redis_client, mod):
    mod.set_approve_first(EVENT, True, who="ana", why="")
    a = post(1)
    collect(archive, redis_client, [a])
    collect(archive, redis_client, [Delete(origin=a.origin, local_id=a.local_id, uri=a.uri)])
    assert queries.queue(archive, EVENT) == []
    with pytest.raises(AfaError, match="the approval queue is empty"):
        mod.approve(EVENT, None, who="ana")


def test_a_held_post_of_a_blocked_account_stays_held_after_unblock(archive, redis_client, mod):
    mod.set_approve_first(EVENT, True, who="ana", why="")
    a = post(1, author=9)
    collect(archive, redis_client, [a])
    mod.block(EVENT, "user9@mastodon.social", who="ana", why="")
    assert queries.queue(archive, EVENT) == []  # moderated: not shown as waiting
    assert mod.unblock(EVENT, "user9@mastodon.social", who="ana", why="").changes == []
    assert [h.uri for h in queries.queue(archive, EVENT)] == [a.uri]


def test_decision_publishes_a_collectors_unpublished_batch_in_order(archive, redis_client, mod):
    collect(archive, redis_client, [post(1)])
    committed = save_batch(archive, EVENT, [post(2), post(3)], "src", None)  # not published yet
    mod.hide(EVENT, post(1).uri, who="ana", why="x")
    assert [s for s, _k, _u in stream(redis_client)] == [1, 2, 3, 4]
    # the collector publishing its batch late adds nothing and breaks nothing
    assert publish_after_commit(redis_client, archive, EVENT, committed, TAIL) == 0
    assert [s for s, _k, _u in stream(redis_client)] == [1, 2, 3, 4]


def test_with_redis_away_the_decision_stands_and_is_published_later(
    archive, redis_client, tmp_path
):
    a = post(1)
    collect(archive, redis_client, [a])
    away = redis_lib.Redis(port=free_port(), socket_connect_timeout=0.5)
    outcome = Moderator(archive, away).hide(EVENT, a.uri, who="ana", why="x")
    away.close()
    assert outcome.redis_error and outcome.published == 0
    assert "not live yet" in outcome.summary()
    assert visible(archive) == []
    assert publish_pending(redis_client, archive, EVENT, TAIL) == 1
    assert stream(redis_client)[-1] == (2, "retract", a.uri)


def test_mistakes_are_clear_errors(archive, mod):
    with pytest.raises(AfaError, match="has no hidden post u"):
        mod.unhide(EVENT, "u", who="ana", why="")
    with pytest.raises(AfaError, match="has no rule 42"):
        mod.remove_rule(EVENT, 42, who="ana", why="")
    with pytest.raises(AfaError, match="not a regular expression"):
        mod.add_rule(EVENT, "pattern", "(", who="ana", why="")
    mod.add_rule(EVENT, "keyword", "x", who="ana", why="")
    with pytest.raises(AfaError, match="already has the keyword rule 'x'"):
        mod.add_rule(EVENT, "keyword", "x", who="ana", why="")
    with pytest.raises(AfaError, match="needs who made it"):
        mod.hide(EVENT, "u", who=" ", why="")
    # a failed decision leaves nothing behind
    assert [e.action for e in queries.audit_log(archive, EVENT)] == ["rule add"]


def test_changes_table_and_stream_agree(archive, redis_client, mod):
    collect(archive, redis_client, [post(k, author=k % 2) for k in range(6)])
    mod.block(EVENT, "user1@mastodon.social", who="ana", why="")
    mod.hide(EVENT, post(0).uri, who="ana", why="")
    mod.unblock(EVENT, "user1@mastodon.social", who="ana", why="")
    recorded = [(c.seq, c.kind, c.uri) for c in changes_after(archive, EVENT, 0)]
    assert recorded == stream(redis_client)
    assert [s for s, _k, _u in recorded] == list(range(1, len(recorded) + 1))


@pytest.mark.parametrize(
    "text", ["FREE CRYPTO", "free\ncrypto", "ſpam: free crypto", "Free  Crypto!"]
)
def test_a_keyword_rule_finds_old_posts_however_they_are_written(archive, redis_client, mod, text):
    """The scan for a new keyword rule is narrowed in SQL; it must find what the rule matches."""
    a, b = post(1, text=text), post(2, text="free crypto-currency talk")
    collect(archive, redis_client, [a, b, post(3, text="freecrypto")])
    outcome = mod.add_rule(EVENT, "keyword", "free crypto", who="ana", why="")
    assert [c.uri for c in outcome.changes] == [a.uri, b.uri]


def test_a_keyword_with_letters_that_fold_beyond_ascii(archive, redis_client, mod):
    a = post(1, text="ſpam and more")  # U+017F folds onto s in Python's ignore-case
    collect(archive, redis_client, [a])
    assert [c.uri for c in mod.add_rule(EVENT, "keyword", "SPAM", who="a", why="").changes] == [
        a.uri
    ]
    b = post(2, text="100% _done_")
    collect(archive, redis_client, [b, post(3, text="100x done")])
    assert [
        c.uri for c in mod.add_rule(EVENT, "keyword", "100% _done_", who="a", why="").changes
    ] == [b.uri]


def test_unhiding_a_post_a_rule_or_block_keeps_off_says_why(archive, redis_client, mod):
    a = post(1, author=4, text="free crypto")
    collect(archive, redis_client, [a])
    mod.block(EVENT, "user4@mastodon.social", who="ana", why="")
    mod.add_rule(EVENT, "keyword", "crypto", who="ana", why="")
    assert queries.reasons(archive, EVENT, a.uri) == [
        "blocked account user4@mastodon.social",
        "rule #1 (keyword 'crypto')",
    ]
    with pytest.raises(AfaError) as caught:
        mod.unhide(EVENT, a.uri, who="ana", why="")
    assert str(caught.value) == (
        f"northwind-2026 has no hidden post {a.uri} (it is kept off by: blocked account "
        "user4@mastodon.social; rule #1 (keyword 'crypto'))"
    )
    assert queries.reasons(archive, EVENT, post(2).uri) == []


def test_a_decision_committed_during_a_collectors_batch_does_not_fail_it(db_path, archive):
    """Regression: the save path read the sequence, then wrote; a decision committed from another
    process in between made the batch fail with "database is locked" (a stale WAL snapshot).
    save_batch now takes the write lock first (BEGIN IMMEDIATE) and waits its turn."""
    other = open_archive(db_path)
    other.execute("BEGIN IMMEDIATE")  # a decision in progress in another process
    other.execute(
        "INSERT INTO moderation (event, approve_first, version) VALUES (?, 0, 1)", [EVENT]
    )
    result: list = []
    worker = threading.Thread(
        target=lambda: result.append(save_batch(archive, EVENT, [post(1)], "s", None))
    )
    worker.start()
    time.sleep(0.3)
    other.execute("COMMIT")
    worker.join(10)
    other.close()
    assert [c.seq for c in result[0]] == [1]
