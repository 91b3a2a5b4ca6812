"""Page families that list an event's posts in other cuts: days, the full archive in fixed-size
pages, the photo gallery, and speakers across events. Pure, like pages.py.

Archive and gallery pages hold a fixed number of posts (photos) each, in the order the archive
received them (row id), and each page shows its posts in time order. So page N's URL keeps
pointing at the same posts as later posts arrive, even a post that arrives late with an old
timestamp: only the last page grows, and a build after a session renders one or two archive
pages, not every page after the session. (A post deleted or moderated away shifts the pages after
it by one.) Every post's anchor (stats.anchor) is derived from its uri, so links to a post stay
valid.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from datetime import date
from typing import Any

from core.events import Site

from . import paging, stats
from .pages import (
    ARCHIVE_PAGE,
    EventData,
    Page,
    day_chart,
    day_span,
    schedule_rows,
    seqs,
)
from .posts import Post

GALLERY_PAGE = 120  # photos per gallery page


def day_pages(site: Site, data: EventData) -> list[Page]:
    event, pages = data.event, []
    chunks = event_chunks(data)
    for day in event.days:
        span = day_span(event, day)
        posts = data.span(*span) if span else []
        talks = [p for s in day.sessions for p in s.presentations]
        archive = [(n, c) for n, c in chunks if _dates(event, c) & {day.date}]

        def context(day=day, posts=posts, archive=archive, talks=talks) -> dict[str, Any]:
            return {
                "site": site,
                "event": event,
                "data": data,
                "day": day,
                "rows": schedule_rows(day),
                "chart": day_chart(data, day, "chart"),
                "posts": posts,
                "links": stats.top_links(posts),
                "photos": stats.photos(posts, limit=24),
                "people": stats.participants(posts),
                "archive": [(n, c[0], c[-1]) for n, c in archive],
                "counts": {t.slug: data.count(t.slug) for t in talks},
            }

        key = ("day", str(day.date), data.seqs(posts), [n for n, _ in archive])
        path = f"{event.slug}/days/{day.date}/index.html"
        pages.append(Page(path, "day.html", context, key))
    return pages


def archive_chunks(arrival: Sequence[Post]) -> list[tuple[int, list[Post]]]:
    """(page number from 1, its posts in time order): fixed-size slices of the archive in the
    order it received them."""
    return list(enumerate(paging.cut(arrival, ARCHIVE_PAGE), start=1))


def event_chunks(data: EventData) -> list[tuple[int, list[Post]]]:
    """archive_chunks of the event's posts, made once per build."""
    found = data._cache.get("chunks")
    if found is None:
        found = data._cache["chunks"] = archive_chunks(data.arrival)
    return found


def _post_time(row: tuple[Post, tuple]) -> int:
    """A photo row's place in time: its post's (a stable sort keeps ties in arrival order)."""
    return row[0][3]


def archive_pages(site: Site, data: EventData) -> list[Page]:
    event, chunks = data.event, event_chunks(data)
    total = len(chunks)
    pages = []
    for n, posts in chunks:

        def context(n=n, posts=posts) -> dict[str, Any]:
            return {"site": site, "event": event, "posts": posts, "n": n, "more": n < total}

        key = ("archive", n, n < total, data.seqs(posts))
        pages.append(
            Page(f"{event.slug}/archive/page-{n}/index.html", "archive.html", context, key)
        )
    summary = [(n, c[0], c[-1], len(c)) for n, c in chunks]

    def index() -> dict[str, Any]:
        return {"site": site, "event": event, "pages": summary, "count": len(data.items)}

    key = ("archive-index", [(n, seqs((a, b)), k) for n, a, b, k in summary])
    pages.append(Page(f"{event.slug}/archive/index.html", "archive_index.html", index, key))
    return pages


def gallery_pages(site: Site, data: EventData) -> list[Page]:
    event = data.event
    photos = stats.photo_rows(data.arrival)
    chunks = paging.cut(photos, GALLERY_PAGE, key=_post_time) or [[]]
    pages = []
    for n, chunk in enumerate(chunks, start=1):

        def context(n=n, chunk=chunk) -> dict[str, Any]:
            return {
                "site": site,
                "event": event,
                "photos": [stats.photo(row) for row in chunk],
                "n": n,
                "paged": len(chunks) > 1,
                "more": n < len(chunks),
                "locate": data.locate,
            }

        key = ("gallery", n, len(chunks) > 1, n < len(chunks), data.seqs([row[0] for row in chunk]))
        path = (
            f"{event.slug}/photos/index.html"
            if n == 1
            else f"{event.slug}/photos/page-{n}/index.html"
        )
        pages.append(Page(path, "gallery.html", context, key))
    return pages


def slugify(name: str) -> str:
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-") or "speaker"


def speaker_pages(site: Site, events: list[EventData]) -> list[Page]:
    """/speakers/<slug>/: every talk of one speaker across events, and /speakers/ listing them."""
    talks: dict[str, list] = {}
    names: dict[str, str] = {}
    for data in events:
        for talk in data.event.presentations:
            for name in talk.speakers:
                slug = slugify(name)
                names.setdefault(slug, name)
                talks.setdefault(slug, []).append((data.event, talk, data.count(talk.slug)))
    pages = []
    for slug in sorted(talks):
        rows = sorted(talks[slug], key=lambda r: r[1].start)

        def context(slug=slug, rows=rows) -> dict[str, Any]:
            return {"site": site, "name": names[slug], "talks": rows}

        pages.append(
            Page(
                f"speakers/{slug}/index.html",
                "speaker.html",
                context,
                ("speaker", names[slug], [(e.slug, t.slug, n) for e, t, n in rows]),
            )
        )
    everyone = sorted(((names[s], s, len(talks[s])) for s in talks), key=lambda r: r[0].casefold())
    pages.append(
        Page(
            "speakers/index.html",
            "speakers.html",
            lambda: {"site": site, "speakers": everyone},
            ("speakers", everyone),
        )
    )
    return pages


def _dates(event, chunk: Sequence[Post]) -> set[date]:
    first = chunk[0].created_at.astimezone(event.tz).date()
    last = chunk[-1].created_at.astimezone(event.tz).date()
    return {first, last} | ({d.date for d in event.days if first <= d.date <= last})
