import sqlite3

import pytest

from core.archive import last_seq, open_archive
from core.errors import ArchiveError


def test_open_creates_schema_in_wal_mode(db_path):
    db = open_archive(db_path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert {"items", "changes", "cursors", "sequences", "local_ids", "malformed"} <= set(
        db.table_names()
    )
    assert last_seq(db, "any") == 0
    db.close()


def test_migrations_apply_once(db_path):
    open_archive(db_path).close()
    db = open_archive(db_path)
    names = [r[0] for r in db.execute("SELECT name FROM _sqlite_migrations")]
    assert names == [
        "m001_initial",
        "m002_source_state",
        "m003_moderation",
        "m004_items_state_index",
        "m005_rebuild_requests",
        "m006_counts",
    ]


def test_identity_is_unique_per_event(archive):
    row = dict(
        uri="u",
        source="s",
        origin="o",
        local_id="1",
        created_at="t",
        author_id="a",
        data="{}",
        first_seen="t",
        seq=1,
    )
    archive["items"].insert({**row, "event": "e"})
    archive["items"].insert({**row, "event": "other"})
    with pytest.raises(sqlite3.IntegrityError):
        archive["items"].insert({**row, "event": "e"})


def test_missing_archive_is_a_clear_error(tmp_path):
    with pytest.raises(ArchiveError, match="archive not found"):
        open_archive(tmp_path / "nope.db", create=False)
