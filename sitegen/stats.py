"""What a list of posts adds up to: top links, photos, most boosted and liked, who took part. Pure.

Every function takes posts oldest first and breaks ties by that order, so the same posts always
give the same answer (byte-identical pages).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter, methodcaller
from typing import NamedTuple
from urllib.parse import urlsplit

from core.items import Item, Media

from .posts import Post, anchor_of

_LINKS, _HAS_MEDIA, _AUTHOR_ID = itemgetter(8), itemgetter(9), itemgetter(5)  # Post fields
_WEB = ("http://", "https://")
_IS_WEB = methodcaller("startswith", _WEB)
_COUNTS = {"boosts": itemgetter(10), "likes": itemgetter(11)}


def anchor(item: Post | Item) -> str:
    """A post's fragment id: derived from its identity, so it never moves when posts are added."""
    return item.anchor if isinstance(item, Post) else anchor_of(item.uri)


@dataclass(frozen=True)
class Link:
    url: str
    host: str
    count: int  # how many posts link to it


class Photo(NamedTuple):  # a tuple: made in bulk (every photo of an event, each build)
    media: Media
    item: Post  # the post it came with, for its anchor, author and time


def top_links(items: Iterable[Post], n: int = 10) -> list[Link]:
    """The n URLs most posts link to (each post counted once per URL), first seen wins ties."""
    linked = filter(None, map(_LINKS, items))  # most posts have none: skipped at C speed
    urls = chain.from_iterable(map(dict.fromkeys, linked))  # each post's URLs once, in order
    counts = Counter(filter(_IS_WEB, urls))  # counted at C speed, in first-seen order
    ranked = counts.most_common(n)  # stable: equal counts keep first-seen order
    return [Link(url, urlsplit(url).hostname or url, count) for url, count in ranked]


def photos(items: Iterable[Post], limit: int | None = None) -> list[Photo]:
    """Images shown on public pages: not behind a sensitive-media warning, oldest first."""
    found = []
    for item in filter(_HAS_MEDIA, items):  # most posts have none: skipped at C speed
        if item.sensitive:
            continue
        for m in item.media:
            if m.kind == "image" and m.url.startswith(("http://", "https://")):
                found.append(Photo(m, item))
                if limit is not None and len(found) >= limit:
                    return found
    return found


def shows_photo(item: Post) -> bool:
    """Whether photos() shows a photo of this post."""
    return bool(item[9]) and bool(photos([item], limit=1))


def photo_rows(items: Iterable[Post]) -> list[tuple[Post, tuple]]:
    """photos(items) as (post, raw media row) pairs, no Media made: the gallery pages list
    every photo of an event each build, and a build shows only the pages that changed."""
    found = []
    for item in filter(_HAS_MEDIA, items):
        if item[7]:  # sensitive
            continue
        found += [(item, m) for m in item[9] if m[0] == "image" and m[1].startswith(_WEB)]
    return found


def photo(row: tuple[Post, tuple]) -> Photo:
    """One of photo_rows() as the Photo that photos() gives."""
    return Photo(Media(*row[1]), row[0])


def most(items: Sequence[Post], field: str, n: int = 3) -> list[Post]:
    """The n posts with the most boosts (or likes), leaving out posts with none."""
    value = _COUNTS.get(field) or (lambda i: getattr(i, field))
    ranked = sorted(filter(value, items), key=value, reverse=True)
    return ranked[:n]


def participants(items: Iterable[Post]) -> int:
    """How many different accounts wrote these posts."""
    return len(set(map(_AUTHOR_ID, items)))
