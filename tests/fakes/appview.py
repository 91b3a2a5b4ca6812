"""A fake public Bluesky AppView (`public.api.bsky.app`): unauthenticated `getProfiles` and
`getPosts`, with the rate-limit headers of the real one.

    with AppViewFake() as av:
        av.add_profile("did:plc:abc", "ana.bsky.social", "Ana", labels=["!no-unauthenticated"])
        av.publish(post_view)                     # getPosts answers it (counts from the view)
        av.set_counts(uri, likes=5, reposts=2, replies=1)
        av.delete(uri)                            # getPosts leaves it out from now on
        av.delay = 3.0                            # every answer waits this long (a slow AppView)

What it reproduces (lexicons app/bsky/actor/getProfiles.json, app/bsky/feed/getPosts.json,
app/bsky/actor/defs.json#profileViewDetailed; SOURCES.md §2; fixtures/bluesky-searchPosts.json
for the real author objects and labels): `GET /xrpc/app.bsky.actor.getProfiles?actors=…` (1–25,
DIDs or handles) → `{"profiles":[profileViewDetailed]}`, unknown actors left out (in the order
asked); `GET /xrpc/app.bsky.feed.getPosts?uris=…` (1–25 at-uris) → `{"posts":[postView]}`, gone
ones left out. More than 25, or none, is 400 `InvalidRequest` (the lexicon's maxLength). No auth
needed. Every answer carries RateLimit-Limit/Remaining/Reset/Policy; past `rate_limit=(limit,
window)` a 429 `RateLimitExceeded` with Retry-After (BlueskyFake's limiter).
"""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .base import FIXTURES
from .bluesky import BlueskyFake

CDN = "https://cdn.bsky.app/img"
PER_CALL = 25


def real_authors() -> list[dict[str, Any]]:
    """The author objects of the real postViews in the fixture (profileViewBasic, with labels)."""
    data = json.loads((FIXTURES / "bluesky-searchPosts.json").read_text("utf-8"))
    return [copy.deepcopy(view["author"]) for view in data["posts"]]


def profile_view(
    did: str, handle: str, name: str | None = None, *, labels: list[str] = (),
    avatar_cid: str = "bafkreif5tzhtlnxmtyefl3wdw63mcba3jmcqhcfioe3p7ygwko6pvg2gji",
) -> dict[str, Any]:  # fmt: skip
    """A profileViewDetailed as the AppView writes it: the fields a real one has, self-labels in
    the shape of the fixture's `!no-unauthenticated` label."""
    view: dict[str, Any] = {"did": did, "handle": handle}
    if name is not None:
        view["displayName"] = name
    view |= {
        "avatar": f"{CDN}/avatar/plain/{did}/{avatar_cid}@jpeg",
        "associated": {"lists": 0, "feedgens": 0, "starterPacks": 0, "labeler": False,
                       "chat": {"allowIncoming": "all"}},
        "indexedAt": "2024-11-16T21:07:24.870Z",
        "viewer": {"muted": False, "blockedBy": False},
        "labels": [_self_label(did, value) for value in labels],
        "createdAt": "2024-11-16T21:07:24.870Z",
        "description": "",
        "banner": f"{CDN}/banner/plain/{did}/{avatar_cid}@jpeg",
        "followersCount": 12, "followsCount": 34, "postsCount": 56,
    }  # fmt: skip
    return view


def _self_label(did: str, value: str) -> dict[str, Any]:
    return {"src": did, "uri": f"at://{did}/app.bsky.actor.profile/self",
            "cid": "bafyreic6mp6qgcg5hlj7xktjroeamqbcrmgevyyofimrnymlistglynixm",
            "val": value, "cts": "1970-01-01T00:00:00.000Z"}  # fmt: skip


class AppViewFake(BlueskyFake):
    name = "appview"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(accounts={}, **kwargs)
        self._profiles: dict[str, dict[str, Any]] = {}
        self.delay = 0.0  # seconds every answer waits (a slow AppView)

    # -- content ---------------------------------------------------------------------------

    def add_profile(
        self, did: str, handle: str, name: str | None = None, *, labels: list[str] = (),
        view: dict[str, Any] | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """Serve a profile (a whole profileViewDetailed as `view`, or one built from the rest)."""
        view = copy.deepcopy(view) if view is not None else profile_view(did, handle, name,
                                                                         labels=list(labels))  # fmt: skip
        with self.lock:
            self._profiles[view["did"]] = view
        return copy.deepcopy(view)

    def set_counts(self, uri: str, *, likes: int = 0, reposts: int = 0, replies: int = 0,
                   quotes: int = 0) -> None:  # fmt: skip
        with self.lock:
            view = self._posts[uri]
            view.update(likeCount=likes, repostCount=reposts, replyCount=replies, quoteCount=quotes)

    # -- HTTP ------------------------------------------------------------------------------

    def build_app(self) -> Starlette:
        return Starlette(routes=[
            Route("/xrpc/app.bsky.actor.getProfiles", self.get_profiles),
            Route("/xrpc/app.bsky.feed.getPosts", self.get_posts),
        ])  # fmt: skip

    async def get_profiles(self, request: Request) -> Response:
        return await self._lookup(request, "actors", self._profile_of, "profiles")

    async def get_posts(self, request: Request) -> Response:
        return await self._lookup(request, "uris", self._posts.get, "posts")

    async def _lookup(self, request: Request, name: str, find, key: str) -> Response:
        headers, refused = self._rate()
        if refused:
            return refused
        if self.delay:
            await asyncio.sleep(self.delay)
        wanted = request.query_params.getlist(name)
        if not wanted:
            return self._error(400, "InvalidRequest", f'Error: Params must have the property "{name}"',
                               headers)  # fmt: skip
        if len(wanted) > PER_CALL:
            return self._error(400, "InvalidRequest",
                               f"Error: {name} must not have more than {PER_CALL} elements",
                               headers)  # fmt: skip
        with self.lock:
            found = [copy.deepcopy(v) for v in map(find, wanted) if v is not None]
        return self._json({key: found}, headers=headers)

    def _profile_of(self, actor: str) -> dict[str, Any] | None:
        if actor in self._profiles:
            return self._profiles[actor]
        return next((p for p in self._profiles.values() if p["handle"] == actor), None)
