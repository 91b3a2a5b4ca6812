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
from zoneinfo import ZoneInfo

from markupsafe import Markup

from core.events import Site
from core.items import format_time

from . import stats, tallies
from .pages import EventData, Page, day_chart, schedule_rows, seqs
from .posts import Post


def day_pages(site: Site, data: EventData) -> list[Page]:
    """A page per day, made from the tallies of the parts in the day's span: only a day whose
    parts changed is rendered, and even then no post of it is read."""
    event, pages = data.event, []
    dated = [(n, first, last, _dates(event, (first, last)))
             for n, first, last, _ in archive_summary(data)]  # fmt: skip
    for day in event.days:
        talks = [p for s in day.sessions for p in s.presentations]
        archive = [(n, first, last) for n, first, last, dates in dated if day.date in dates]

        def context(day=day, archive=archive, talks=talks) -> dict[str, Any]:
            found = data.day_tallies(day)
            return {
                "site": site,
                "event": event,
                "data": data,
                "day": day,
                "rows": schedule_rows(day),
                "chart": day_chart(data, day, "chart"),
                "count": sum(t["n"] for t in found),
                "links": tallies.top_links(found),
                "photos": tallies.first_photos(found, 24),
                "people": tallies.participants(found),
                "archive": archive,
                "counts": {t.slug: data.count(t.slug) for t in talks},
            }

        key = ("day", str(day.date), data.day_key(day), [n for n, _, _ in archive])
        path = f"{event.slug}/days/{day.date}/index.html"
        pages.append(Page(path, "day.html", context, key))
    return pages


def archive_summary(data: EventData) -> list[tuple[int, Post, Post, int]]:
    """(page number from 1, its first post, its last post, how many) for each archive page,
    from the parts' saved ends of each page."""
    return [(n, Post(first), Post(last), k)
            for n, (_, first, last, k) in enumerate(data.parts.chunks, start=1)]  # fmt: skip


def archive_pages(site: Site, data: EventData) -> list[Page]:
    event, chunks = data.event, data.parts.chunks
    total = len(chunks)
    pages = []
    for n, (chunk_digest, *_) in enumerate(chunks, start=1):

        def context(n=n) -> dict[str, Any]:
            posts = data.parts.chunk_posts(n)
            return {"site": site, "event": event, "posts": posts, "n": n, "more": n < total}

        key = ("archive", n, n < total, chunk_digest)
        pages.append(
            Page(f"{event.slug}/archive/page-{n}/index.html", "archive.html", context, key)
        )
    summary = archive_summary(data)

    def index() -> dict[str, Any]:
        return {"site": site, "event": event, "pages": summary, "count": data.total,
                "rows": archive_rows(summary, event.timezone)}  # fmt: skip

    key = ("archive-index", [(n, seqs((a, b)), k) for n, a, b, k in summary])
    pages.append(Page(f"{event.slug}/archive/index.html", "archive_index.html", index, key))
    return pages


def archive_rows(summary: list[tuple[int, Post, Post, int]], tz: str) -> Markup:
    """The archive index's list, one item per archive page (2,000 at a million posts: made here
    rather than by a Jinja loop, which took a tenth of a session's rebuild)."""
    zone, shown, rows = ZoneInfo(tz), "%a %-d %b %H:%M", []
    for n, first, last, k in summary:
        a, b = first.created_at, last.created_at
        rows.append(
            f'<li><a href="page-{n}/">Page {n}</a>: {k} posts, <time datetime="{format_time(a)}">'
            f"{a.astimezone(zone).strftime(shown)}</time>–<time "
            f'datetime="{format_time(b)}">{b.astimezone(zone).strftime(shown)}</time></li>'
        )
    return Markup("".join(rows))


def gallery_pages(site: Site, data: EventData) -> list[Page]:
    event = data.event
    digests = data.parts.gallery or [seqs([])]
    total = len(digests)
    pages = []
    for n, chunk_digest in enumerate(digests, start=1):

        def context(n=n) -> dict[str, Any]:
            return {
                "site": site,
                "event": event,
                "photos": [stats.photo(row) for row in data.parts.gallery_rows(n)],
                "n": n,
                "paged": total > 1,
                "more": n < total,
                "locate": data.locate,
            }

        key = ("gallery", n, total > 1, n < total, chunk_digest)
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
    """The days a page of posts (in time order) runs over, from its first and last post."""
    first = chunk[0].created_at.astimezone(event.tz).date()
    last = chunk[-1].created_at.astimezone(event.tz).date()
    return {first, last} | ({d.date for d in event.days if first <= d.date <= last})
