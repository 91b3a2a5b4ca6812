"""One function per page family: each returns Pages (output path, template, context, key). Pure.

The build reads the archive once per event into an EventData; these functions only arrange it.
A page's context is a function, called only when the page is rendered; its `key` names every
input besides the templates and content/ (the build adds a digest of both, so a talk is named by
its slug), so an unchanged key means an unchanged page (the build then skips rendering it).
Posts are keyed by their seq: any edit gives a new one.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import pairwise
from operator import itemgetter
from typing import Any

from core.events import Break, Day, Event, Presentation, Site
from core.items import Item

from . import charts, paging, stats, tallies
from .cache import digest
from .markdown import render_markdown
from .parts import NONE, Parts, day_span
from .posts import TIME_ORDER, Post, Store, micros, seqs

T = itemgetter(3)  # a Post's time, at C speed
TALK_PHOTOS = 24  # a talk's first photos on its page; the gallery has all (1,391 at 1M posts)
__all__ = ["day_span", "seqs"]


@dataclass(frozen=True)
class Page:
    path: str  # under output/, e.g. "northwind-2026/talks/x/index.html"
    template: str  # a Jinja template, or "" when body() gives the bytes (feeds, downloads)
    context: Callable[[], dict[str, Any]] = dict
    key: Any = None  # the page's inputs; None means always render
    body: Callable[[], bytes] | None = None


@dataclass
class EventData:
    """What the archive holds for one event, read in one snapshot: its parts (parts.py), read
    only as far as the pages a build renders need them."""

    event: Event
    parts: Parts
    last_seq: int = 0
    stream_url: str = ""
    inline_posts: int = 50
    counts_as_of: datetime | None = None  # when reaction counts were last refreshed
    room: Any = None  # room.RoomData: pins and meet-up proposals (read by room.read_room)
    memo: Callable[[str, Callable[[], Any]], Any] = lambda key, make: make()  # charts kept
    store: Store = field(default_factory=lambda: Store(None), repr=False)  # the build's posts
    _cache: dict[Any, Any] = field(default_factory=dict, repr=False)

    @property
    def items(self) -> list[Post]:
        """Every post, oldest first: reads every part (for tools and the benchmark's floor)."""
        found = self._cache.get("items")
        if found is None:
            found = self._cache["items"] = self.parts.all()
        return found

    @property
    def total(self) -> int:
        return self.parts.count

    def seqs(self, items: Iterable[Post]) -> str:
        """seqs(items), each list digested once per build."""
        return seqs(items, self._cache.setdefault("seqs", {}))

    def whole(self, posts: Iterable[Post]) -> list[Item]:
        """The whole Items of these posts (for what their summary rows do not hold)."""
        return self.store.whole(posts)

    def locate(self, item: Post, root: str = "") -> str:
        """Where a post is in the full archive: archive/page-N/#anchor (relative to the event)."""
        n = self.parts.position(item.id)
        return f"{root}archive/page-{n // paging.ARCHIVE_PAGE + 1}/#{item.anchor}"

    def pages(self, posts: list[Post]) -> list[list[Post]]:
        """paging.paged(posts), once per list per build."""
        memo = self._cache.setdefault("pages", {})
        found = memo.get(id(posts))
        if found is None or found[0] is not posts:
            found = memo[id(posts)] = (posts, paging.paged(posts))
        return found[1]

    def count(self, slug: str) -> int:
        return sum(self.parts.tallies[n]["n"] for n in self.parts.part_names(self._place(slug)))

    def posts(self, slug: str) -> list[Post]:
        """A talk's or break's posts, oldest first."""
        return self.parts.place(self._place(slug))

    def digest(self, slug: str, field: str = "seqs"):
        """A talk's or break's seqs digest (or page digests, "pages"), without reading it."""
        return self.parts.place_tally(self._place(slug), field)

    def tallies(self, slug: str) -> list[dict]:
        """The tallies of a talk's or break's parts (one part, unless it spans days)."""
        return [self.parts.tallies[n] for n in self.parts.part_names(self._place(slug))]

    def unplaced(self) -> list[Post]:
        return self.parts.place(NONE)

    def count_unplaced(self) -> int:
        return sum(self.parts.tallies[n]["n"] for n in self.parts.part_names(NONE))

    def _place(self, slug: str) -> str:
        breaks = self._cache.get("breaks")
        if breaks is None:
            breaks = self._cache["breaks"] = {b.slug for b in self.event.breaks}
        return f"b:{slug}" if slug in breaks else f"t:{slug}"

    def day_tallies(self, day: Day) -> list[dict]:
        return [self.parts.tallies[n] for n in self.parts.part_names(day=day.date.isoformat())]

    def day_key(self, day: Day) -> list:
        names = self.parts.part_names(day=day.date.isoformat())
        return [(n, self.parts.tallies[n]["seqs"]) for n in names if self.parts.tallies[n]["n"]]

    def day_posts(self, day: Day) -> list[Post]:
        """The posts in a day's span, oldest first (reads its parts)."""
        names = self.parts.part_names(day=day.date.isoformat())
        return sorted((p for n in names for p in self.parts.rows(n)), key=TIME_ORDER)

    def newest(self, n: int) -> list[Post]:
        """newest(items, n) without reading more than the newest parts."""
        key = ("newest", n)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = newest(self.parts.newest(n), n)
        return found

    def status(self, now: datetime) -> str:
        """live, upcoming or past, by the event's dates in its own time zone."""
        today = now.astimezone(self.event.tz).date()
        if today < self.event.start:
            return "upcoming"
        return "past" if today > self.event.end else "live"

    def sparkline(self, talk: Presentation):
        end = talk.end + self.event.grace
        return self.memo(
            digest(("sparkline", talk.slug, talk.title, talk.start, end, self.digest(talk.slug))),
            lambda: charts.sparkline(
                activity(self.posts(talk.slug), talk.start, end, timedelta(minutes=5)),
                f"Posts per 5 minutes during {talk.title}",
            ),
        )


@dataclass(frozen=True)
class Slot:
    """One row of a day's schedule: talks starting together in parallel rooms, or a break."""

    start: datetime
    end: datetime
    talks: dict[str, Presentation]  # room slug -> talk
    brk: Break | None = None


def part_seqs(data: EventData) -> list[tuple[str, str]]:
    """What seqs(data.items) tells apart, from the parts' tallies (each post is in one part):
    the same digests mean the same posts."""
    tallies = data.parts.tallies
    return [(name, tallies[name]["seqs"]) for name in sorted(tallies) if tallies[name]["n"]]


def index_page(site: Site, events: list[EventData], now: datetime) -> Page:
    groups = {"live": [], "upcoming": [], "past": []}
    for data in events:
        groups[data.status(now)].append(data)
    groups["past"].reverse()  # newest past event first
    key = ("index", [(d.event.slug, d.status(now), d.total) for d in events])
    return Page("index.html", "index.html", lambda: {"site": site, "groups": groups}, key)


def event_page(site: Site, data: EventData) -> Page:
    event = data.event

    def context() -> dict[str, Any]:
        return {
            "site": site,
            "data": data,
            "event": event,
            "description": markdown(data.memo, event.description),
            "days": [(day, schedule_rows(day), day_chart(data, day)) for day in event.days],
            "unplaced": data.unplaced(),
            "total": data.total,
            "links": tallies.top_links(data.parts.tallies.values()),
            "photos": stats.photos(reversed(data.parts.newest(12, stats.shows_photo)), limit=12),
            "people": tallies.participants(data.parts.tallies.values()),
            "og_description": f"{data.total} posts about {event.name}.",
            "og_image": _photo_url(tallies.first_photos(data.parts.tallies.values(), 1)),
        }

    key = ("event", part_seqs(data), data.last_seq)
    return Page(f"{event.slug}/index.html", "event.html", context, key)


def talk_pages(site: Site, data: EventData) -> list[Page]:
    event = data.event
    out = []
    for talk in event.presentations:
        same_room = sorted((p for p in event.presentations if p.room == talk.room), key=_start)
        i = same_room.index(talk)
        previous = same_room[i - 1] if i > 0 else None
        following = same_room[i + 1] if i + 1 < len(same_room) else None
        key = ("talk", talk.slug, _slug(previous), _slug(following), data.digest(talk.slug))
        context = _talk_context(site, event, talk, previous, following, data)
        folder = f"{event.slug}/talks/{talk.slug}"
        out.append(Page(f"{folder}/index.html", "presentation.html", context, key))
        out += more_pages(site, data, folder, talk.title, talk.slug)
    return out


def more_pages(site: Site, data: EventData, folder: str, title: str, slug: str) -> list[Page]:
    """Pages 2, 3… of a talk's or break's posts (paging.py), when one page does not hold them:
    keyed by the digests its part's tally keeps, so an untouched talk's posts are not read."""
    digests = data.digest(slug, "pages") or []
    total, out = len(digests), []
    for n, chunk_digest in enumerate(digests[1:], start=2):

        def context(n=n) -> dict[str, Any]:
            chunk = data.pages(data.posts(slug))[n - 1]
            return {"site": site, "event": data.event, "title": title, "posts": chunk,
                    "pager": paging.pager(n, total)}  # fmt: skip

        key = ("posts-page", folder, n, n < total, chunk_digest)  # not the total: see pager
        out.append(Page(paging.page_path(folder, n), "posts_page.html", context, key))
    return out


def markdown(memo: Callable[[str, Callable[[], Any]], Any], text: str) -> str:
    """render_markdown(text), kept by the build's memo (the Markdown library takes longer to
    set up than a session's rebuild may spend on it)."""
    if not text:
        return ""
    return str(memo(digest(("markdown", text)), lambda: render_markdown(text)))


def _talk_context(
    site, event, talk, previous, following, data: EventData
) -> Callable[[], dict[str, Any]]:
    def context() -> dict[str, Any]:
        posts = data.posts(talk.slug)
        chunks = data.pages(posts)
        photos = stats.photos(posts, limit=TALK_PHOTOS + 1)
        return {
            "site": site,
            "event": event,
            "talk": talk,
            "room": event.room(talk.room),
            "abstract": markdown(data.memo, talk.abstract),
            "posts": posts,
            "shown": chunks[0],
            # a full first page keeps its posts as the talk grows: its list is kept whole
            "shown_key": data.seqs(chunks[0]) if len(chunks) > 1 else None,
            "pager": paging.pager(1, len(chunks)),
            "locate": paging.locator(chunks) if len(chunks) > 1 else None,
            "chart": span_chart(event, posts, talk.start, talk.end + event.grace, talk.title),
            "previous": previous,
            "next": following,
            "links": tallies.top_links(data.tallies(talk.slug)),  # as stats.top_links(posts)
            "photos": photos[:TALK_PHOTOS],
            "all_photos": "../../photos/" if len(photos) > TALK_PHOTOS else "",
            "boosted": data.whole(stats.most(posts, "boosts")),
            "liked": data.whole(stats.most(posts, "likes")),
            "counts_as_of": data.counts_as_of,
            "people": tallies.participants(data.tallies(talk.slug)),
            "og_description": _talk_summary(talk, posts),
            "og_image": _first_photo(posts),
        }

    return context


def _first_photo(posts: list[Post]) -> str:
    """The first photo's URL, for the card a shared link shows ("" when there is none)."""
    return _photo_url(stats.photos(posts, limit=1))


def _photo_url(found: list[stats.Photo]) -> str:
    return found[0].media.url if found else ""


def _talk_summary(talk: Presentation, posts: list[Post]) -> str:
    who = ", ".join(talk.speakers)
    return f"{talk.title}{' by ' + who if who else ''}: {len(posts)} posts from the audience."


def break_pages(site: Site, data: EventData) -> list[Page]:
    event = data.event
    out = []
    for brk in event.breaks:

        def context(brk=brk) -> dict[str, Any]:
            posts = data.posts(brk.slug)
            chunks = data.pages(posts)
            return {
                "site": site,
                "event": event,
                "brk": brk,
                "posts": posts,
                "shown": chunks[0],
                "pager": paging.pager(1, len(chunks)),
                "chart": span_chart(event, posts, brk.start, brk.end, brk.title),
            }

        key = ("break", brk.slug, data.digest(brk.slug))
        folder = f"{event.slug}/breaks/{brk.slug}"
        out.append(Page(f"{folder}/index.html", "break.html", context, key))
        out += more_pages(site, data, folder, brk.title, brk.slug)
    return out


def live_page(site: Site, data: EventData) -> Page:
    """The newest posts inline, newest first, and where live.js picks up the stream."""
    shown = data.newest(data.inline_posts)
    after = max([data.last_seq, *(i.seq for i in shown)])
    context = {
        "site": site,
        "event": data.event,
        "posts": shown,
        "after": after,
        "stream": data.stream_url,
        "max_posts": max(200, data.inline_posts * 4),
    }
    key = ("live", data.seqs(shown), after, data.stream_url)
    return Page(f"{data.event.slug}/live/index.html", "live.html", lambda: context, key)


def newest(posts: list[Post], n: int) -> list[Post]:
    """The n newest posts by (time, seq), newest first, from posts in time order: only the tail
    from the n-th newest time on can hold them."""
    if n <= 0 or not posts:
        return []
    tail = posts[bisect_left(posts, posts[-min(n, len(posts))].t, key=T) :]
    return sorted(tail, key=lambda i: (i.t, i.seq), reverse=True)[:n]


def search_page(site: Site, data: EventData) -> Page:
    """The event's search: its form, and the Pagefind indexes its script merges."""
    blocks = sorted(data.parts.blocks)
    bundles = [f"../pagefind/block-{b}/" for b in blocks]
    context = {"site": site, "event": data.event, "bundles": bundles}
    key = ("search", blocks)
    return Page(f"{data.event.slug}/search/index.html", "search.html", lambda: context, key)


def schedule_rows(day: Day) -> list[Slot]:
    """The day's talks grouped by start time, with breaks between them, in time order."""
    talks = [p for s in day.sessions for p in s.presentations]
    rows: dict[datetime, Slot] = {}
    for talk in sorted(talks, key=_start):
        slot = rows.setdefault(talk.start, Slot(talk.start, talk.end, {}))
        slot.talks[talk.room] = talk
    slots = list(rows.values()) + [Slot(b.start, b.end, {}, b) for b in day.breaks]
    return sorted(slots, key=lambda s: (s.start, s.brk is None))


def day_chart(data: EventData, day: Day, chart_id: str | None = None):
    """Posts per 5 minutes over one day."""
    span = day_span(data.event, day)
    if span is None:
        return None
    chart_id = chart_id or f"chart-{day.date}"
    return data.memo(
        digest(
            ("day", day.date, day.title, span, data.event.timezone, chart_id, data.day_key(day))
        ),
        lambda: charts.svg(
            day_activity(data, day, span),
            data.event.tz,
            f"Activity on {day.title}",
            chart_id,
        ),
    )


def day_activity(data: EventData, day: Day, span: tuple[datetime, datetime]) -> charts.Activity:
    """Posts per 5 minutes over a day's span, from its parts' tallies (counted from the posts
    when the span does not begin and end on whole minutes)."""
    step = timedelta(minutes=5)
    found = tallies.activity(data.day_tallies(day), *span, step)
    return found if found is not None else activity(data.day_posts(day), *span, step)


def span_chart(event: Event, posts: list[Post], start: datetime, end: datetime, title: str):
    counts = activity(posts, start, end, timedelta(minutes=1))
    return charts.svg(counts, event.tz, f"Activity during {title}", "chart")


def activity(posts: Sequence[Post], start: datetime, end: datetime, step: timedelta):
    """charts.activity over posts' times, counted in whole microseconds (Post.t): the same
    buckets without making a datetime per post."""
    first, last, width = micros(start), micros(end), step // timedelta(microseconds=1)
    n = max(1, -(-(last - first) // width))
    edges = [bisect_left(posts, min(first + i * width, last), key=T) for i in range(n + 1)]
    counts = tuple(b - a for a, b in pairwise(edges))  # posts are in time order
    return charts.Activity(start, step, counts)


def local_date(event: Event, item: Post) -> date:
    return item.created_at.astimezone(event.tz).date()


def _slug(talk: Presentation | None) -> str | None:
    """What a page key names a talk by: the build digests all of content/ into every key
    already (build.py's `site`), so the slug is enough, and far cheaper to repr."""
    return None if talk is None else talk.slug


def _start(p: Presentation) -> datetime:
    return p.start
