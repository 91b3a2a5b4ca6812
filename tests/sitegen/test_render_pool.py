"""A first build's posts rendered by worker processes (render_pool.py, issue 12) give the very
bytes the build's own process gives, hidden and noindex authors, photos and all; and a rebuild
after it equals a fresh build."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from collector.store import save_batch
from core.archive import open_archive
from core.items import Author, Media
from sitegen import render_pool
from sitegen.build import build_site

EVENT = "northwind-2026"


def files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "manifest.json"
    }


def test_posts_rendered_by_workers_are_the_posts_rendered_at_home(make_settings, sg, monkeypatch):
    settings = make_settings()
    start = datetime(2026, 10, 24, 7, 30, tzinfo=UTC)
    hidden = Author(id="did:plc:hidden", handle="hidden.example", name="Hidden", hidden=True)
    shy = Author(id="https://social.example/users/shy", handle="@shy@social.example", noindex=True)
    items = []
    for n in range(160):
        author = hidden if n % 11 == 0 else shy if n % 13 == 0 else None
        media = (
            (Media("image", f"https://img.example/{n}.jpg", alt=f"slide {n}"),)
            if n % 5 == 0
            else ()
        )
        items.append(sg.make_item(n, start + timedelta(minutes=3 * n), author=author, media=media,
                                  text=f"post {n} <b>bold</b> & more"))  # fmt: skip
    db = open_archive(settings.archive_path)
    save_batch(db, EVENT, items, "test", None)
    db.close()

    handed = []
    rendered = render_pool.rendered

    def spy(rows, event, count):
        for made in rendered(rows, event, count):
            handed.append(made[0][0])
            yield made

    monkeypatch.setattr(render_pool, "rendered", spy)
    monkeypatch.setattr(render_pool, "POOL_MIN", 40)
    monkeypatch.setattr(render_pool, "BATCH", 16)
    monkeypatch.setattr(render_pool, "workers", lambda: 2)
    pooled = settings.with_overrides(output_dir=settings.output_dir.parent / "pooled")
    build_site(pooled, search=False)
    db = open_archive(settings.archive_path)
    [visible] = db.execute("SELECT count(*) FROM items WHERE status = 'visible'").fetchone()
    db.close()
    assert sorted(handed) == sorted(set(handed)) and len(handed) == visible - 40 > 80
    monkeypatch.setattr(render_pool, "POOL_MIN", 10**9)
    build_site(settings, search=False)
    assert files(pooled.output_dir) == files(settings.output_dir)

    later = sg.make_item(500, start + timedelta(minutes=200), text="after the pool")
    db = open_archive(settings.archive_path)
    save_batch(db, EVENT, [later], "test", None)
    db.close()
    build_site(pooled, search=False)  # a rebuild on the store the workers filled
    build_site(settings, search=False)
    assert files(pooled.output_dir) == files(settings.output_dir)


def test_where_workers_cannot_start_the_posts_are_rendered_at_home(make_settings, sg, monkeypatch):
    settings = make_settings()
    start = datetime(2026, 10, 24, 7, 30, tzinfo=UTC)
    items = [sg.make_item(n, start + timedelta(minutes=3 * n)) for n in range(60)]
    db = open_archive(settings.archive_path)
    save_batch(db, EVENT, items, "test", None)
    db.close()

    def no_semaphores(*args, **kwargs):
        raise OSError("no /dev/shm")

    monkeypatch.setattr(render_pool, "ProcessPoolExecutor", no_semaphores)
    monkeypatch.setattr(render_pool, "POOL_MIN", 20)
    monkeypatch.setattr(render_pool, "workers", lambda: 2)
    here = settings.with_overrides(output_dir=settings.output_dir.parent / "here")
    build_site(here, search=False)
    monkeypatch.setattr(render_pool, "POOL_MIN", 10**9)
    build_site(settings, search=False)
    assert files(here.output_dir) == files(settings.output_dir)
    assert (here.output_dir / EVENT / "posts.jsonl.gz").stat().st_size > 100
