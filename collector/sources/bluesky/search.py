"""Bluesky searchPosts backfill: an app-password session on the PDS, hashtag search walked back
from `until` to `since` (sortAt), rate limits honoured. It fills gaps Jetstream cannot replay.

`fetch_*` talk to the network; parsing is `parse.parse_post_view`. Deletes never show up in
search, so a backfill only adds posts (Jetstream carries the retractions).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from core.errors import ParseError, SourceError
from core.items import format_time

from ... import jsontext
from ...normalise import Change, SkipItem, as_list, parse_source_time
from ...store import Malformed
from ..base import SourceContext, spent
from .parse import parse_post_view

log = logging.getLogger("collector.bluesky")
SEARCH = "app.bsky.feed.searchPosts"
AUTH_ERRORS = {"AuthMissing", "InvalidToken", "AuthenticationRequired", "AccountTakedown"}


class CredentialsError(SourceError):
    """The backfill cannot authenticate: missing, wrong or revoked app password."""


@dataclass
class Session:
    """An app-password session on the PDS: createSession once, refreshSession on ExpiredToken."""

    pds: str
    identifier: str | None
    password: str | None
    names: tuple[str, str] = ("identifier_env", "password_env")  # where they should come from
    access: str | None = None
    refresh: str | None = None

    async def login(self, ctx: SourceContext) -> None:
        if not self.identifier or not self.password:
            names = " and ".join(self.names)
            raise CredentialsError(
                "bluesky", self.pds, f"searchPosts needs an app password: set {names}"
            )
        body = {"identifier": self.identifier, "password": self.password}
        data = await fetch_xrpc(
            ctx, "POST", self._url("com.atproto.server.createSession"), json=body
        )
        self.access, self.refresh = _jwt(data, "accessJwt"), _jwt(data, "refreshJwt", None)

    async def renew(self, ctx: SourceContext) -> None:
        """refreshSession with the refresh token; a new login when that one has expired too."""
        if self.refresh:
            try:
                url = self._url("com.atproto.server.refreshSession")
                data = await fetch_xrpc(ctx, "POST", url, token=self.refresh)
                self.access = _jwt(data, "accessJwt")
                self.refresh = _jwt(data, "refreshJwt", self.refresh)
                return
            except XrpcError as exc:
                if exc.name not in ("ExpiredToken", "InvalidToken"):
                    raise
        await self.login(ctx)

    def _url(self, method: str) -> str:
        return f"{self.pds.rstrip('/')}/xrpc/{method}"


_REQUIRED = object()


def _jwt(data: dict, name: str, default=_REQUIRED):
    """A token from a session answer (it goes into a header: printable text only)."""
    token = data.get(name)
    if isinstance(token, str) and token and token.isprintable():
        return token
    if default is _REQUIRED:
        raise XrpcError(200, "InvalidResponse", f"the session has no {name}")
    return default


class XrpcError(Exception):
    def __init__(self, status: int, name: str, message: str) -> None:
        self.status, self.name = status, name
        super().__init__(f"{status} {name}: {message}")


async def fetch_xrpc(ctx: SourceContext, method: str, url: str, *, token=None, **kwargs) -> dict:
    """One XRPC call with retries: 429 waits Retry-After (then RateLimit-Reset), 5xx and network
    errors back off. XRPC errors (4xx envelopes) are raised as XrpcError for the caller."""
    while True:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            response = await ctx.http.request(method, url, headers=headers, timeout=30, **kwargs)
        except httpx.HTTPError as exc:
            await ctx.back_off(f"{type(exc).__name__}: {exc}", show=False)
            continue
        if response.status_code == 429:
            ctx.hold_for(response)
            await ctx.wait_for_budget()
            continue
        if response.status_code >= 500:
            await ctx.back_off(f"HTTP {response.status_code} from {url}", show=False)
            continue
        if response.status_code >= 400:
            raise _xrpc_error(response)
        ctx.backoff.reset()
        if spent(response.headers):  # the next call would be refused: wait for the reset
            ctx.hold_for(response)
            await ctx.wait_for_budget()
        data = _json_or_none(response)
        if isinstance(data, dict):
            return data
        await ctx.back_off(f"{url}: not a JSON object", show=False)


def _json_or_none(response: httpx.Response):
    try:
        return jsontext.loads(response.content)
    except ValueError:
        return None


def _xrpc_error(response: httpx.Response) -> XrpcError:
    body = _json_or_none(response)
    body = body if isinstance(body, dict) else {}
    text = response.text[:200] if not body else ""
    return XrpcError(response.status_code, str(body.get("error") or "HTTPError"),
                     str(body.get("message") or text))  # fmt: skip


async def fetch_search_pages(
    ctx: SourceContext, session: Session, tag: str, since: datetime, until: datetime | None
) -> AsyncIterator[list[dict]]:
    """Pages of postViews for one hashtag, newest first, from `until` back to `since`.

    Offsets shift while posts arrive (duplicates, deduped by the archive) and the search may
    stop handing out cursors early; then the walk starts again below the oldest post seen."""
    cursor: str | None = None
    while True:
        params = {"q": f"#{tag}", "tag": tag, "sort": "latest", "limit": 100,
                  "since": format_time(since)}  # fmt: skip
        if until is not None:
            params["until"] = format_time(until)
        if cursor:
            params["cursor"] = cursor
        posts, cursor = search_page(await _search(ctx, session, params))
        yield posts
        oldest = oldest_post(posts)
        if not posts or (oldest is not None and oldest < since):
            return
        if cursor is None:  # the result set ended early: narrow the window and go on
            if oldest is None or (until is not None and oldest + timedelta(seconds=1) >= until):
                return
            until, cursor = oldest + timedelta(seconds=1), None


async def _search(ctx: SourceContext, session: Session, params: dict) -> dict:
    url = session._url(SEARCH)
    if session.access is None:
        await session.login(ctx)
    try:
        return await fetch_xrpc(ctx, "GET", url, token=session.access, params=params)
    except XrpcError as exc:
        if exc.name != "ExpiredToken" and not (exc.status == 401 and session.refresh):
            raise
    await session.renew(ctx)
    return await fetch_xrpc(ctx, "GET", url, token=session.access, params=params)


def search_page(data) -> tuple[list[dict], str | None]:
    """A searchPosts answer → (its postViews, the next page's cursor). Pure."""
    data = data if isinstance(data, dict) else {}
    posts = [p for p in as_list(data.get("posts")) if isinstance(p, dict)]
    cursor = data.get("cursor")
    return posts, cursor if isinstance(cursor, str) and cursor.isprintable() else None


def oldest_post(posts: list[dict]) -> datetime | None:
    """The oldest indexedAt among postViews (where the walk goes on from)."""
    times = []
    for post in posts:
        try:
            times.append(parse_source_time(post.get("indexedAt"), "indexedAt"))
        except ParseError:
            continue
    return min(times) if times else None


def parse_search_page(
    posts: list[dict], hashtags: set[str]
) -> tuple[list[Change], list[Malformed]]:
    items: list[Change] = []
    bad: list[Malformed] = []
    for post in posts:
        try:
            items.append(parse_post_view(post, hashtags))
        except SkipItem:
            continue
        except ParseError as exc:
            identity = (
                str(post.get("uri") or "searchPosts") if isinstance(post, dict) else "searchPosts"
            )
            log.warning("Could not process bluesky:%s: %s", identity, exc)
            bad.append(Malformed(identity, str(exc), _raw(post)))
    return items, bad


def _raw(post: dict) -> str:
    return json.dumps(post, ensure_ascii=False)


async def fetch_backfill(
    ctx, session: Session, since: datetime, until: datetime | None, save
) -> int:
    """Walk every hashtag's search from `until` back to `since`, saving each page as it comes.
    Returns the posts handed to the archive. Raises CredentialsError when it cannot log in."""
    received = 0
    try:
        for tag in sorted(ctx.hashtags):
            async for posts in fetch_search_pages(ctx, session, tag, since, until):
                items, bad = parse_search_page(posts, ctx.hashtags)
                kept = {i.uri for i in items} | {b.identity for b in bad}
                for post in (p for p in posts if isinstance(p, dict) and p.get("uri") in kept):
                    ctx.record("postView", post, "appview")
                if items or bad:
                    await save(items, bad)
                received += len(items)
    except XrpcError as exc:
        if exc.name in AUTH_ERRORS or exc.status in (401, 403):
            raise CredentialsError("bluesky", session.pds, f"searchPosts refused: {exc}") from exc
        raise SourceError("bluesky", session.pds, f"searchPosts failed: {exc}") from exc
    return received
