"""The large downloads' kept files (kept.py, issue 12): two slots per download, the one output/
does not link rewritten in place from its first changed member, hashed from the saved SHA-256
state (resumable_hash.py); a file with another link, or not as its record says, is never
rewritten in place."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import os
import random
from datetime import UTC, datetime, timedelta

import pytest

from collector.store import save_batch
from core.archive import open_archive
from sitegen import kept, paging, resumable_hash
from sitegen.build import build_site
from sitegen.cache import cache_dir

EVENT = "northwind-2026"


def at(minute: int) -> datetime:
    return datetime(2026, 10, 24, 7, 30, tzinfo=UTC) + timedelta(minutes=minute)


def add(settings, sg, numbers) -> None:
    db = open_archive(settings.archive_path)
    save_batch(db, EVENT, [sg.make_item(n, at(2 * n), text=f"post {n}") for n in numbers],
               "test", None)  # fmt: skip
    db.close()


def kept_files(settings) -> list:
    return sorted((cache_dir(settings) / "downloads").glob("*.bin"))


def manifest_sha(settings, rel: str) -> str:
    return json.loads((settings.output_dir / "manifest.json").read_text())["files"][rel]


def test_resumable_hash_takes_up_a_saved_state_and_refuses_a_damaged_one():
    assert resumable_hash.available()  # Python's own libcrypto: present wherever hashlib is
    rng = random.Random(7)
    data = rng.randbytes(5000)
    for _ in range(20):
        cut = rng.randrange(len(data))
        first = resumable_hash.Sha256()
        first.update(data[:cut])
        later = resumable_hash.Sha256(first.state())
        later.update(data[cut:])
        assert later.hexdigest() == hashlib.sha256(data).hexdigest()
        assert first.hexdigest() == hashlib.sha256(data[:cut]).hexdigest()  # not ended by it
    state = bytearray(resumable_hash.Sha256().state())
    state[resumable_hash._NUM] = 200  # bytes waiting beyond the 64 of a block
    assert not resumable_hash.valid(bytes(state))
    with pytest.raises(ValueError):
        resumable_hash.Sha256(bytes(state))
    assert not resumable_hash.valid(b"short")


def test_a_session_rewrites_the_unlinked_slot_and_leaves_the_linked_one_whole(
    make_settings, sg, monkeypatch
):
    monkeypatch.setattr(paging, "ARCHIVE_PAGE", 20)
    settings = make_settings()
    add(settings, sg, range(90))
    build_site(settings, search=False)
    download = settings.output_dir / EVENT / "posts.jsonl.gz"
    first = download.read_bytes()
    slots = [p for p in kept_files(settings) if p.read_bytes() == first]
    assert len(slots) == 2  # a first build writes both slots of the event's download
    linked = os.stat(download).st_ino
    [spare] = [p for p in slots if p.stat().st_ino != linked]

    add(settings, sg, [90, 91])
    build_site(settings, search=False)
    second = download.read_bytes()
    assert os.stat(download).st_ino == spare.stat().st_ino  # the spare slot, rewritten in place
    assert [p for p in slots if p.stat().st_ino == linked][0].read_bytes() == first  # kept whole
    assert len(gzip.decompress(second).splitlines()) == 92
    assert manifest_sha(settings, f"{EVENT}/posts.jsonl.gz") == hashlib.sha256(second).hexdigest()

    add(settings, sg, [92])
    build_site(settings, search=False)
    assert os.stat(download).st_ino == linked  # and back
    third = download.read_bytes()
    assert len(gzip.decompress(third).splitlines()) == 93
    assert manifest_sha(settings, f"{EVENT}/posts.jsonl.gz") == hashlib.sha256(third).hexdigest()
    assert spare.read_bytes() == second


def test_a_slot_linked_elsewhere_or_changed_is_not_rewritten_in_place(
    make_settings, sg, tmp_path, monkeypatch
):
    monkeypatch.setattr(paging, "ARCHIVE_PAGE", 20)
    settings = make_settings()
    add(settings, sg, range(50))
    build_site(settings, search=False)
    download = settings.output_dir / EVENT / "posts.jsonl.gz"
    add(settings, sg, [50])
    build_site(settings, search=False)
    held = tmp_path / "held.gz"  # say, a copy of the site made with hard links
    os.link(download, held)
    before = held.read_bytes()
    add(settings, sg, [51])
    build_site(settings, search=False)  # rewrites the other slot, not the linked one
    add(settings, sg, [52])
    build_site(settings, search=False)  # its slot is linked by `held`: a new file, not in place
    assert held.read_bytes() == before
    assert len(gzip.decompress(download.read_bytes()).splitlines()) == 53
    for path in kept_files(settings):  # a kept file changed behind the build's back ...
        with open(path, "r+b") as f:
            f.seek(10)
            f.write(b"XX")
    add(settings, sg, [53])
    build_site(settings, search=False)  # ... is made again, not rewritten from its start
    data = download.read_bytes()
    assert len(gzip.decompress(data).splitlines()) == 54
    assert manifest_sha(settings, f"{EVENT}/posts.jsonl.gz") == hashlib.sha256(data).hexdigest()


def test_choose_starts_from_the_unlinked_slot_only_while_nothing_else_links_it(tmp_path):
    def slot(n, made, keys, links=1):
        return kept.Slot(n, tmp_path / f"{n}.bin", made, [(k, 1, None) for k in keys], links)

    linked, spare = slot(0, 2, "abcd", links=2), slot(1, 1, "abx")
    assert kept.choose({0: linked, 1: spare}, list("abcde")) == kept.Choice(
        1, spare, 2, True, linked, 4
    )
    held = slot(1, 1, "abx", links=2)
    assert kept.choose({0: linked, 1: held}, list("abcde")) == kept.Choice(
        1, linked, 4, False, linked, 4
    )
    assert kept.choose({0: linked}, list("abyde")) == kept.Choice(1, linked, 2, False, linked, 2)
    assert kept.choose({}, list("ab")) == kept.Choice(0, None, 0, False, None, 0)


def test_members_are_read_from_the_linked_file_in_one_piece(tmp_path):
    path = tmp_path / "0.bin"
    path.write_bytes(b"aaBBBcccc")
    slot = kept.Slot(0, path, 1, [("a", 2, None), ("b", 3, None), ("c", 4, None)], 2)
    assert kept.members_of(slot, 1, 3) == [b"BBB", b"cccc"]
    assert kept.members_of(slot, 2, 2) == []
    path.write_bytes(b"aaBB")  # shorter than its record: not read
    assert kept.members_of(slot, 1, 3) is None


def test_a_member_changed_last_session_is_read_from_the_linked_file(
    make_settings, sg, tmp_path, monkeypatch
):
    """The spare slot is two versions old: a member the last session changed (an edit in an
    early page) is read from the file output/ links, not made again, and the result is a fresh
    build's file."""
    monkeypatch.setattr(paging, "ARCHIVE_PAGE", 20)
    settings = make_settings()
    items = [sg.make_item(n, at(2 * n), text=f"post {n}") for n in range(60)]
    db = open_archive(settings.archive_path)
    save_batch(db, EVENT, items, "test", None)
    db.close()
    build_site(settings, search=False)
    db = open_archive(settings.archive_path)
    edited = dataclasses.replace(items[25], html="<p>edited words</p>", edited_at=at(200))
    save_batch(db, EVENT, [edited], "test", None)
    db.close()
    build_site(settings, search=False)
    read = []
    members_of = kept.members_of
    monkeypatch.setattr(kept, "members_of", lambda *a: read.append(a[1:]) or members_of(*a))
    add(settings, sg, [60])
    build_site(settings, search=False)
    event_reads = [r for r in read if r == (1, 3)]  # member 2 (the edit) and 3 from the linked
    assert event_reads
    download = (settings.output_dir / EVENT / "posts.jsonl.gz").read_bytes()
    fresh = dataclasses.replace(settings, output_dir=tmp_path / "fresh", var_dir=tmp_path / "var2")
    build_site(fresh, search=False)
    assert download == (fresh.output_dir / EVENT / "posts.jsonl.gz").read_bytes()
    assert b"edited words" in gzip.decompress(download)


def test_without_a_resumable_hash_the_writer_hashes_the_file(make_settings, sg, monkeypatch):
    """No libcrypto SHA256_*: members carry no state and the file is hashed whole; once the hash
    is back, a start with no saved state is hashed whole too, never taken up from nothing."""
    monkeypatch.setattr(paging, "ARCHIVE_PAGE", 20)
    settings = make_settings()
    download = settings.output_dir / EVENT / "posts.jsonl.gz"
    rel = f"{EVENT}/posts.jsonl.gz"
    monkeypatch.setattr(resumable_hash, "available", lambda: False)
    add(settings, sg, range(50))
    build_site(settings, search=False)
    add(settings, sg, [50])
    build_site(settings, search=False)
    assert manifest_sha(settings, rel) == hashlib.sha256(download.read_bytes()).hexdigest()
    monkeypatch.undo()
    monkeypatch.setattr(paging, "ARCHIVE_PAGE", 20)
    add(settings, sg, [51])
    build_site(settings, search=False)
    data = download.read_bytes()
    assert len(gzip.decompress(data).splitlines()) == 52
    assert manifest_sha(settings, rel) == hashlib.sha256(data).hexdigest()
