"""A fake Bluesky PDS for the polling path: sessions and `app.bsky.feed.searchPosts`.

    with BlueskyFake(accounts={"me.test": "app-pass"}) as bsky:
        bsky.load_fixture()                          # the 7 real postViews
        view = bsky.publish(post_view)               # indexedAt = now unless keep=True
        bsky.delete(view["uri"])
        bsky.expire_tokens()                         # next call: 400 ExpiredToken

What it reproduces (SOURCES.md §2, fixtures/bluesky-*): `POST /xrpc/com.atproto.server.createSession`
`{identifier,password}` → `{did,handle,accessJwt,refreshJwt,active}`; `refreshSession` with the
refresh token as Bearer; searchPosts needs `Authorization: Bearer <accessJwt>` (missing → 401
`AuthMissing` by default, `auth_missing_status=403` for public.api.bsky.app's answer), `q`
(required, else 400 BadQueryString; terms matched case-insensitively against text and tags),
`tag` (repeated, AND, case-insensitive, facets `#tag` and `record.tags`), `since`/`until`
(against sortAt = min(createdAt, indexedAt); since inclusive, until exclusive), `sort`
latest/top, `limit` 1–100 (default 25) and an offset-string `cursor`. RateLimit-Limit/Remaining/
Reset (epoch s)/Policy on every answer; past `rate_limit=(limit, window)` a 429 RateLimitExceeded
with Retry-After.
"""

from __future__ import annotations

import copy
import itertools
import json
import time
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .base import FIXTURES, FakeServer


def _ts(value: str) -> float:
    when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def _iso(epoch: float) -> str:
    return (
        datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{int(epoch * 1000) % 1000:03d}Z"
    )


def post_tags(view: dict[str, Any]) -> set[str]:
    record = view.get("record") or {}
    tags = {t.lower() for t in record.get("tags") or []}
    for facet in record.get("facets") or []:
        for feature in facet.get("features") or []:
            if feature.get("$type") == "app.bsky.richtext.facet#tag":
                tags.add(feature["tag"].lower())
    return tags


class BlueskyFake(FakeServer):
    name = "bluesky"

    def __init__(
        self,
        *,
        accounts: dict[str, str] | None = None,
        auth_missing_status: int = 401,
        rate_limit: tuple[int, float] = (3000, 300.0),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.accounts = (
            {"fake.bsky.test": "fake-app-password"} if accounts is None else dict(accounts)
        )
        self.auth_missing_status = auth_missing_status
        self.rate_limit = rate_limit
        self._posts: dict[str, dict[str, Any]] = {}
        self._access: dict[str, str] = {}
        self._refresh: dict[str, str] = {}
        self._expired: set[str] = set()
        self._tokens = itertools.count(1)
        self._window = (-1, 0)

    # -- content ---------------------------------------------------------------------------

    def publish(self, view: dict[str, Any], *, keep: bool = False) -> dict[str, Any]:
        """Index a postView: `indexedAt` = now unless `keep`. Same uri again replaces it."""
        view = copy.deepcopy(view)
        if not keep:
            view["indexedAt"] = _iso(time.time())
        with self.lock:
            self._posts[view["uri"]] = view
        return copy.deepcopy(view)

    def delete(self, uri: str) -> None:
        with self.lock:
            self._posts.pop(uri, None)

    def load_fixture(self) -> list[dict[str, Any]]:
        data = json.loads((FIXTURES / "bluesky-searchPosts.json").read_text("utf-8"))
        return [self.publish(v, keep=True) for v in data["posts"]]

    def expire_tokens(self) -> None:
        """Every access token issued so far answers ExpiredToken from now on."""
        with self.lock:
            self._expired |= set(self._access)

    # -- HTTP ------------------------------------------------------------------------------

    def build_app(self) -> Starlette:
        return Starlette(
            routes=[
                Route(
                    "/xrpc/com.atproto.server.createSession", self.create_session, methods=["POST"]
                ),
                Route(
                    "/xrpc/com.atproto.server.refreshSession",
                    self.refresh_session,
                    methods=["POST"],
                ),
                Route("/xrpc/app.bsky.feed.searchPosts", self.search_posts),
            ]
        )

    def _json(self, obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        body = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
        return Response(
            body, status, {"content-type": "application/json; charset=utf-8", **(headers or {})}
        )

    def _error(
        self, status: int, error: str, message: str, headers: dict[str, str] | None = None
    ) -> Response:
        return self._json({"error": error, "message": message}, status, headers)

    def _rate_headers(self, remaining: int, reset: float) -> dict[str, str]:
        limit, window = self.rate_limit
        return {
            "ratelimit-limit": str(limit),
            "ratelimit-remaining": str(remaining),
            "ratelimit-reset": str(int(reset)),
            "ratelimit-policy": f"{limit};w={int(window)}",
        }

    def _rate(self) -> tuple[dict[str, str], Response | None]:
        limit, window = self.rate_limit
        now = time.time()
        index = int(now // window)
        with self.lock:
            current, used = self._window
            used = used + 1 if current == index else 1
            self._window = (index, used)
        reset = (index + 1) * window
        headers = self._rate_headers(max(0, limit - used), reset)
        if used > limit:
            headers["retry-after"] = str(max(1, int(reset - now + 0.999)))
            return headers, self._error(429, "RateLimitExceeded", "Rate Limit Exceeded", headers)
        return headers, None

    def fault_response(self, fault: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
        if fault["kind"] == "rate_limit":
            headers = self._rate_headers(0, fault["reset_at"])
            headers["retry-after"] = str(max(0, int(fault["reset_at"] - time.time() + 0.999)))
            headers["content-type"] = "application/json; charset=utf-8"
            return (
                429,
                list(headers.items()),
                b'{"error":"RateLimitExceeded","message":"Rate Limit Exceeded"}',
            )
        if fault["status"] >= 500:
            body = b'{"error":"InternalServerError","message":"Internal Server Error"}'
            if fault["status"] != 500:
                body = b'{"error":"UpstreamFailure","message":"Upstream Failure"}'
            return fault["status"], [("content-type", "application/json; charset=utf-8")], body
        return super().fault_response(fault)

    def _bearer(self, request: Request) -> str | None:
        auth = request.headers.get("authorization", "")
        return auth[7:].strip() if auth.lower().startswith("bearer ") else None

    def _session(self, handle: str) -> dict[str, Any]:
        n = next(self._tokens)
        access, refresh = f"fake-access-{n}", f"fake-refresh-{n}"
        self._access[access] = handle
        self._refresh[refresh] = handle
        did = "did:plc:" + handle.replace(".", "")[:24].ljust(24, "a")
        return {
            "did": did,
            "handle": handle,
            "accessJwt": access,
            "refreshJwt": refresh,
            "active": True,
        }

    async def create_session(self, request: Request) -> Response:
        headers, refused = self._rate()
        if refused:
            return refused
        try:
            body = await request.json()
        except ValueError:
            return self._error(400, "InvalidRequest", "Invalid JSON body", headers)
        identifier, password = body.get("identifier"), body.get("password")
        with self.lock:
            if identifier not in self.accounts or self.accounts[identifier] != password:
                return self._error(
                    401, "AuthenticationRequired", "Invalid identifier or password", headers
                )
            return self._json(self._session(identifier), headers=headers)

    async def refresh_session(self, request: Request) -> Response:
        headers, refused = self._rate()
        if refused:
            return refused
        token = self._bearer(request)
        with self.lock:
            if token is None:
                return self._error(401, "AuthMissing", "Authentication Required", headers)
            handle = self._refresh.pop(token, None)
            if handle is None:
                return self._error(400, "InvalidToken", "Token could not be verified", headers)
            return self._json(self._session(handle), headers=headers)

    async def search_posts(self, request: Request) -> Response:
        headers, refused = self._rate()
        if refused:
            return refused
        token = self._bearer(request)
        with self.lock:
            if token is None:
                return self._error(
                    self.auth_missing_status, "AuthMissing", "Authentication Required", headers
                )
            if token in self._expired:
                return self._error(400, "ExpiredToken", "Token has expired", headers)
            if token not in self._access:
                return self._error(400, "InvalidToken", "Token could not be verified", headers)
            posts = list(self._posts.values())
        q = request.query_params
        query = q.get("q", "").strip()
        if not query:
            return self._error(
                400, "InvalidRequest", 'Error: Params must have the property "q"', headers
            )
        try:
            limit = int(q.get("limit", 25))
            offset = int(q.get("cursor") or 0)
            since = _ts(q["since"]) if q.get("since") else None
            until = _ts(q["until"]) if q.get("until") else None
        except ValueError as exc:
            return self._error(400, "BadQueryString", str(exc), headers)
        if not 1 <= limit <= 100:
            return self._error(400, "InvalidRequest", "limit must be between 1 and 100", headers)
        tags = {t.lower().lstrip("#") for t in q.getlist("tag")}
        terms = [t.lower() for t in query.split()]
        hits = []
        for view in posts:
            ptags = post_tags(view)
            text = (view.get("record") or {}).get("text", "").lower()
            if not tags <= ptags:
                continue
            if not all((t.startswith("#") and t[1:] in ptags) or t in text for t in terms):
                continue
            sort_at = min(_ts(view["record"]["createdAt"]), _ts(view["indexedAt"]))
            if (since is not None and sort_at < since) or (until is not None and sort_at >= until):
                continue
            hits.append((sort_at, view))
        if q.get("sort") == "top":
            hits.sort(key=lambda h: h[1].get("likeCount", 0), reverse=True)
        else:
            hits.sort(key=lambda h: h[0], reverse=True)
        page = [copy.deepcopy(v) for _, v in hits[offset : offset + limit]]
        out: dict[str, Any] = {"posts": page}
        if offset + limit < len(hits):
            out["cursor"] = str(offset + limit)
        return self._json(out, headers=headers)
