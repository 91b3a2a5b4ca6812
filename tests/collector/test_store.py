"""collector/store.py against a real SQLite archive."""

import dataclasses
import json
import time

import pytest

from collector.normalise import Delete
from collector.sources.mastodon import parse_status
from collector.store import Checkpointer, Malformed, save_batch
from core.archive import changes_after, last_seq, load_cursor
from core.items import Author

from .conftest import mastodon_status

EVENT = "northwind-2026"


def item(k=1, host="mastodon.social", **changes):
    status = {**mastodon_status(k), **changes}
    return parse_status(status, host)


def rows(db):
    return db.execute("SELECT uri, status, version, seq FROM items ORDER BY id").fetchall()


def test_new_items_get_sequence_numbers_and_live_payloads(archive):
    changes = save_batch(archive, EVENT, [item(1), item(2)], "src", {"line": 2})
    assert [(c.seq, c.kind) for c in changes] == [(1, "post"), (2, "post")]
    assert changes[0].data["seq"] == 1 and changes[0].data["item"]["uri"] == item(1).uri
    assert "extra" not in changes[0].data["item"]
    assert [r[3] for r in rows(archive)] == [1, 2]
    assert last_seq(archive, EVENT) == 2
    assert [c.data for c in changes_after(archive, EVENT, 0)] == [c.data for c in changes]


def test_same_post_through_two_instances_is_one_item(archive):
    first = item(1)
    second = dataclasses.replace(first, origin="fosstodon.org", local_id="999", boosts=40)
    save_batch(archive, EVENT, [first], "a", None)
    assert save_batch(archive, EVENT, [second, first], "b", None) == []
    assert len(rows(archive)) == 1
    # both instance-local ids now lead to the one item
    assert archive.execute("SELECT count(*) FROM local_ids").fetchone()[0] == 2


def test_edit_keeps_the_old_version(archive):
    original = item(1)
    edited = item(1, content="<p>better</p>", edited_at="2026-10-24T10:00:00Z")
    save_batch(archive, EVENT, [original], "s", None)
    changes = save_batch(archive, EVENT, [edited], "s", None)
    assert [(c.seq, c.kind) for c in changes] == [(2, "edit")]
    assert rows(archive) == [(original.uri, "visible", 2, 2)]
    old = archive.execute("SELECT version, data FROM item_versions").fetchall()
    assert [(v, json.loads(d)["html"]) for v, d in old] == [(1, original.html)]
    # the older version arriving late (through a slow instance) changes nothing
    assert save_batch(archive, EVENT, [original], "s", None) == []


def test_delete_by_local_id_retracts(archive):
    post = item(1)
    save_batch(archive, EVENT, [post], "s", None)
    changes = save_batch(
        archive, EVENT, [Delete("mastodon.social", local_id=post.local_id)], "s", None
    )
    assert [(c.seq, c.kind, c.uri, c.data) for c in changes] == [
        (2, "retract", post.uri, {"seq": 2, "kind": "retract", "uri": post.uri})
    ]
    assert rows(archive) == [(post.uri, "deleted", 1, 2)]
    # a resend after the delete does not bring it back; a second delete is silent
    assert save_batch(archive, EVENT, [post, Delete("x", uri=post.uri)], "s", None) == []


def test_unknown_delete_is_no_change(archive):
    assert save_batch(archive, EVENT, [Delete("mastodon.social", local_id="404")], "s", None) == []


def test_hidden_author_is_stored_but_never_published(archive):
    post = item(1)
    hidden = dataclasses.replace(post, author=Author(id="did:x", hidden=True))
    assert save_batch(archive, EVENT, [hidden], "s", None) == []
    assert rows(archive) == [(post.uri, "hidden", 1, 0)]


def test_cursor_and_malformed_commit_with_items(archive):
    bad = Malformed("mastodon:line 3", "invalid JSON", "{x")
    save_batch(archive, EVENT, [item(1)], "replay:r.jsonl", {"line": 3, "clock": "T"}, [bad])
    assert load_cursor(archive, EVENT, "replay:r.jsonl") == {"line": 3, "clock": "T"}
    assert archive.execute("SELECT identity, reason, raw FROM malformed").fetchall() == [
        ("mastodon:line 3", "invalid JSON", "{x")
    ]


def test_an_error_mid_batch_leaves_neither_items_nor_cursor(archive):
    save_batch(archive, EVENT, [item(1)], "s", {"line": 1})

    def exploding():
        yield item(2)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        save_batch(archive, EVENT, exploding(), "s", {"line": 2})
    assert [r[0] for r in rows(archive)] == [item(1).uri]
    assert load_cursor(archive, EVENT, "s") == {"line": 1}
    assert last_seq(archive, EVENT) == 1
    assert archive.execute("SELECT max(seq) FROM changes").fetchone()[0] == 1


def test_events_have_their_own_sequences(archive):
    save_batch(archive, "a", [item(1)], "s", None)
    assert [c.seq for c in save_batch(archive, "b", [item(1), item(2)], "s", None)] == [1, 2]


def test_bridgy_fed_mirror_of_a_bluesky_post_is_a_duplicate_not_an_edit(archive):
    from collector.sources.bluesky import parse_jetstream

    from .conftest import jetstream_post

    event = jetstream_post(1)
    original = parse_jetstream(event, {"northwind26"})
    mirror = dataclasses.replace(
        item(1), uri=original.uri, html="<p>told differently</p>", origin="mastodon.social"
    )
    save_batch(archive, EVENT, [original], "s", None)
    assert save_batch(archive, EVENT, [mirror], "s", None) == []
    assert rows(archive) == [(original.uri, "visible", 1, 1)]


def test_one_batch_mixing_new_resent_edited_and_deleted_posts(archive):
    """New items are written with executemany; a resend, an edit or a delete in the same batch
    must still see them, and every JSON text must be what plain encoding gives."""
    from collector.store import _json
    from core.items import item_to_dict
    from core.tail import encode_entry

    edited = dataclasses.replace(item(2), html="<p>changed</p>", text="changed")
    batch = [item(1), item(2), item(1), edited, Delete("mastodon.social", local_id=item(3).local_id),
             item(3), Delete("mastodon.social", local_id=item(3).local_id), item(4)]  # fmt: skip
    changes = save_batch(archive, EVENT, batch, "src", None)
    assert [(c.seq, c.kind, c.uri) for c in changes] == [
        (1, "post", item(1).uri), (2, "post", item(2).uri), (3, "edit", item(2).uri),
        (4, "post", item(3).uri), (5, "retract", item(3).uri), (6, "post", item(4).uri)]  # fmt: skip
    stored = archive.execute("SELECT seq, data FROM changes ORDER BY seq").fetchall()
    assert [json.loads(text) for _, text in stored] == [c.data for c in changes]
    assert all(text == _json(c.data) == c.text == encode_entry(c.kind, c.data)["data"]
               for (_, text), c in zip(stored, changes, strict=True))  # fmt: skip
    data = dict(archive.execute("SELECT uri, data FROM items").fetchall())
    assert data[item(1).uri] == _json(item_to_dict(item(1)))
    assert data[item(2).uri] == _json(item_to_dict(edited))
    assert [r[1:3] for r in rows(archive)] == [("visible", 1), ("visible", 2), ("deleted", 1),
                                                ("visible", 1)]  # fmt: skip


def test_checkpointer_moves_wal_checkpoints_to_its_thread(archive, tmp_path):
    """Inside, the writer never checkpoints (the WAL holds every commit) until the thread copies
    the pages into the database file; outside, SQLite's automatic checkpoints are back."""
    path = archive.execute("PRAGMA database_list").fetchall()[0][2]
    db_file = __import__("pathlib").Path(path)
    with Checkpointer(archive, path, every=0.05):
        assert archive.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        before = db_file.stat().st_size
        for k in range(20):
            save_batch(archive, "ev", [item(1000 + k * 50 + i) for i in range(50)], "src", {"k": k})
        deadline = time.monotonic() + 30
        while db_file.stat().st_size <= before:  # only a checkpoint writes the database file
            assert time.monotonic() < deadline, "the checkpointer never copied the WAL"
            time.sleep(0.02)
    assert archive.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
    assert last_seq(archive, "ev") == 1000


def test_author_updates_edit_retract_and_bring_back_an_authors_posts(archive):
    """Issue 9: what enrichment learns of an author reaches every archived post by them."""
    from collector.normalise import AuthorUpdate

    posts = [item(1), dataclasses.replace(item(2), author=item(1).author), item(3)]
    save_batch(archive, EVENT, posts, "s", None)
    author = posts[0].author
    named = dataclasses.replace(author, name="Ana Lima", avatar="https://a.example/ana.png")
    kinds = [(c.kind, c.uri) for c in save_batch(archive, EVENT, [AuthorUpdate(named)], "s", None)]
    assert kinds == [("edit", posts[0].uri), ("edit", posts[1].uri)]  # not the other author's
    assert save_batch(archive, EVENT, [AuthorUpdate(named)], "s", None) == []  # nothing new
    opted_out = dataclasses.replace(named, hidden=True)
    kinds = [c.kind for c in save_batch(archive, EVENT, [AuthorUpdate(opted_out)], "s", None)]
    assert kinds == ["retract", "retract"]
    assert [r[1] for r in rows(archive)] == ["hidden", "hidden", "visible"]
    back = [c for c in save_batch(archive, EVENT, [AuthorUpdate(named)], "s", None)]
    assert [c.kind for c in back] == ["post", "post"]
    assert back[0].data["item"]["author"]["name"] == "Ana Lima"
    assert [r[1] for r in rows(archive)] == ["visible", "visible", "visible"]


def test_counts_change_the_archive_not_the_sequence(archive):
    from collector.normalise import Counts

    save_batch(archive, EVENT, [item(1), item(2)], "s", None)
    assert save_batch(archive, EVENT, [Counts(item(1).uri, 3, 40, 2)], "s", None) == []
    data = json.loads(
        archive.execute("SELECT data FROM items WHERE uri = ?", [item(1).uri]).fetchone()[0]
    )
    assert (data["boosts"], data["likes"], data["replies"]) == (3, 40, 2)
    assert rows(archive)[0][2] == 2  # a new version: pages re-render it
    assert last_seq(archive, EVENT) == 2  # no change in the live sequence
    assert archive.execute("SELECT uri, after_seq FROM recounted").fetchall() == [(item(1).uri, 2)]
    from core.archive import changed_uris

    assert changed_uris(archive, EVENT, 2, 100) == [item(1).uri]  # a build at seq 2 reads it again
