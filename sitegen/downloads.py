"""Feeds and downloads: an Atom feed and a JSON Lines file per event and per talk.

Atom feeds carry the newest posts, leaving out accounts that asked not to be indexed (`noindex`).
The JSON Lines download is the whole archive of the event (or the talk) for researchers: one
item_to_dict per line; deleted, moderated and hidden posts are never in it, since the build never
reads them. A talk's file (posts.jsonl) is in the order of the talk's pages, each page oldest
first (so up to 500 posts, oldest first), and each page's text is kept for the next build. The
event's file (posts.jsonl.gz) is in the full archive's order, page by page (Parts.chunk_posts),
each page one gzip member:
`zcat`, `gzip -d` and Python's gzip read the members as one stream, and a build after new posts
arrive compresses only the last page's member again instead of the whole event.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from functools import lru_cache
from xml.etree import ElementTree as ET

from core.events import Event, Presentation, Site
from core.items import Item, format_time, item_to_dict

from . import kept
from .fragments import Fragments
from .pages import EventData, Page, seqs
from .posts import Post, Store
from .render import trusted_html
from .tallies import FEED_POSTS, newest_indexable
from .writer import KeptFile

ATOM = "http://www.w3.org/2005/Atom"


def jsonl_line(item: Item) -> str:
    data = item_to_dict(item)
    data["html"] = str(trusted_html(item.html))  # as the pages show it
    data["extra"] = {k: v for k, v in data["extra"].items() if k in ("seq",)}
    return json.dumps(data, ensure_ascii=False, sort_keys=True)


def jsonl(posts: Sequence[Post], store: Store, cache: Fragments | None = None) -> bytes:
    if cache is None:
        lines = [jsonl_line(item) for item in store.whole(posts)]
    else:
        cache.prefetch(posts, "line")
        lines = cache.lines(posts, lambda post: jsonl_line(store.get(post[0])))
    return ("\n".join(lines) + "\n" if lines else "").encode("utf-8")


def talk_jsonl(data: EventData, slug: str, cache: Fragments | None = None) -> bytes | KeptFile:
    """A talk's posts, page by page of its posts (paging.py, each page oldest first): a session
    that adds to the last page makes that page's lines again, not the talk's 16,000."""
    chunks = data.pages(data.posts(slug))
    members = [(data.seqs(chunk), lambda chunk=chunk: jsonl(chunk, data.store, cache))
               for chunk in chunks]  # fmt: skip
    return assembled(cache, f"{data.event.slug}/talks/{slug}", members)


def jsonl_gz(data: EventData, cache: Fragments | None = None) -> bytes | KeptFile:
    """The event's posts as gzip members, one per archive page."""
    if not data.parts.chunks:
        return gzip.compress(b"", mtime=0)

    def member(n: int) -> Future:
        lines = jsonl(data.parts.chunk_posts(n), data.store, cache)
        return _compressor().submit(gzip.compress, lines, compresslevel=6, mtime=0)

    members = [(chunk[0], lambda n=n: member(n)) for n, chunk in enumerate(data.parts.chunks, 1)]
    return assembled(cache, data.event.slug, members)


@lru_cache(1)
def _compressor() -> ThreadPoolExecutor:
    """zlib lets go of the GIL while it compresses: a member is compressed here while the build's
    thread makes the next one's lines (a full build's 82 MB download at a million posts)."""
    return ThreadPoolExecutor(1, thread_name_prefix="afa-gzip")


IN_FLIGHT = 4  # members made and not yet compressed: each holds its lines (1 MB at most)


def _bytes_of(makes: list[Callable[[], bytes | Future]]) -> list[bytes]:
    """Each make() in order; those that give a Future are waited for, at most IN_FLIGHT behind."""
    made: list[bytes | Future] = []
    waiting: deque[int] = deque()
    for make in makes:
        made.append(make())
        if isinstance(made[-1], Future):
            waiting.append(len(made) - 1)
            if len(waiting) > IN_FLIGHT:
                k = waiting.popleft()
                made[k] = made[k].result()
    return [m.result() if isinstance(m, Future) else m for m in made]


def assembled(
    cache: Fragments | None, name: str, members: list[tuple[str, Callable[[], bytes | Future]]]
) -> bytes | KeptFile:
    """A download made of members (key, make): the kept file of its version before last,
    rewritten from its first changed member (kept.py: a 100 MB file after a session is not
    read, joined and written again); the members after that are read from the last version's
    file when it has them, else made."""
    if cache is None:
        return b"".join(_bytes_of([make for _, make in members]))
    keys = [key for key, _ in members]
    choice = kept.choose(cache.kept_slots(name), keys)
    cache.unkeep(name, choice.slot)  # until it is made again: a build that dies must not use it
    start, known = choice.start, choice.known
    tail = kept.members_of(choice.linked, start, known) if known > start else None
    if tail is None:
        tail, known = [], start
    tail += _bytes_of([make for _, make in members[max(start, known) :]])
    plan = kept.Plan(
        choice.base, start, choice.in_place, keys[start:], tail, twin=choice.linked is None
    )
    return cache.keep_file(name, choice.slot, plan)


def atom(
    feed_id: str, title: str, page_url: str, self_url: str, items: Sequence[Post], store: Store
) -> bytes:
    """A valid Atom 1.0 feed of the newest FEED_POSTS indexable posts, newest first."""
    shown = store.whole(newest_indexable(items))
    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed")
    _text(feed, "id", feed_id)
    _text(feed, "title", title)
    updated = max((i.edited_at or i.created_at for i in shown), default=None)
    _text(feed, "updated", format_time(updated or datetime(2000, 1, 1)))
    ET.SubElement(feed, f"{{{ATOM}}}link", rel="alternate", type="text/html", href=page_url)
    ET.SubElement(feed, f"{{{ATOM}}}link", rel="self", type="application/atom+xml", href=self_url)
    _text(feed, "generator", "A Feed Apart")
    for item in shown:
        feed.append(_entry(item))
    ET.indent(feed)
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True) + b"\n"


def _entry(item: Item) -> ET.Element:
    entry = ET.Element(f"{{{ATOM}}}entry")
    _text(entry, "id", item.uri)
    text = item.text or item.spoiler or "(a post)"
    _text(entry, "title", (text[:80] + "…") if len(text) > 80 else text)
    _text(entry, "updated", format_time(item.edited_at or item.created_at))
    _text(entry, "published", format_time(item.created_at))
    author = ET.SubElement(entry, f"{{{ATOM}}}author")
    _text(author, "name", item.author.name or item.author.handle or item.author.id)
    if item.author.url.startswith(("http://", "https://")):
        _text(author, "uri", item.author.url)
    if item.url.startswith(("http://", "https://")):
        ET.SubElement(entry, f"{{{ATOM}}}link", rel="alternate", href=item.url)
    if item.spoiler:
        _text(entry, "summary", item.spoiler)
    else:
        _text(entry, "content", str(trusted_html(item.html))).set("type", "html")
    return entry


def _text(parent: ET.Element, name: str, value: str | None) -> ET.Element:
    child = ET.SubElement(parent, f"{{{ATOM}}}{name}")
    child.text = _NOT_XML.sub("", value or "")  # an archive may predate the collector's clean text
    return child


_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")  # XML 1.0 refuses


def base(site: Site, fallback: str) -> str:
    return (site.base_url or fallback or "").rstrip("/")


def event_downloads(
    site: Site, data: EventData, base_url: str, cache: Fragments | None = None
) -> list[Page]:
    event, root = data.event, base(site, base_url)
    page_url = f"{root}/{event.slug}/"
    key = ("jsonl.gz", [chunk[0] for chunk in data.parts.chunks])  # members' keys
    newest = data.parts.newest(FEED_POSTS, _indexable)
    out = [
        _feed(f"{event.slug}/feed.atom", f"{root}/{event.slug}/feed.atom", page_url,
              f"tag:afeedapart,{event.start}:{event.slug}", event.name, newest, data.store),
        Page(f"{event.slug}/posts.jsonl.gz", "", key=key, body=lambda: jsonl_gz(data, cache)),
    ]  # fmt: skip
    for talk in event.presentations:
        out += talk_downloads(event, talk, root, data, cache)
    return out


def _indexable(post: Post) -> bool:
    return not post[6]


def talk_downloads(
    event: Event, talk: Presentation, root: str, data: EventData, cache: Fragments | None = None
) -> list[Page]:
    """A talk's feed and posts.jsonl, keyed by its tally: its posts are read when one changed."""
    folder, slug = f"{event.slug}/talks/{talk.slug}", talk.slug
    feed = _feed(f"{folder}/feed.atom", f"{root}/{folder}/feed.atom", f"{root}/{folder}/",
                 f"tag:afeedapart,{event.start}:{event.slug}/{slug}",
                 f"{talk.title} · {event.name}", lambda: data.posts(slug), data.store,
                 data.digest(slug, "feed"))  # fmt: skip
    return [
        feed,
        Page(f"{folder}/posts.jsonl", "", key=("jsonl", data.digest(slug)),
             body=lambda: talk_jsonl(data, slug, cache)),
    ]  # fmt: skip


def _feed(path, self_url, page_url, feed_id, title, items, store: Store, newest=None) -> Page:
    """A feed of `items` (or of what items() gives, read only when the feed is made), keyed by
    the seqs of its newest indexable posts (`newest`, when its tally has them)."""
    posts = items if not callable(items) else None
    if newest is None:
        newest = seqs(newest_indexable(posts))

    def body() -> bytes:
        found = posts if posts is not None else items()
        return atom(feed_id, title, page_url, self_url, found, store)

    return Page(path, "", key=("atom", self_url, title, newest), body=body)
