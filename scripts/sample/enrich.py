"""What the collector's enrichment step asked and was told, as `collector run --record` writes it.

profiles  a getProfiles answer for each Bluesky author (Jetstream carries only the DID), just
          before the author's first post: the AppView answered within the collector's 2 s, so
          the post went out named (a slow AppView's bare post and later edit are the tests'
          business, not the demo's); one author is labelled `!no-unauthenticated`; one changes
          handle mid-event (an identity event, then the answer the collector asked for again)
counts    at each session's end plus half the grace period, the counts of the session's posts
          (partial: they are still growing), and at the end of the last one the final counts
          of every post, as getPosts (25 a call), Mastodon statuses?id[]= (20 a call, per
          listening instance, remote copies counting what reached them) and a Flickr search
          with count extras; photos deleted without notice come back as getInfo error 1
bad       Jetstream frames that break the lexicon, among the good ones
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from core.events import Event

from .bluesky import POST
from .ids import cid, epoch_us, iso_ms
from .world import Author

HIDE = "!no-unauthenticated"
CDN = "https://cdn.bsky.app/img"


@dataclass
class Counted:
    """One post a refresh asks about: where it lives, its final counts, when it was written."""

    source: str
    written: datetime
    final: tuple[int, int, int]  # boosts, likes, replies
    answer: Callable[[tuple[int, int, int]], dict]  # counts → the source's object for it
    origin: str = ""
    key: str = ""  # at-uri, local status id, photo id
    gone_at: datetime | None = None  # deleted without notice (Flickr) at this time
    arrived: datetime | None = None  # when the collector had it: a refresh asks after that
    revealed: bool = False  # a refresh found it gone: later ones no longer ask


@dataclass
class World:
    """What the answers are about, filled in by make_sample.py as it generates the posts."""

    posts: list[Counted] = field(default_factory=list)
    profiles: dict[str, dict] = field(default_factory=dict)  # did -> profileViewDetailed


Add = Callable[..., None]  # Recording.add(at, source, origin, type, payload, request=None)


def profile_view(author: Author, labels: tuple[str, ...] = ()) -> dict:
    """A profileViewDetailed (app.bsky.actor.defs) for a sample author."""
    return {
        "did": author.did, "handle": author.handle,
        "displayName": author.display_name or author.handle.split(".")[0],
        "avatar": f"{CDN}/avatar/plain/{author.did}/{author.avatar or 'bafkreiavatar'}@jpeg",
        "associated": {"lists": 0, "feedgens": 0, "starterPacks": 0, "labeler": False},
        "indexedAt": iso_ms(author.created_at), "createdAt": iso_ms(author.created_at),
        "viewer": {"muted": False, "blockedBy": False},
        "labels": [{"src": author.did, "uri": f"at://{author.did}/app.bsky.actor.profile/self",
                    "cid": cid(random.Random(author.did)), "val": v,
                    "cts": "1970-01-01T00:00:00.000Z"} for v in labels],
        "description": "", "followersCount": author.followers, "followsCount": author.following,
        "postsCount": author.statuses,
    }  # fmt: skip


def add_profiles(rng: random.Random, add: Add, world: World, firsts: list[tuple[Author, datetime]],
                 opted_out: Author) -> None:  # fmt: skip
    """A getProfiles answer around each Bluesky author's first post (`firsts`, in time order)."""
    for author, emitted in firsts:
        labels = (HIDE,) if author is opted_out else ()
        view = world.profiles[author.did] = profile_view(author, labels)
        at = emitted - timedelta(milliseconds=rng.randint(1, 3))  # recorded with the batch
        add(at, "bluesky", "appview", "getProfiles", {"profiles": [view]},
            request={"actors": [author.did]})  # fmt: skip


def add_handle_change(rng: random.Random, add: Add, world: World, author: Author,
                      when: datetime) -> None:  # fmt: skip
    """An identity event for a new handle, and the answer the collector asked for on it."""
    old = author.handle
    author.handle = old.split(".")[0] + ".northwind.example"
    add(when, "bluesky", "jetstream", "jetstream", {
        "did": author.did, "time_us": epoch_us(when), "kind": "identity",
        "identity": {"did": author.did, "handle": author.handle, "seq": rng.randrange(10**9),
                     "time": iso_ms(when)}})  # fmt: skip
    view = world.profiles[author.did] = {**world.profiles[author.did], "handle": author.handle}
    add(when + timedelta(milliseconds=rng.randint(40, 400)), "bluesky", "appview", "getProfiles",
        {"profiles": [view]}, request={"actors": [author.did]})  # fmt: skip


def add_refreshes(rng: random.Random, add: Add, event: Event, world: World) -> dict[str, int]:
    """Each session's refresh (partial counts) and the final one (every post)."""
    stats = {"refreshes": 0, "answers": 0}
    sessions = sorted(event.sessions, key=lambda s: s.end)
    for n, session in enumerate(sessions):
        at = session.end + event.grace / 2
        mine = [p for p in world.posts if session.start <= p.written < at and _known(p, at)]
        last = n == len(sessions) - 1
        stats["answers"] += _refresh(rng, add, world, mine, at, lambda p: _partial(rng, p.final))
        add(at + timedelta(seconds=5), "collector", "refresh", "refreshed",
            {"scope": session.slug, "posts": len(mine)})  # fmt: skip
        if last:  # the final counts of every post, before the last rebuild
            final = at + timedelta(seconds=30)
            everything = [p for p in world.posts if _known(p, final) and not p.revealed]
            stats["answers"] += _refresh(rng, add, world, everything, final, lambda p: p.final)
            add(final + timedelta(seconds=30), "collector", "refresh", "refreshed",
                {"scope": "event", "posts": len(everything)})  # fmt: skip
        stats["refreshes"] += 1 + last
    return stats


def _refresh(rng, add: Add, world: World, posts: list[Counted], at: datetime, counts) -> int:
    """The answers of one refresh of `posts` (those gone before `at` come back as gone)."""
    calls = 0
    groups: dict[tuple[str, str], list[Counted]] = {}
    for post in posts:
        groups.setdefault((post.source, post.origin), []).append(post)
    for (source, origin), group in sorted(groups.items()):
        size = {"bluesky": 25, "mastodon": 20, "flickr": 500}[source]
        for start in range(0, len(group), size):
            chunk = group[start : start + size]
            at += timedelta(milliseconds=rng.randint(30, 250))
            calls += ANSWER[source](add, at, origin, chunk, counts)
    return calls


def _posts_answer(add: Add, at, origin, chunk: list[Counted], counts) -> int:
    live = [p for p in chunk if not _gone(p, at)]
    add(at, "bluesky", "appview", "getPosts", {"posts": [p.answer(counts(p)) for p in live]},
        request={"uris": [p.key for p in chunk]})  # fmt: skip
    return 1


def _statuses_answer(add: Add, at, origin, chunk: list[Counted], counts) -> int:
    live = [p for p in chunk if not _gone(p, at)]
    add(at, "mastodon", origin, "statuses", [p.answer(counts(p)) for p in live],
        request={"ids": [p.key for p in chunk]})  # fmt: skip
    return 1


def _search_answer(add: Add, at, origin, chunk: list[Counted], counts) -> int:
    live = [p for p in chunk if not _gone(p, at)]
    photos = [p.answer(counts(p)) for p in live]
    add(at, "flickr", "flickr", "photos.search", {"photos": {
        "page": 1, "pages": 1, "perpage": 500, "total": str(len(photos)), "photo": photos},
        "stat": "ok"})  # fmt: skip
    for n, post in enumerate(p for p in chunk if _gone(p, at)):
        post.revealed = True
        add(at + timedelta(milliseconds=40 * (n + 1)), "flickr", "flickr", "photos.getInfo",
            {"stat": "fail", "code": 1, "message": f'Photo "{post.key}" not found (invalid ID)'},
            request={"photo_id": post.key})  # fmt: skip
    return 1


ANSWER = {"bluesky": _posts_answer, "mastodon": _statuses_answer, "flickr": _search_answer}


def _known(post: Counted, at: datetime) -> bool:
    return post.arrived is None or post.arrived < at


def _gone(post: Counted, at: datetime) -> bool:
    return post.gone_at is not None and post.gone_at <= at


def _partial(rng: random.Random, final: tuple[int, int, int]) -> tuple[int, int, int]:
    share = rng.uniform(0.4, 0.9)
    return tuple(int(n * share) for n in final)  # type: ignore[return-value]


def reaction_counts(rng: random.Random, hot: int = 1) -> tuple[int, int, int]:
    """Boosts, likes, replies: most posts get few, a handful get many."""
    return ((int(rng.paretovariate(1.4)) - 1) * hot, (int(rng.paretovariate(1.1)) - 1) * hot,
            int(rng.paretovariate(2.0)) - 1)  # fmt: skip


# what each source answers about one post, given its counts ------------------------------------


def status_answer(payload: dict, local: bool) -> Callable[[tuple[int, int, int]], dict]:
    """The Status as its listening instance serves it now: a remote copy counts half."""

    def answer(counts: tuple[int, int, int]) -> dict:
        boosts, likes, replies = counts if local else tuple(n // 2 for n in counts)
        return {**copy.deepcopy(payload), "reblogs_count": boosts, "favourites_count": likes,
                "replies_count": replies}  # fmt: skip

    return answer


def post_view_answer(world: World, event_json: dict, uri: str, indexed: datetime):
    """The postView getPosts gives for a Jetstream commit."""
    commit = event_json["commit"]

    def answer(counts: tuple[int, int, int]) -> dict:
        profile = world.profiles[event_json["did"]]
        author = {k: profile[k] for k in ("did", "handle", "displayName", "avatar", "associated",
                                          "viewer", "labels", "createdAt") if k in profile}  # fmt: skip
        boosts, likes, replies = counts
        return {"uri": uri, "cid": commit["cid"], "author": author, "record": commit["record"],
                "replyCount": replies, "repostCount": boosts, "likeCount": likes,
                "quoteCount": 0, "indexedAt": iso_ms(indexed), "labels": []}  # fmt: skip

    return answer


def photo_answer(photo: dict) -> Callable[[tuple[int, int, int]], dict]:
    def answer(counts: tuple[int, int, int]) -> dict:
        _boosts, faves, comments = counts
        return {**copy.deepcopy(photo), "count_faves": str(faves), "count_comments": str(comments)}

    return answer


# frames that break the lexicon ---------------------------------------------------------------

BAD_FRAMES = (
    ("facet index is a string", lambda e: e["commit"]["record"].setdefault(
        "facets", [{"features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "x"}]}])[0]
        .update(index="0-5")),
    ("facet $type is a number", lambda e: e["commit"]["record"].update(facets=[{
        "index": {"byteStart": 0, "byteEnd": 1}, "features": [{"$type": 5, "tag": "x"}]}])),
    ("createdAt past year 9999", lambda e: e["commit"]["record"].update(createdAt=10**12)),
    ("record is a list", lambda e: e["commit"].update(record=["app.bsky.feed.post"])),
)  # fmt: skip


def bad_frames(rng: random.Random, good: list[dict]) -> list[tuple[str, dict]]:
    """Copies of good commits, each broken one way (the time and rkey their own)."""
    frames = []
    for why, breaks in BAD_FRAMES:
        frame = copy.deepcopy(rng.choice(good))
        frame["commit"]["rkey"] = frame["commit"]["rkey"][:-3] + "bad"
        frame["commit"]["collection"] = POST
        breaks(frame)
        frames.append((why, frame))
    return frames
