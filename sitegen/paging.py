"""Talk and break pages in pages of at most PAGE posts: the first page at the talk's (or break's)
own URL, more at page-2/, page-3/… below it.

A talk of a large event can gather tens of thousands of posts, and every session that adds one
post to it would render them all again. Like the full archive (listings.py), the pages are cut in
the order the archive received the posts (row id), each page showing its posts in time order: a
new post goes to the last page, even one that arrives late with an old timestamp, so a rebuild
renders the first page (it holds the talk's counts and charts) and the last, not every page.
(A post deleted or moderated away shifts the pages after it by one.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import TypeVar

from .posts import Post, by_arrival
from .stats import anchor

PAGE = 500  # posts per page of a talk or break
ARCHIVE_PAGE = 500  # posts per page of the full archive
GALLERY_PAGE = 120  # photos per gallery page
T = itemgetter(3)  # a Post's time, in microseconds
R = TypeVar("R")


def cut(arrival: Sequence[R], size: int, key: Callable[[R], int] = T) -> list[list[R]]:
    """Fixed-size slices of rows in arrival order, each in time order (a stable sort: ties stay
    in arrival order). The archive, the gallery and talk and break pages are cut this way."""
    return [sorted(arrival[i : i + size], key=key) for i in range(0, len(arrival), size)]


def paged(posts: list[Post]) -> list[list[Post]]:
    """The posts in pages (at least one, maybe empty): the list itself when one page holds it."""
    if len(posts) <= PAGE:
        return [posts]
    return cut(by_arrival(posts), PAGE)


def page_path(folder: str, n: int) -> str:
    """The file of page n of the talk or break in folder (e.g. "ev/talks/x")."""
    return f"{folder}/index.html" if n == 1 else f"{folder}/page-{n}/index.html"


def page_url(n: int) -> str:
    """Page n's URL relative to the talk's (or break's) folder: "" for the first."""
    return "" if n == 1 else f"page-{n}/"


def pager(n: int, total: int) -> dict[str, str | int]:
    """The links from page n to its neighbours (relative to page n), for the templates."""
    up = "" if n == 1 else "../"
    return {
        "n": n,
        "total": total,
        "previous": up + page_url(n - 1) if n > 1 else "",
        "next": up + page_url(n + 1) if n < total else "",
    }


def locator(chunks: list[list[Post]], n: int = 1) -> Callable[[object], str]:
    """A post's link from page n of these pages: "#anchor" on that page, else the page's URL
    with it. Posts and whole Items alike (an Item's seq is in extra), found by seq."""
    where = {p[1]: k for k, chunk in enumerate(chunks, start=1) if k != n for p in chunk}
    up = "" if n == 1 else "../"

    def locate(item) -> str:
        seq = item[1] if isinstance(item, Post) else item.extra.get("seq")
        k = where.get(seq)
        return f"#{anchor(item)}" if k is None else f"{up}{page_url(k) or './'}#{anchor(item)}"

    return locate


def pages_of(chunks: list[list[Post]]) -> dict[int, int]:
    """Row id -> page number, for the posts after the first page."""
    return {p[0]: k for k, chunk in enumerate(chunks[1:], start=2) for p in chunk}
