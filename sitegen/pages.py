"""One function per page family: each returns Pages (output path, template, context, key). Pure.

The build reads the archive once per event into an EventData; these functions only arrange it.
A page's context is a function, called only when the page is rendered; its `key` names every
input besides the templates and content/ (the build adds a digest of both, so a talk is named by
its slug), so an unchanged key means an unchanged page (the build then skips rendering it).
Posts are keyed by their seq: any edit gives a new one.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import filterfalse, pairwise
from operator import itemgetter
from typing import Any

from core.events import Break, Day, Event, Presentation, Site
from core.items import Item

from . import charts, paging, stats
from .assign import Assignment
from .cache import digest
from .markdown import render_markdown
from .posts import Post, Store, by_arrival, micros
from .search import block_of

ARCHIVE_PAGE = 500  # posts per page of the full archive
ID, SEQ, T, NOINDEX = itemgetter(0), itemgetter(1), itemgetter(3), itemgetter(6)  # at C speed


@dataclass(frozen=True)
class Page:
    path: str  # under output/, e.g. "northwind-2026/talks/x/index.html"
    template: str  # a Jinja template, or "" when body() gives the bytes (feeds, downloads)
    context: Callable[[], dict[str, Any]] = dict
    key: Any = None  # the page's inputs; None means always render
    body: Callable[[], bytes] | None = None


@dataclass
class EventData:
    """What the archive holds for one event, read in one snapshot."""

    event: Event
    items: list[Post]  # visible, oldest first
    assignment: Assignment
    last_seq: int = 0
    stream_url: str = ""
    inline_posts: int = 50
    state: str = ""  # a digest of the event's rows in the archive
    counts_as_of: datetime | None = None  # when reaction counts were last refreshed
    room: Any = None  # room.RoomData: pins and meet-up proposals (read by room.read_room)
    memo: Callable[[str, Callable[[], Any]], Any] = lambda key, make: make()  # charts kept
    store: Store = field(default_factory=lambda: Store(None), repr=False)  # the build's posts
    _cache: dict[Any, Any] = field(default_factory=dict, repr=False)

    def seqs(self, items: Iterable[Post]) -> str:
        """seqs(items), each list digested once per build."""
        return seqs(items, self._cache.setdefault("seqs", {}))

    def whole(self, posts: Iterable[Post]) -> list[Item]:
        """The whole Items of these posts (for what their summary rows do not hold)."""
        return self.store.whole(posts)

    @property
    def arrival(self) -> list[Post]:
        """The posts in the order the archive received them: the full archive's order."""
        found = self._cache.get("arrival")
        if found is None:
            found = self._cache["arrival"] = by_arrival(self.items)
        return found

    def locate(self, item: Post, root: str = "") -> str:
        """Where a post is in the full archive: archive/page-N/#anchor (relative to the event)."""
        n = bisect_left(self.arrival, item.id, key=ID)  # arrival is in row id order
        return f"{root}archive/page-{n // ARCHIVE_PAGE + 1}/#{item.anchor}"

    def pages(self, posts: list[Post]) -> list[list[Post]]:
        """paging.paged(posts), once per list per build."""
        memo = self._cache.setdefault("pages", {})
        found = memo.get(id(posts))
        if found is None or found[0] is not posts:
            found = memo[id(posts)] = (posts, paging.paged(posts))
        return found[1]

    def pages_of(self) -> dict[int, int]:
        """Row id -> its page of its talk or break, for the posts after a first page (search
        links to them there)."""
        found = self._cache.get("pages_of")
        if found is None:
            found = self._cache["pages_of"] = {}
            lists = [*self.assignment.talks.values(), *self.assignment.breaks.values()]
            for posts in lists:
                if len(posts) > paging.PAGE:
                    found.update(paging.pages_of(self.pages(posts)))
        return found

    def count(self, slug: str) -> int:
        return len(self.posts(slug))

    def posts(self, slug: str) -> list[Post]:
        found = self.assignment.talks.get(slug)
        return found if found is not None else self.assignment.breaks.get(slug, [])

    def span(self, first: datetime, last: datetime) -> Sequence[Post]:
        """within(items, first, last), one list per span per build (so its seqs are digested
        once, for the day's page and both of its charts)."""
        key = ("span", first, last)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = within(self.items, micros(first), micros(last))
        return found

    def status(self, now: datetime) -> str:
        """live, upcoming or past, by the event's dates in its own time zone."""
        today = now.astimezone(self.event.tz).date()
        if today < self.event.start:
            return "upcoming"
        return "past" if today > self.event.end else "live"

    def sparkline(self, talk: Presentation):
        posts, end = self.posts(talk.slug), talk.end + self.event.grace
        return self.memo(
            digest(("sparkline", talk.slug, talk.title, talk.start, end, self.seqs(posts))),
            lambda: charts.sparkline(
                activity(posts, talk.start, end, timedelta(minutes=5)),
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


def seqs(items: Iterable[Post], memo: dict[int, tuple] | None = None) -> str:
    """A digest of the posts' seqs, for page keys: every change has its own seq, so the same
    digest means the same posts in the same versions. (Python's hash of a tuple of ints is the
    same in every process; with the count and sum beside it, two lists that differ are as good
    as never confused.) A list digested once in a build (a talk's posts key its page, its feed
    and its download) is remembered in `memo` (EventData.seqs passes the event's)."""
    if memo is not None and isinstance(items, list):
        found = memo.get(id(items))
        if found is not None and found[0] is items and found[1] == len(items):
            return found[2]
    values = tuple(map(SEQ, items))
    digest = f"{len(values)}:{sum(values)}:{hash(values) & 0xFFFFFFFFFFFFFFFF:x}"
    if memo is not None and isinstance(items, list):
        memo[id(items)] = (items, len(items), digest)
    return digest


def assigned_seqs(data: EventData) -> list[str]:
    """What seqs(data.items) tells apart, from the lists the posts are assigned to (each post is
    in one; their pages digest them anyway): the same digests mean the same posts."""
    found = data.assignment
    lists = [*found.talks.values(), *found.breaks.values(), found.unplaced]
    return [data.seqs(posts) for posts in lists]


def index_page(site: Site, events: list[EventData], now: datetime) -> Page:
    groups = {"live": [], "upcoming": [], "past": []}
    for data in events:
        groups[data.status(now)].append(data)
    groups["past"].reverse()  # newest past event first
    key = ("index", [(d.event.slug, d.status(now), len(d.items)) for d in events])
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
            "unplaced": data.assignment.unplaced,
            "links": stats.top_links(data.items),
            "photos": stats.photos(reversed(data.items), limit=12),
            "people": stats.participants(data.items),
            "og_description": f"{len(data.items)} posts about {event.name}.",
            "og_image": _first_photo(data.items),
        }

    key = ("event", assigned_seqs(data), data.last_seq)
    return Page(f"{event.slug}/index.html", "event.html", context, key)


def talk_pages(site: Site, data: EventData) -> list[Page]:
    event = data.event
    out = []
    for talk in event.presentations:
        same_room = sorted((p for p in event.presentations if p.room == talk.room), key=_start)
        i = same_room.index(talk)
        previous = same_room[i - 1] if i > 0 else None
        following = same_room[i + 1] if i + 1 < len(same_room) else None
        posts = data.assignment.talks[talk.slug]
        key = ("talk", talk.slug, _slug(previous), _slug(following), data.seqs(posts))
        context = _talk_context(site, event, talk, posts, previous, following, data)
        folder = f"{event.slug}/talks/{talk.slug}"
        out.append(Page(f"{folder}/index.html", "presentation.html", context, key))
        out += more_pages(site, data, folder, talk.title, posts)
    return out


def more_pages(site: Site, data: EventData, folder: str, title: str, posts) -> list[Page]:
    """Pages 2, 3… of a talk's or break's posts (paging.py), when one page does not hold them."""
    chunks = data.pages(posts)
    total, out = len(chunks), []
    for n, chunk in enumerate(chunks[1:], start=2):

        def context(n=n, chunk=chunk) -> dict[str, Any]:
            return {"site": site, "event": data.event, "title": title, "posts": chunk,
                    "pager": paging.pager(n, total)}  # fmt: skip

        key = ("posts-page", folder, n, total, data.seqs(chunk))
        out.append(Page(paging.page_path(folder, n), "posts_page.html", context, key))
    return out


def markdown(memo: Callable[[str, Callable[[], Any]], Any], text: str) -> str:
    """render_markdown(text), kept by the build's memo (the Markdown library takes longer to
    set up than a session's rebuild may spend on it)."""
    if not text:
        return ""
    return str(memo(digest(("markdown", text)), lambda: render_markdown(text)))


def _talk_context(
    site, event, talk, posts, previous, following, data: EventData
) -> Callable[[], dict[str, Any]]:
    def context() -> dict[str, Any]:
        chunks = data.pages(posts)
        return {
            "site": site,
            "event": event,
            "talk": talk,
            "room": event.room(talk.room),
            "abstract": markdown(data.memo, talk.abstract),
            "posts": posts,
            "shown": chunks[0],
            "pager": paging.pager(1, len(chunks)),
            "locate": paging.locator(chunks) if len(chunks) > 1 else None,
            "chart": span_chart(event, posts, talk.start, talk.end + event.grace, talk.title),
            "previous": previous,
            "next": following,
            "links": stats.top_links(posts),
            "photos": stats.photos(posts),
            "boosted": data.whole(stats.most(posts, "boosts")),
            "liked": data.whole(stats.most(posts, "likes")),
            "counts_as_of": data.counts_as_of,
            "people": stats.participants(posts),
            "og_description": _talk_summary(talk, posts),
            "og_image": _first_photo(posts),
        }

    return context


def _first_photo(posts: list[Post]) -> str:
    """The first photo's URL, for the card a shared link shows ("" when there is none)."""
    found = stats.photos(posts, limit=1)
    return found[0].media.url if found else ""


def _talk_summary(talk: Presentation, posts: list[Post]) -> str:
    who = ", ".join(talk.speakers)
    return f"{talk.title}{' by ' + who if who else ''}: {len(posts)} posts from the audience."


def break_pages(site: Site, data: EventData) -> list[Page]:
    event = data.event
    out = []
    for brk in event.breaks:
        posts = data.assignment.breaks[brk.slug]

        def context(brk=brk, posts=posts) -> dict[str, Any]:
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

        key = ("break", brk.slug, data.seqs(posts))
        folder = f"{event.slug}/breaks/{brk.slug}"
        out.append(Page(f"{folder}/index.html", "break.html", context, key))
        out += more_pages(site, data, folder, brk.title, posts)
    return out


def live_page(site: Site, data: EventData) -> Page:
    """The newest posts inline, newest first, and where live.js picks up the stream."""
    shown = newest(data.items, data.inline_posts)
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
    blocks = list(search_blocks(data))
    bundles = [f"../pagefind/block-{b}/" for b in blocks]
    context = {"site": site, "event": data.event, "bundles": bundles}
    key = ("search", blocks)
    return Page(f"{data.event.slug}/search/index.html", "search.html", lambda: context, key)


def search_blocks(data: EventData) -> dict[int, list[Post]]:
    """The posts search may show (not from `noindex` accounts), by index block, in row id
    order: made once per build."""
    found = data._cache.get("search")
    if found is None:
        found = data._cache["search"] = {}
        arrival, start = data.arrival, 0
        block = lambda post: block_of(post[0])  # noqa: E731  # arrival is in row id order
        while start < len(arrival):
            number = block(arrival[start])
            end = bisect_right(arrival, number, start, key=block)
            posts = list(filterfalse(NOINDEX, arrival[start:end]))
            if posts:
                found[number] = posts
            start = end
    return found


def schedule_rows(day: Day) -> list[Slot]:
    """The day's talks grouped by start time, with breaks between them, in time order."""
    talks = [p for s in day.sessions for p in s.presentations]
    rows: dict[datetime, Slot] = {}
    for talk in sorted(talks, key=_start):
        slot = rows.setdefault(talk.start, Slot(talk.start, talk.end, {}))
        slot.talks[talk.room] = talk
    slots = list(rows.values()) + [Slot(b.start, b.end, {}, b) for b in day.breaks]
    return sorted(slots, key=lambda s: (s.start, s.brk is None))


def day_span(event: Event, day: Day) -> tuple[datetime, datetime] | None:
    """From the day's first start to its last end plus grace."""
    spans = [(s.start, s.end) for s in day.sessions] + [(b.start, b.end) for b in day.breaks]
    if not spans:
        return None
    return min(s for s, _ in spans), max(e for _, e in spans) + event.grace


def day_chart(data: EventData, day: Day, chart_id: str | None = None):
    """Posts per 5 minutes over one day."""
    span = day_span(data.event, day)
    if span is None:
        return None
    chart_id = chart_id or f"chart-{day.date}"
    posts = data.span(*span)
    return data.memo(
        digest(("day", day.date, day.title, span, data.event.timezone, chart_id, data.seqs(posts))),
        lambda: charts.svg(
            day_activity(data, span),
            data.event.tz,
            f"Activity on {day.title}",
            chart_id,
        ),
    )


def day_activity(data: EventData, span: tuple[datetime, datetime]) -> charts.Activity:
    """Posts per 5 minutes over a day's span, counted once per build (the event page and the
    day's page both chart it)."""
    key = ("activity", span)
    found = data._cache.get(key)
    if found is None:
        found = data._cache[key] = activity(data.span(*span), *span, timedelta(minutes=5))
    return found


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


def within(posts: Sequence[Post], first: int, last: int) -> Sequence[Post]:
    """The posts with first <= t < last, from posts in time order (found by bisection)."""
    return posts[bisect_left(posts, first, key=T) : bisect_left(posts, last, key=T)]


def local_date(event: Event, item: Post) -> date:
    return item.created_at.astimezone(event.tz).date()


def _slug(talk: Presentation | None) -> str | None:
    """What a page key names a talk by: the build digests all of content/ into every key
    already (build.py's `site`), so the slug is enough, and far cheaper to repr."""
    return None if talk is None else talk.slug


def _start(p: Presentation) -> datetime:
    return p.start
