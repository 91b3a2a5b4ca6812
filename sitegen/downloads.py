"""Feeds and downloads: an Atom feed and a JSON Lines file per event and per talk.

Atom feeds carry the newest posts, leaving out accounts that asked not to be indexed (`noindex`).
The JSON Lines download is the whole archive of the event (or the talk) for researchers: one
item_to_dict per line; deleted, moderated and hidden posts are never in it, since the build never
reads them. A talk's file (posts.jsonl) is oldest first. The event's file (posts.jsonl.gz) is in
the full archive's order, page by page (listings.archive_chunks), each page one gzip member:
`zcat`, `gzip -d` and Python's gzip read the members as one stream, and a build after new posts
arrive compresses only the last page's member again instead of the whole event.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Sequence
from datetime import datetime
from xml.etree import ElementTree as ET

from core.events import Event, Presentation, Site
from core.items import Item, format_time, item_to_dict

from .fragments import Fragments
from .listings import event_chunks
from .pages import EventData, Page, seqs
from .posts import Post, Store
from .render import trusted_html

ATOM = "http://www.w3.org/2005/Atom"
FEED_POSTS = 50


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


def jsonl_gz(data: EventData, cache: Fragments | None = None) -> bytes:
    """The event's posts as gzip members, one per archive page; unchanged pages' from the cache."""
    members = []
    saved = cache.members(data.event.slug) if cache is not None else {}
    for n, chunk in event_chunks(data):
        key = data.seqs(chunk)
        if saved.get(n, ("",))[0] == key:
            members.append(saved[n][1])
            continue
        member = gzip.compress(jsonl(chunk, data.store, cache), compresslevel=6, mtime=0)
        if cache is not None:
            cache.save_member(data.event.slug, n, key, member)
        members.append(member)
    if cache is not None:
        cache.drop_members(data.event.slug, len(members))
    return b"".join(members) or gzip.compress(b"", mtime=0)


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


def newest_indexable(items: Sequence[Post]) -> list[Post]:
    """The newest FEED_POSTS posts not from a `noindex` account, newest first (read from the end:
    an event's feed looks at 50 posts, not 100,000)."""
    found = []
    for item in reversed(items):
        if not item.noindex:
            found.append(item)
            if len(found) == FEED_POSTS:
                break
    return found


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
    key = ("jsonl.gz", [data.seqs(chunk) for _, chunk in event_chunks(data)])  # members' keys
    out = [
        _feed(f"{event.slug}/feed.atom", f"{root}/{event.slug}/feed.atom", page_url,
              f"tag:afeedapart,{event.start}:{event.slug}", event.name, data.items, data.store),
        Page(f"{event.slug}/posts.jsonl.gz", "", key=key, body=lambda: jsonl_gz(data, cache)),
    ]  # fmt: skip
    for talk in event.presentations:
        out += talk_downloads(event, talk, data.posts(talk.slug), root, data, cache)
    return out


def talk_downloads(
    event: Event,
    talk: Presentation,
    posts: list[Post],
    root: str,
    data: EventData,
    cache: Fragments | None = None,
) -> list[Page]:
    folder = f"{event.slug}/talks/{talk.slug}"
    return [
        _feed(f"{folder}/feed.atom", f"{root}/{folder}/feed.atom", f"{root}/{folder}/",
              f"tag:afeedapart,{event.start}:{event.slug}/{talk.slug}",
              f"{talk.title} · {event.name}", posts, data.store),
        Page(f"{folder}/posts.jsonl", "", key=("jsonl", data.seqs(posts)),
             body=lambda: jsonl(posts, data.store, cache)),
    ]  # fmt: skip


def _feed(path, self_url, page_url, feed_id, title, items, store: Store) -> Page:
    key = ("atom", self_url, title, seqs(newest_indexable(items)))
    return Page(
        path, "", key=key, body=lambda: atom(feed_id, title, page_url, self_url, items, store)
    )
