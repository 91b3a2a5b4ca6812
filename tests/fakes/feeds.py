"""A fake feed host: RSS/Atom bodies with ETag and Last-Modified, 304 on a matching revalidation.

    with FeedsFake() as feeds:
        feeds.set_feed("/tags/northwind.rss", (FIXTURES / "mastodon-tag-feed.rss").read_bytes())
        feeds.set_feed("/atom.xml", body, content_type="application/atom+xml", etag=False)
        feeds.move("/old.rss", "/tags/northwind.rss")   # 301
        feeds.gone("/dead.rss")                         # 410

`If-None-Match` (a list, weak comparison, `*`) wins over `If-Modified-Since` (RFC 9110 §13.2.2).
A feed set with `etag=False` / `last_modified=False` behaves like the many servers that ignore
conditional requests. Changing a feed's body gives it a new ETag and Last-Modified.
"""

from __future__ import annotations

import hashlib
import time
from email.utils import formatdate, parsedate_to_datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .base import FakeServer


class FeedsFake(FakeServer):
    name = "feeds"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._feeds: dict[str, dict[str, Any]] = {}

    def set_feed(
        self,
        path: str,
        body: bytes | str,
        *,
        content_type: str = "application/rss+xml; charset=utf-8",
        etag: bool = True,
        last_modified: bool = True,
    ) -> str:
        """Serve `body` at `path`; returns its URL."""
        if isinstance(body, str):
            body = body.encode("utf-8")
        with self.lock:
            old = self._feeds.get(path)
            modified = old["modified"] if old and old["body"] == body else int(time.time())
            self._feeds[path] = {
                "kind": "feed",
                "body": body,
                "content_type": content_type,
                "etag": f'"{hashlib.sha1(body).hexdigest()[:20]}"' if etag else None,
                "modified": modified,
                "use_modified": last_modified,
            }
        return self.url + path

    publish = set_feed

    def move(self, path: str, to: str) -> None:
        with self.lock:
            self._feeds[path] = {"kind": "moved", "to": to}

    def gone(self, path: str) -> None:
        with self.lock:
            self._feeds[path] = {"kind": "gone"}

    def build_app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self.serve, methods=["GET", "HEAD"])])

    async def serve(self, request: Request) -> Response:
        path = request.url.path
        with self.lock:
            feed = self._feeds.get(path)
        if feed is None:
            return Response(b"Not Found", 404, media_type="text/plain")
        if feed["kind"] == "moved":
            return Response(b"", 301, headers={"location": self.url + feed["to"]})
        if feed["kind"] == "gone":
            return Response(b"Gone", 410, media_type="text/plain")
        headers = {}
        if feed["etag"]:
            headers["etag"] = feed["etag"]
        if feed["use_modified"]:
            headers["last-modified"] = formatdate(feed["modified"], usegmt=True)
        if self._not_modified(request, feed):
            return Response(b"", 304, headers=headers)
        headers["content-type"] = feed["content_type"]
        return Response(feed["body"], headers=headers)

    @staticmethod
    def _not_modified(request: Request, feed: dict[str, Any]) -> bool:
        inm = request.headers.get("if-none-match")
        if inm is not None:
            if not feed["etag"]:
                return False
            tags = [t.strip().removeprefix("W/") for t in inm.split(",")]
            return "*" in tags or feed["etag"] in tags
        ims = request.headers.get("if-modified-since")
        if ims and feed["use_modified"]:
            try:
                return feed["modified"] <= parsedate_to_datetime(ims).timestamp()
            except (TypeError, ValueError):
                return False
        return False
