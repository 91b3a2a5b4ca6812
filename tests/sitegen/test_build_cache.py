"""Issue 13 (security): the build cache lived in output/.build-cache/ and content.pickle was read
with pickle, so whoever could write output/ (a deploy tool, a sync, the static server's user)
ran code at the next build, and the static server served every post from posts.sqlite.

Fix: the cache lives under var/ (sitegen.cache.cache_dir), is JSON and SQLite only, and a build
removes the old output/.build-cache/. Reproduction: plant a pickle that writes a marker file when
loaded, where the old and the new cache would be read, then build.
"""

from __future__ import annotations

import json
import os
import pickle
from datetime import UTC, datetime, timedelta

from core.archive import open_archive
from sitegen.build import build_site
from sitegen.cache import cache_dir


class Payload:
    """Unpickling this runs os.system: what an attacker would plant."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_planted_pickle_is_never_loaded_and_output_holds_no_cache(make_settings, sg, tmp_path):
    settings = make_settings()
    db = open_archive(settings.archive_path)
    start = datetime(2026, 10, 24, 7, 30, tzinfo=UTC)
    sg.save_items(db, [sg.make_item(n, start + timedelta(minutes=5 * n)) for n in range(20)])
    db.close()
    marker = tmp_path / "pwned"
    bomb = pickle.dumps(Payload(marker))
    old = settings.output_dir / ".build-cache"
    old.mkdir(parents=True)
    for name in ("content.pickle", "pages.json", "parts-northwind-2026"):
        (old / name).write_bytes(bomb)
    build_site(settings, search=False)
    cache = cache_dir(settings)
    for name in ("content.json", "content.pickle", "pages.json"):
        (cache / name).write_bytes(bomb)
    build_site(settings, search=False)

    assert not marker.exists()
    assert not old.exists()
    assert list(settings.output_dir.rglob(".*")) == []
    assert cache.is_relative_to(settings.var_dir.resolve())
    for name in ("content.json", "pages.json"):  # written again, as JSON
        assert isinstance(json.loads((cache / name).read_text()), dict)
    assert (cache / "posts.sqlite").read_bytes().startswith(b"SQLite format 3")


def test_the_sample_content_is_cached(make_settings):
    """The content cache holds the whole model of the sample event: a codec that meets a class
    it does not know caches nothing, silently (it did once, when Room moved to core.schedule)."""
    from core.events import load_events
    from sitegen.content import decode

    settings = make_settings()
    build_site(settings, search=False)
    saved = json.loads((cache_dir(settings) / "content.json").read_text())
    assert decode(saved["events"]) == load_events(settings.content_dir)


def test_a_large_memo_is_kept_compressed_and_comes_back_the_same(tmp_path):
    from sitegen.fragments import COMPRESS, Fragments

    store = Fragments(tmp_path, "code")
    big = "<li><p>a post &amp; its words</p></li>" * (COMPRESS // 10)
    made = []
    assert store.memo("big", lambda: made.append(1) or big) == big
    assert store.memo("small", lambda: "<b>x</b>") == "<b>x</b>"
    assert store.memo("big", lambda: made.append(1) or "other") == big and made == [1]
    [(kind, size)] = store.db.execute(
        "SELECT typeof(value), length(value) FROM memo WHERE key = 'big'"
    )
    assert kind == "blob" and size < len(big) // 4
    store.close()
