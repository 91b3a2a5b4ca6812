"""Per-post search with no server: the event's search page shows one result per post (author,
time, where it was said, an excerpt with the match) linking to the post's anchor on its talk,
break or event page, with filters for talk, day, room, source and photos.

Pagefind filters whole pages and finds sub-results under headings with an id, so the posts are
indexed as small generated pages: the posts that share every filter value (the same talk, day,
room, source, with or without photos), up to GROUP of them a page, each post under a heading
whose id is its anchor. A filter then holds for every post of a page, each post is a sub-result,
and an index holds one Pagefind page (one fragment file) per hundred posts, not one per post.

The posts are indexed in blocks by row id (BLOCK ids a block), one Pagefind index each under
EVENT/pagefind/block-N/, merged in the browser (Pagefind's mergeIndex). A post's block never
changes, whatever else is added, edited or removed, so a session's rebuild re-indexes the block
its new posts went into (usually the last one), not the event; an edit or a hidden post
re-indexes its own block only. Posts from `noindex` accounts are never indexed.

The pages go to `pagefind --service` (the binary the pagefind package ships) over its own pipe
protocol (base64 JSON messages ending in a comma), written all at once and answered as they come:
the package's asyncio client waits 0.1 s between answers. Each file of an index goes through the
writer like any page: atomic, in the manifest, and kept when its bytes did not change. (Pagefind
writes its filter tables in hash-map order, so their bytes differ from run to run for the same
posts; the records and the word index do not.)
"""

from __future__ import annotations

import base64
import json
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from core.errors import AfaError
from core.events import Event
from core.items import Item

BLOCK = 10_000  # row ids per index: a block holds at most this many of an event's posts
GROUP = 100  # posts per generated page (one fragment file, fetched whole for a result)
# The files of Pagefind's bundle a merged search needs; the rest are its own UIs, which the
# search page does not use.
KEEP = ("pagefind-entry.json", "pagefind.js", "pagefind-worker.js")
KEEP_SUFFIXES = (".pf_meta", ".pagefind")
KEEP_FOLDERS = ("index/", "filter/", "fragment/")
OUTSIDE = "Around the event"  # where a post outside every talk and break is shown
PHOTOS = "With photos"


class SearchError(AfaError):
    """Pagefind failed; its answer is in the message."""


@dataclass(frozen=True)
class Entry:
    """One post as search shows it: the page it is on, its anchor there, and its filters."""

    at: str  # its page, relative to the event's folder: talks/SLUG/, breaks/SLUG/ or ""
    anchor: str
    heading: str  # who and when
    text: str
    where: str  # the talk's or break's title
    filters: tuple[tuple[str, str], ...]  # (name, value), in FILTERS order


def block_of(row_id: int) -> int:
    return row_id // BLOCK


def entry(
    event: Event, item: Item, anchor: str, place: str | None, photos: bool, page: int = 1
) -> Entry:
    """The post's entry; `place` is posts.place_of's "t:slug" / "b:slug" / None, `page` the page
    of its talk or break it is on (paging.py)."""
    where, at, filters = OUTSIDE, "", [("talk", OUTSIDE)]
    if place:
        kind, slug = place.split(":", 1)
        if kind == "t":
            talk = next(p for p in event.presentations if p.slug == slug)
            where, at = talk.title, f"talks/{slug}/"
            filters = [("talk", talk.title), ("room", event.room(talk.room).name)]
        else:
            brk = next(b for b in event.breaks if b.slug == slug)
            where, at, filters = brk.title, f"breaks/{slug}/", [("talk", brk.title)]
    if at and page > 1:
        at += f"page-{page}/"
    day = _day(event, item)
    if day:
        filters.append(("day", day))
    filters.append(("source", item.source))
    if photos:
        filters.append(("photos", PHOTOS))
    author = item.author.name or item.author.handle or item.author.id
    handle = f" ({item.author.handle})" if item.author.handle and item.author.name else ""
    local = item.created_at.astimezone(event.tz)
    heading = f"{author}{handle} · {local:%a %-d %b, %H:%M}"
    text = " ".join(part for part in (item.spoiler, item.text) if part) or "(a post without text)"
    return Entry(at, anchor, heading, text, where, tuple(filters))


def pages(entries: Iterable[Entry]) -> list[tuple[str, str]]:
    """(url, html) of the generated pages that hold these entries: one per set of filter
    values, GROUP posts at most, in the order of each group's first entry."""
    groups: dict[tuple, list[Entry]] = {}
    for found in entries:
        groups.setdefault((found.at, found.where, found.filters), []).append(found)
    out = []
    for (at, where, filters), members in groups.items():
        for start in range(0, len(members), GROUP):
            url = f"{at or './'}?posts={len(out) + 1}"  # Pagefind keeps one page per URL
            out.append((url, page_html(at, where, filters, members[start : start + GROUP])))
    return out


def page_html(at: str, where: str, filters: tuple, members: list[Entry]) -> str:
    """A generated page: filters and meta outside the indexed body (Pagefind reads them from
    anywhere), then each post under a heading with its anchor as id."""
    tags = [
        f'<span data-pagefind-filter="{name}">{escape(value)}</span>' for name, value in filters
    ]
    meta = [
        f'<span data-pagefind-meta="title">{escape(where)}</span>',
        f'<span data-pagefind-meta="where">{escape(where)}</span>',
        f'<span data-pagefind-meta="at">{escape(at)}</span>',
        f'<span data-pagefind-meta="source">{escape(dict(filters)["source"])}</span>',
    ]
    posts = [
        f'<section><h2 id="{escape(m.anchor)}">{escape(m.heading)}</h2><p>{escape(m.text)}</p></section>'
        for m in members
    ]
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title></title></head><body>'
        + "".join(tags + meta)
        + "<main data-pagefind-body>"
        + "".join(posts)
        + "</main></body></html>"
    )


def _day(event: Event, item: Item) -> str:
    """The title of the event day the post was written on (in the event's time zone), if any."""
    local = item.created_at.astimezone(event.tz).date()
    return next((d.title for d in event.days if d.date == local), "")


def index_block(entries: Iterable[Entry], write: Callable[[str, bytes], None]) -> int:
    """Index the entries into one Pagefind bundle; hand each file it needs to write(relpath,
    bytes) (relative to the bundle's folder). Returns how many files."""
    with Service() as service, tempfile.TemporaryDirectory(prefix="afa-pagefind-") as tmp:
        index = service.ask({"type": "NewIndex", "config": {"force_language": "en"}})["index_id"]
        service.ask_all(
            {"type": "AddFile", "index_id": index, "url": url, "file_contents": html,
             "file_path": None}
            for url, html in pages(entries)
        )  # fmt: skip
        service.ask({"type": "WriteFiles", "index_id": index, "output_path": tmp})
        files = sorted(p for p in Path(tmp).rglob("*") if p.is_file())
        count = 0
        for path in files:
            rel = path.relative_to(tmp).as_posix()
            if rel in KEEP or rel.endswith(KEEP_SUFFIXES) or rel.startswith(KEEP_FOLDERS):
                write(rel, path.read_bytes())
                count += 1
        return count


class Service:
    """`pagefind --service`, asked many things at once: requests are written as they come and
    a thread reads the answers, so neither pipe fills while the other waits."""

    def __init__(self) -> None:
        from pagefind_bin import get_executable

        self.proc = subprocess.Popen(
            [str(get_executable()), "--service"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.answers: dict[int, dict] = {}
        self.arrived = threading.Condition()
        self.last = 0
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def __enter__(self) -> Service:
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.reader.join(timeout=5)

    def ask(self, payload: dict[str, Any]) -> dict[str, Any]:
        [answer] = self.ask_all([payload])
        return answer

    def ask_all(self, payloads: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        first = self.last + 1
        for payload in payloads:
            self.last += 1
            message = {"message_id": self.last, "payload": payload}
            self.proc.stdin.write(base64.b64encode(json.dumps(message).encode("utf-8")) + b",")
        self.proc.stdin.flush()
        wanted = range(first, self.last + 1)
        with self.arrived:
            if not self.arrived.wait_for(
                lambda: all(i in self.answers for i in wanted) or self.proc.poll() is not None,
                timeout=600,
            ):
                raise SearchError("pagefind did not answer within 600 s")
        answers = [self.answers.pop(i, None) for i in wanted]
        for answer in answers:
            if answer is None or answer.get("type") == "Error":
                raise SearchError(f"pagefind failed: {answer}")
        return answers  # type: ignore[return-value]

    def _read(self) -> None:
        pending = b""
        stream = self.proc.stdout
        while chunk := stream.read1(1 << 20):
            *messages, pending = (pending + chunk).split(b",")
            for raw in messages:
                message = json.loads(base64.b64decode(raw))
                with self.arrived:
                    self.answers[message.get("message_id")] = message["payload"]
                    self.arrived.notify_all()
        with self.arrived:
            self.arrived.notify_all()
