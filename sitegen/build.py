"""build_site(): content/ + archive → output/. Read everything, then write everything.

read content/ and, per event, the archive (one snapshot) → assign posts → pages → writer

Builds are incremental in two steps. When the code, settings, content and every event's archive
state are as the last build left them, every file is kept without reading a post. Otherwise each
page's inputs are digested (pages.Page.key) and only pages whose digest changed are rendered; the
writer then skips files whose bytes came out the same. The manifest is written after every page,
and the cache after the manifest.
"""

from __future__ import annotations

import gc
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils

from core.archive import archive_state, counts_as_of, open_archive
from core.events import Event, Site
from core.items import Item, parse_time
from core.settings import Settings

from . import downloads, listings, meetups, pages, render_pool, wall
from .cache import BuildCache, digest
from .content import load_content
from .context import BuildContext
from .fragments import FLUSH, Fragments
from .pages import EventData, Page
from .parts import DamagedCache, Parts, spans_of
from .posts import Store, anchor_of
from .reader import EventPosts
from .render import make_env, post_list, post_macro
from .room import read_room
from .search import entry as search_entry
from .search import index_block
from .stats import photo_rows
from .writer import KeptFile, Writer, file_stamp

STATIC = Path(__file__).parent / "static"
Log = Callable[[str], None]
Memo = Callable[[str, Callable[[], str]], str]
SHOWN = {"presentation.html": "shown", "break.html": "shown", "posts_page.html": "posts",
         "archive.html": "posts", "event.html": "unplaced"}  # fmt: skip  # the posts each template shows in full


@dataclass
class BuildReport:
    pages: int = 0
    static: int = 0
    search: int = 0  # files of the Pagefind indexes
    written: list[str] = field(default_factory=list)  # every file changed by this build
    unchanged: int = 0
    rendered: int = 0  # pages rendered (the rest were kept from the last build unrendered)
    removed: list[str] = field(default_factory=list)
    posts: int = 0
    unplaced: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"built {self.pages} pages, {self.static} static and {self.search} search files: "
            f"{len(self.written)} "
            f"written, {self.unchanged} unchanged ({self.pages - self.rendered} not re-rendered), "
            f"{len(self.removed)} removed; {self.posts} posts ({self.unplaced} not in any talk "
            f"or break) in {self.seconds:.2f} s"
        )


def build_site(
    settings: Settings,
    log: Log = lambda line: None,
    now: datetime | None = None,
    search: bool = True,
) -> BuildReport:
    """Build the whole site. Raises ContentErrors before writing anything if content/ is wrong.

    `now` decides which events are live, upcoming or past (default: the wall clock); `search`
    runs Pagefind over each event whose archive pages changed."""
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    ctx = BuildContext.for_settings(settings)
    forget_old_cache(Path(settings.output_dir))
    try:
        report = _build(settings, ctx, log, now, search)
    except DamagedCache as exc:
        log(f"the build cache is damaged ({exc}): building again from the archive")
        shutil.rmtree(ctx.cache, ignore_errors=True)
        report = _build(settings, BuildContext.for_settings(settings), log, now, search)
    report.seconds = time.perf_counter() - started
    return report


def _build(
    settings: Settings, ctx: BuildContext, log: Log, now: datetime, search: bool
) -> BuildReport:
    site, events = load_content(settings.content_dir, ctx.cache)
    cache = BuildCache.load(ctx.cache)
    builder = _Builder(Writer(settings.output_dir), cache, log)
    builder.site = digest(ctx.code, _settings_key(settings), site, events, _statuses(events, now))
    builder.base = (settings.base_url or site.base_url).rstrip("/")
    try:
        with Archive(ctx) as archive:
            builder.states = archive.states(events)
            if builder.site == cache.site and builder.states == cache.states and builder.keep_all():
                log("nothing changed since the last build")
            else:
                builder.use_fragments(Fragments(ctx.cache, ctx.code), ctx)
                archive.memo, archive.prerender = builder.fragments.memo, builder.prerender
                with _no_gc():
                    datas = [archive.read_event(e, log, builder.states[e.slug]) for e in events]
                    gc.freeze()  # the posts live to the end of the build: never traverse them again
                builder.fragments.drop(archive.gone)
                builder.write_static()
                for family in plan(settings, site, datas, now, builder.fragments):
                    builder.write(family)
                builder.writer.settle()  # the downloads written beside the pages (write_later)
                builder.fragments.close()
                for data in datas:
                    builder.write_search(data, search)  # decodes posts: in the archive's snapshot
        if builder.fragments is not None:
            builder.report.posts = sum(d.total for d in datas)
            builder.report.unplaced = sum(d.count_unplaced() for d in datas)
        gc.unfreeze()
        builder.finish(ctx.cache)
    except BaseException:
        builder.writer.abandon()  # the writer's thread ends with the failed build
        raise
    return builder.report


@contextmanager
def _no_gc():
    """No cyclic garbage collection while posts are read: 100,000 summaries and their tuples are
    all kept, and each collection would walk every one of them again."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def plan(
    settings: Settings,
    site: Site,
    datas: list[EventData],
    now: datetime,
    fragments: Fragments | None = None,
) -> Iterable[list[Page]]:
    """Every page of the site, one family at a time."""
    yield [pages.index_page(site, datas, now)]
    for data in datas:
        yield [pages.event_page(site, data)]
        # first: the big downloads are written in a thread of their own while the pages render
        yield downloads.event_downloads(site, data, settings.base_url, fragments)
        yield pages.talk_pages(site, data)
        yield pages.break_pages(site, data)
        yield listings.day_pages(site, data)
        yield listings.archive_pages(site, data)
        yield listings.gallery_pages(site, data)
        yield [wall.live_page(site, data), pages.search_page(site, data)]
        yield wall.wall_pages(site, data, settings.base_url)
        yield meetups.meetup_pages(site, data)
    yield listings.speaker_pages(site, datas)


def _settings_key(settings: Settings) -> tuple:
    return (settings.base_url, settings.public_live_url, settings.live_inline_posts)


def _statuses(events: list[Event], now: datetime) -> list[str]:
    return [EventData(e, [], None).status(now) for e in events]  # type: ignore[arg-type]


def forget_old_cache(output: Path) -> None:
    """Remove output/.build-cache/, where the cache lived before it moved under var/: it held
    every post, and was served with the site."""
    old = output / ".build-cache"
    if old.is_symlink() or old.is_file():
        old.unlink()
    elif old.is_dir():
        shutil.rmtree(old)


class Archive:
    """The archive opened for one build, in one read transaction (one consistent snapshot) that
    stays open while pages render, so a post decoded late is the post the pages were planned with."""

    def __init__(self, ctx: BuildContext, memo: Memo | None = None) -> None:
        self.ctx, self.settings = ctx, ctx.settings
        self.memo = memo or _no_memo
        self.prerender: Callable[[Event], Prerender] | None = None
        self.db: sqlite_utils.Database | None = None
        self.gone: list[int] = []  # row ids of posts no longer shown, by every read_event

    def __enter__(self) -> Archive:
        path = Path(self.settings.archive_path)
        if path.exists():
            self.db = open_archive(path)
            self.db.execute("BEGIN")
            self.ctx.store = Store(self.db)
        return self

    def __exit__(self, *exc) -> None:
        if self.db is not None:
            self.db.execute("COMMIT")
            self.db.close()

    def states(self, events: list[Event]) -> dict[str, str]:
        """Each event's archive_state: when all are as the last build saw them, nothing changed."""
        return {e.slug: archive_state(self.db, e.slug) if self.db else "" for e in events}

    def read_event(self, event: Event, log: Log, state: str | None = None) -> EventData:
        """An event's visible posts (from the build cache where the archive has not changed)."""
        if self.db is None:
            log(f"no archive at {self.settings.archive_path} yet: building pages without posts")
            return _empty(self.settings, event, self.ctx.cache)
        prerender = self.prerender(event) if self.prerender else None
        key = digest(self.ctx.code, event)
        reader = EventPosts(self.ctx.store, event, self.ctx.cache, key, prerender,
                            prerender.many if prerender is not None else None)  # fmt: skip
        parts, seq = reader.read(state)
        data = _empty(self.settings, event, self.ctx.cache, parts)
        data.last_seq = seq
        if prerender is not None:
            prerender.flush()
        data.counts_as_of = parse_time(counts_as_of(self.db, event.slug))  # "counts as of"
        self.gone += reader.gone
        data.memo, data.store = self.memo, self.ctx.store
        data.room = read_room(self.db, event)  # pins and meet-up proposals (room.py)
        log(f"{event.slug}: {data.total} posts up to change {data.last_seq} ({reader.how})")
        return data


def read_archive(settings: Settings, events: list[Event], log: Log) -> list[EventData]:
    """Every event's posts, read whole (no build cache) and decoded: for tools and the
    benchmark's floor."""
    path = Path(settings.archive_path)
    if not path.exists():
        return [_empty(settings, e, Path(tempfile.gettempdir())) for e in events]
    with tempfile.TemporaryDirectory(prefix="afa-read-") as tmp:
        with Archive(BuildContext(settings, Path(tmp), "")) as archive:
            datas = [archive.read_event(e, log) for e in events]
            for data in datas:
                data.whole(data.items)  # decode now, while the transaction is open
    return datas


def _no_memo(key: str, make: Callable[[], str]) -> str:
    return make()


def _empty(settings: Settings, event: Event, folder: Path, parts: Parts | None = None) -> EventData:
    stream = f"{settings.public_live_url.rstrip('/')}/live/{event.slug}/stream"
    parts = parts or Parts(folder, event.slug, "", spans_of(event))
    return EventData(event, parts, 0, stream, settings.live_inline_posts)


class Prerender:
    """Renders each post the archive reader decodes (a full build: every post; a rebuild: the
    changed ones) into the fragment store there and then, in batches, so no page has to decode
    it again and the build never holds every whole post at once. A first build past
    render_pool.POOL_MIN posts has worker processes decode and render them (`many`)."""

    def __init__(self, fragments: Fragments, macro: Callable, event: Event) -> None:
        self.fragments, self.macro, self.tz = fragments, macro, event.timezone
        self.event = event
        self.rows: list[tuple[int, int, Item]] = []
        count = render_pool.workers()
        self.many = (
            (lambda rows: self._many(rows, count)) if count and fragments.filling() else None
        )

    def __call__(self, row_id: int, item: Item) -> None:
        self.rows.append((row_id, item.extra["seq"], item))
        if len(self.rows) >= FLUSH:
            self.flush()

    def _many(self, rows, count: int):
        """The summaries of rows (id, data, seq, version), rendered by worker processes."""
        made = []
        for found, html, line in render_pool.rendered(rows, self.event, count):
            if html is not None:
                made.append((found[0], found[1], html, line))
                if len(made) >= FLUSH:
                    self.fragments.keep_made(made, self.tz)
                    made = []
            yield found
        self.fragments.keep_made(made, self.tz)

    def flush(self) -> None:
        tz = self.tz
        self.fragments.keep_rendered(
            self.rows, tz, lambda item: self.macro(item, tz), downloads.jsonl_line
        )
        self.rows = []


class _Builder:
    """Renders pages whose inputs changed with the one Jinja environment; hands bytes to the writer."""

    def __init__(self, writer: Writer, cache: BuildCache, log: Log) -> None:
        self.writer = writer
        self.cache = cache
        self.log = log
        self.env = make_env()
        self.report = BuildReport()
        self.static: dict[str, str] = {}  # file name -> "static/name?v=hash"
        self.files: dict[str, list] = {}  # the next cache's entries
        self.site = ""
        self.base = ""  # the site's absolute URL, for OpenGraph and feeds
        self.states: dict[str, str] = {}
        self.fragments: Fragments | None = None
        self.store = Store(None)

    def use_fragments(self, fragments: Fragments, ctx: BuildContext) -> None:
        """Posts come from (and go to) the fragment store: rendered once per version."""
        self.fragments, self.store = fragments, ctx.store
        self.env = make_env(compiled=ctx.cache / "jinja")
        macro, whole = post_macro(self.env), ctx.store.get

        def cached(post, tz: str):
            return fragments.html(post, tz, lambda: macro(whole(post[0]), tz))

        self.env.globals["post"] = cached

        def listed(posts, tz: str, key: str | None = None):
            def make():
                fragments.prefetch(posts)
                return post_list(fragments.html_texts(posts, tz, lambda p: macro(whole(p[0]), tz)))

            if key is None:
                return make()
            return fragments.memo(digest("post-list", tz, key), make)  # one row, not 500

        self.env.globals["post_list"] = listed

    def prerender(self, event: Event) -> Prerender:
        """What renders each post the archive reader decodes, for the fragment store."""
        return Prerender(self.fragments, post_macro(self.env), event)

    def keep_all(self) -> bool:
        """Keep every file of the last build as it is; False (keeping nothing) if any was touched.
        One stat per file, nothing else: at a million posts a site has thousands of files, and
        a build with nothing to do should cost about nothing."""
        root, files = str(self.writer.root), self.cache.files
        if not files:
            return False
        for path, entry in files.items():
            try:
                st = os.stat(os.path.join(root, path))
            except OSError:
                return False
            if st.st_size != entry[2] or st.st_mtime_ns != entry[3]:
                return False
        self.writer.files.update((path, entry[1]) for path, entry in sorted(files.items()))
        for path in files:
            if path.startswith("static/"):
                self.report.static += 1
            elif "/pagefind/" in path:
                self.report.search += 1
            else:
                self.report.pages += 1
        self.report.unchanged += len(files)
        self.files = dict(self.cache.files)
        return True

    def write_static(self) -> None:
        for path in sorted(STATIC.iterdir()):
            if path.is_file():
                data = path.read_bytes()
                self._record(f"static/{path.name}", data, "")
                self.report.static += 1
                version = hashlib.sha256(data).hexdigest()[:10]
                self.static[path.name] = f"static/{path.name}?v={version}"

    def write(self, family: list[Page]) -> None:
        rendered = 0
        for page in family:
            self.report.pages += 1
            key = digest(self.site, page.key) if page.key is not None else ""
            old = self.cache.files.get(page.path)
            if key and old and old[0] == key and self.writer.keep(page.path, old[1], old[2:]):
                self.files[page.path] = old
                self.report.unchanged += 1
                continue
            self._record(page.path, self.render(page), key)
            rendered += 1
        self.store.forget()  # the few whole posts a page asked for (feeds, most boosted)
        self.report.rendered += rendered
        if family:
            kind = family[0].template or family[0].path.rsplit(".", 1)[-1]
            self.log(f"  {kind}: {len(family)} page(s), {rendered} rendered")

    def write_search(self, data: EventData, enabled: bool) -> None:
        """The event's Pagefind indexes, one per block of posts (search.py): a block whose posts
        are unchanged keeps its files, the others are indexed again."""
        if not enabled:
            return
        event, indexed = data.event, 0
        for block in sorted(data.parts.blocks):
            key = digest(self.site, "search", block, data.parts.block_digest(block))
            folder = f"{event.slug}/pagefind/block-{block}/"
            if self._keep_folder(folder, key):
                continue
            posts = data.parts.block_posts(block)
            on = data.parts.block_pages(posts)  # a result links to its page
            entries = [
                search_entry(
                    event, item, anchor_of(item.uri), post[4], bool(photo_rows([post])), page
                )
                for post, item, page in zip(posts, data.whole(posts), on, strict=True)
            ]

            def write(rel: str, body: bytes, folder=folder, key=key) -> None:
                self._record(folder + rel, body, key)

            self.report.search += index_block(entries, write)
            data.store.forget()
            indexed += len(posts)
        if data.parts.stale and data.parts.key:
            data.parts.save()  # the block digests made here, for the next build
        if indexed:
            self.log(f"  search: indexed {indexed} posts of {event.slug}")

    def _keep_folder(self, folder: str, key: str) -> bool:
        """Keep every file the last build wrote under folder with this key, if all are intact."""
        old = {p: e for p, e in self.cache.files.items() if p.startswith(folder)}
        root = self.writer.root
        if not old or any(
            e[0] != key or file_stamp(root / p) != tuple(e[2:]) for p, e in old.items()
        ):
            return False
        for path, entry in old.items():
            self.writer.keep(path, entry[1], entry[2:])
            self.files[path] = entry
            self.report.search += 1
            self.report.unchanged += 1
        return True

    def render(self, page: Page) -> bytes:
        if page.body is not None:
            return page.body()
        root = "../" * page.path.count("/")
        context = {**page.context(), "root": root, "static": self.static}
        if self.fragments is not None and page.template in SHOWN and not context.get("shown_key"):
            self.fragments.prefetch(context[SHOWN[page.template]])
        url = page.path.removesuffix("index.html")
        context["canonical"] = f"{self.base}/{url}" if self.base else ""
        return self.env.get_template(page.template).render(context).encode("utf-8")

    def _record(self, path: str, data: bytes | KeptFile, key: str) -> None:
        self.writer.write_later(path, data, lambda changed: self._recorded(path, key, changed))

    def _recorded(self, path: str, key: str, changed: bool) -> None:
        if changed:
            self.report.written.append(path)
        else:
            self.report.unchanged += 1
        stamp = file_stamp(self.writer.target(path))
        self.files[path] = [key, self.writer.files[path], *(stamp or (0, 0))]

    def finish(self, folder: Path) -> None:
        """The manifest after every page, then the cache: the order a reader can rely on."""
        self.writer.write_manifest()
        self.report.removed = self.writer.removed
        BuildCache(self.site, self.states, self.files).save(folder)
