"""collector/reactions.py: a reply names its parent by Mastodon's local id, found in the archive."""

from collector.reactions import PARENTS_SQL
from collector.sources.mastodon import parse_status
from collector.store import save_batch

from .conftest import mastodon_status

EVENT = "northwind-2026"


def test_a_reply_in_a_later_batch_finds_its_parent_among_many(archive):
    parents = [parse_status(mastodon_status(k), "mastodon.social") for k in range(1, 301)]
    save_batch(archive, EVENT, parents, "src", None)
    reply = mastodon_status(400)
    reply["in_reply_to_id"] = str(100000 + 250)  # the parent's local id on this instance
    save_batch(archive, EVENT, [parse_status(reply, "mastodon.social")], "src", None)
    row = archive.execute(
        "SELECT json_extract(data, '$.reply_to') FROM items WHERE uri = ?",
        [reply["uri"]],
    ).fetchone()
    assert row[0] == parents[249].uri


def test_parents_are_looked_up_by_key_not_by_walking_the_event(archive):
    """The lookup's cost follows the batch's replies, not the archive's size."""
    plan = " | ".join(
        r[3] for r in archive.execute("EXPLAIN QUERY PLAN " + PARENTS_SQL, ["[]", EVENT])
    )
    assert "SCAN j" in plan, plan
    assert "local_id=?" in plan and "SCAN l" not in plan, plan
