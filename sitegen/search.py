"""Per-post search with no server: each post is one Pagefind record (author, time, where it was
said, its text) whose URL is the post's anchor on its talk, break or event page, with filters
for talk, day, room, source and photos. The event's search page merges the indexes in the
browser (Pagefind's mergeIndex) and shows one result per post.

The posts are indexed in blocks by row id (BLOCK ids a block), one Pagefind index each under
EVENT/pagefind/block-N/. A post's block never changes, whatever else is added, edited or
removed, so a session's rebuild re-indexes the block its new posts went into (usually the last
one), not the event; an edit or a hidden post re-indexes its own block only. Posts from `noindex`
accounts are never indexed.

Records go to `pagefind --service` (the binary the pagefind package ships) over its own pipe
protocol (base64 JSON messages ending in a comma), written all at once and answered as they come:
the package's asyncio client waits 0.1 s between answers, which is 17 minutes for 10,000 posts.
Each file of an index goes through the writer like any page: atomic, in the manifest, and kept
when its bytes did not change.
"""

from __future__ import annotations

import base64
import json
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import AfaError
from core.events import Event
from core.items import Item, format_time

BLOCK = 10_000  # row ids per index: a block holds at most this many of an event's posts
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
class Record:
    """One post as Pagefind keeps it."""

    url: str  # relative to the event's folder: talks/SLUG/#ANCHOR, breaks/…, or #ANCHOR
    content: str
    meta: dict[str, str]
    filters: dict[str, list[str]]


def block_of(row_id: int) -> int:
    return row_id // BLOCK


def record(event: Event, item: Item, anchor: str, place: str | None, photos: bool) -> Record:
    """The post's record; `place` is posts.place_of's "t:slug" / "b:slug" / None."""
    where, url, filters = OUTSIDE, f"#{anchor}", {"talk": [OUTSIDE]}
    if place:
        kind, slug = place.split(":", 1)
        if kind == "t":
            talk = next(p for p in event.presentations if p.slug == slug)
            where, url = talk.title, f"talks/{slug}/#{anchor}"
            filters = {"talk": [talk.title], "room": [event.room(talk.room).name]}
        else:
            brk = next(b for b in event.breaks if b.slug == slug)
            where, url = brk.title, f"breaks/{slug}/#{anchor}"
            filters = {"talk": [brk.title]}
    day = _day(event, item)
    if day:
        filters["day"] = [day]
    filters["source"] = [item.source]
    if photos:
        filters["photos"] = [PHOTOS]
    author = item.author.name or item.author.handle or item.author.id
    local = item.created_at.astimezone(event.tz)
    meta = {
        "at": url,  # the page's own URL is relative to the event's folder; Pagefind would root it
        "title": author,
        "handle": item.author.handle,
        "time": format_time(item.created_at),
        "when": f"{local:%a %-d %b, %H:%M}",
        "where": where,
        "source": item.source,
    }
    text = " ".join(part for part in (item.spoiler, item.text) if part)
    return Record(
        url, f"{author} {item.author.handle}\n{text or '(a post without text)'}", meta, filters
    )


def _day(event: Event, item: Item) -> str:
    """The title of the event day the post was written on (in the event's time zone), if any."""
    local = item.created_at.astimezone(event.tz).date()
    return next((d.title for d in event.days if d.date == local), "")


def index_block(records: Iterable[Record], write: Callable[[str, bytes], None]) -> int:
    """Index the records into one Pagefind bundle; hand each file it needs to write(relpath,
    bytes) (relative to the bundle's folder). Returns how many files."""
    with Service() as service, tempfile.TemporaryDirectory(prefix="afa-pagefind-") as tmp:
        index = service.ask({"type": "NewIndex", "config": {"force_language": "en"}})["index_id"]
        service.ask_all(
            {"type": "AddRecord", "index_id": index, "url": r.url, "content": r.content,
             "language": "en", "meta": r.meta, "filters": r.filters, "sort": None}
            for r in records
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
