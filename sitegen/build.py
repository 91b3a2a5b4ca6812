"""build_site(): content/ + archive → output/. Read everything, then write everything.

read content/ and, per event, the archive (one snapshot) → assign posts → pages → writer
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from core.archive import last_seq, open_archive, visible_items
from core.events import Event, load_events, load_site
from core.settings import Settings

from . import pages
from .assign import assign_all
from .pages import EventData, Page
from .render import make_env
from .writer import Writer

STATIC = Path(__file__).parent / "static"
Log = Callable[[str], None]


@dataclass
class BuildReport:
    pages: int = 0
    static: int = 0
    written: list[str] = field(default_factory=list)  # every file changed by this build
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    posts: int = 0
    unplaced: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"built {self.pages} pages and {self.static} static files: {len(self.written)} "
            f"written, {self.unchanged} unchanged, "
            f"{len(self.removed)} removed; {self.posts} posts ({self.unplaced} not in any talk "
            f"or break) in {self.seconds:.2f} s"
        )


def build_site(settings: Settings, log: Log = lambda line: None) -> BuildReport:
    """Build the whole site. Raises ContentErrors before writing anything if content/ is wrong."""
    started = time.perf_counter()
    site = load_site(settings.content_dir)
    events = load_events(settings.content_dir)
    datas = read_archive(settings, events, log)
    builder = _Builder(Writer(settings.output_dir), log)
    builder.write_static()
    builder.write([pages.index_page(site, datas)])
    for data in datas:
        builder.write([pages.event_page(site, data)])
        builder.write(pages.talk_pages(site, data))
        builder.write(pages.break_pages(site, data))
        builder.write([pages.live_page(site, data)])
    builder.writer.write_manifest()
    report = builder.report
    report.removed = builder.writer.removed
    report.posts = sum(len(d.items) for d in datas)
    report.unplaced = sum(len(d.assignment.unplaced) for d in datas)
    report.seconds = time.perf_counter() - started
    return report


def read_archive(settings: Settings, events: list[Event], log: Log) -> list[EventData]:
    path = Path(settings.archive_path)
    if not path.exists():
        log(f"no archive at {path} yet: building pages without posts")
        return [_empty(settings, e) for e in events]
    db = open_archive(path)
    try:
        return [read_event(db, settings, e, log) for e in events]
    finally:
        db.close()


def read_event(db: sqlite_utils.Database, settings: Settings, event: Event, log: Log) -> EventData:
    """One consistent snapshot of an event: its visible items and the sequence they reflect."""
    db.execute("BEGIN")
    try:
        seq = last_seq(db, event.slug)
        items = [i for i in visible_items(db, event.slug) if not i.author.hidden]
    finally:
        db.execute("COMMIT")
    log(f"{event.slug}: {len(items)} posts up to change {seq}")
    data = _empty(settings, event)
    data.items, data.last_seq = items, seq
    data.assignment = assign_all(event, items)
    return data


def _empty(settings: Settings, event: Event) -> EventData:
    stream = f"{settings.public_live_url.rstrip('/')}/live/{event.slug}/stream"
    return EventData(event, [], assign_all(event, []), 0, stream, settings.live_inline_posts)


class _Builder:
    """Renders pages with the one Jinja environment and hands the bytes to the writer."""

    def __init__(self, writer: Writer, log: Log) -> None:
        self.writer = writer
        self.log = log
        self.env = make_env()
        self.report = BuildReport()
        self.static: dict[str, str] = {}  # file name -> "static/name?v=hash"

    def write_static(self) -> None:
        for path in sorted(STATIC.iterdir()):
            if path.is_file():
                data = path.read_bytes()
                self._record(f"static/{path.name}", data)
                self.report.static += 1
                version = hashlib.sha256(data).hexdigest()[:10]
                self.static[path.name] = f"static/{path.name}?v={version}"

    def write(self, family: Iterable[Page]) -> None:
        family = list(family)
        for page in family:
            root = "../" * page.path.count("/")
            context = {**page.context, "root": root, "static": self.static}
            html = self.env.get_template(page.template).render(context)
            self._record(page.path, html.encode("utf-8"))
            self.report.pages += 1
        if family:
            self.log(f"  {family[0].template}: {len(family)} page(s)")

    def _record(self, path: str, data: bytes) -> None:
        if self.writer.write_file(path, data):
            self.report.written.append(path)
        else:
            self.report.unchanged += 1
