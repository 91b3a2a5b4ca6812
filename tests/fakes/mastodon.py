"""A fake Mastodon instance: instance document, hashtag SSE stream, tag timeline, single status.

    with MastodonFake(tokens={"tok"}, heartbeat=0.2) as m:
        status = m.publish(new_status("#northwind hello", tags=["northwind"]))
        m.edit(status["id"], content="<p>changed</p>")     # status.update on the stream
        m.delete(status["id"])                                # delete <bare id>; REST 404s it
        m.delete(other["id"], stream=False)                   # deleted while nobody listened

What it reproduces (SOURCES.md §1, fixtures/mastodon-*):

* `GET /api/v2/instance[/]`: the recorded mastodon.social document with `domain`,
  `configuration.urls.streaming` (ws://this fake) and `configuration.timelines_access` set from
  `timelines_access=`.
* `GET /api/v1/streaming/hashtag[/local]?tag=…`: streamToHttp() byte for byte: `:)\n` on connect,
  `:thump\n` every `heartbeat` seconds, `event: X\ndata: <one-line JSON or bare id>\n\n` (two
  writes, as Node does), no `id:`/`retry:`, never a replay. Token from `Authorization: Bearer` or
  `access_token=`; 401 `Missing access token` / `Invalid access token` and 400
  `Missing tag name parameter` / `Unknown channel requested` as JSON. Tags are normalised like
  streaming/utils.js normalizeHashtag. Reblogs and non-public statuses never reach a hashtag stream.
* `GET /api/v1/timelines/tag/:tag`: paginable.rb (`max_id`/`since_id` newest first from the top or
  below max_id; `min_id` the items immediately above, still returned newest first), `limit`
  default 20 and max 40 (Api::BaseController#limit_param), `local`/`remote`/`only_media`,
  `any[]`/`all[]`/`none[]`; a Link header (next max_id=last, prev min_id=first, keeping only
  local/limit/only_media, query keys sorted as Rails' to_query does) only when the page is not
  empty; `timelines_access` (disabled → those statuses are left out, so a fully disabled feed
  answers 200 []; authenticated without a token → 422 as require_user!).
* `GET /api/v1/statuses/:id`: the status, or 404 `{"error":"Record not found"}` once deleted.
* `GET /api/v1/statuses?id[]=…` (4.3 and later; `version=` below that answers 404, the route
  did not exist): the statuses it still has, in no promised order, deleted ones left out; more
  than 20 distinct ids is 422 (statuses_controller.rb check_statuses_limit,
  DEFAULT_STATUSES_LIMIT). `set_counts` changes counts without a stream event, as Mastodon does.
* Every REST answer carries X-RateLimit-Limit/Remaining/Reset (ISO-8601, 6 fractional digits, the
  next period boundary); past `rate_limit=(limit, period)` it answers 429
  `{"error":"Too many requests"}` with Remaining 0 (rack_attack.rb throttled_responder).
* Ids are snowflakes (unix ms << 16 | sequence). `publish(..., created_at=past)` gives the
  backdated id that Mastodon gives a late-federated remote status (an id below ids already served).
  Two fakes can publish one status dict: same `uri`, each its own `id`.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import random
import time
import unicodedata
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from .base import CLOSE, FIXTURES, CutConnection, FakeServer

STREAM_HEADERS = {
    "access-control-allow-origin": "*",
    "cache-control": "private, no-store",
    "connection": "keep-alive",
    "content-type": "text/event-stream",
    "keep-alive": "timeout=5",
    "x-powered-by": "Express",
}

DEFAULT_TOKEN = "fake-user-token"


def compact(obj: Any) -> str:
    """JSON as Node's JSON.stringify and Rails' to_json write it here: compact, raw UTF-8."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


_FOLD = {
    "ß": "ss",
    "æ": "ae",
    "œ": "oe",
    "ø": "o",
    "đ": "d",
    "ł": "l",
    "þ": "th",
    "ð": "d",
    "ı": "i",
}


def normalize_hashtag(tag: str) -> str:
    """streaming/utils.js normalizeHashtag: NFKC, lowercase, ASCII-fold Latin, keep \\p{L}\\p{N}_·ZWNJ."""
    text = unicodedata.normalize("NFKC", tag.lstrip("#")).lower()
    folded = []
    for ch in text:
        if "\u00c0" <= ch <= "\u024f" or "\u1e00" <= ch <= "\u1eff":
            if ch in _FOLD:
                folded.append(_FOLD[ch])
                continue
            base = "".join(
                c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c)
            )
            folded.append(base if base.isascii() else ch)
        else:
            folded.append(ch)
    return "".join(
        ch for ch in "".join(folded) if ch in "_\u00b7\u200c" or unicodedata.category(ch)[0] in "LN"
    )


def iso_ms(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def iso_us(epoch: float) -> str:
    when = datetime.fromtimestamp(epoch, UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: datetime | str | float) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def snowflake_ms(status_id: int | str) -> int:
    return int(status_id) >> 16


_status_counter = itertools.count(1)


def status_template() -> dict[str, Any]:
    """A real Status (Mastodon 4.6.4, the recorded tag timeline page) to build test posts from."""
    return json.loads((FIXTURES / "mastodon-tag-timeline-page.json").read_text("utf-8"))[0]


def new_status(
    content: str = "<p>hello</p>",
    *,
    tags: list[str] = (),
    host: str = "remote.example",
    username: str = "alice",
    visibility: str = "public",
    **fields: Any,
) -> dict[str, Any]:
    """A Status dict with a unique `uri`, shaped like the recorded one. Fields override anything."""
    n = next(_status_counter)
    status = status_template()
    account = dict(status["account"])
    account.update(
        username=username,
        acct=f"{username}@{host}",
        url=f"https://{host}/@{username}",
        uri=f"https://{host}/users/{username}",
    )
    status.update(
        uri=f"https://{host}/users/{username}/statuses/{n}",
        url=f"https://{host}/@{username}/{n}",
        content=content,
        visibility=visibility,
        account=account,
        tags=[{"name": t, "url": f"https://{host}/tags/{t}"} for t in tags],
        media_attachments=[],
        mentions=[],
        emojis=[],
        card=None,
        poll=None,
    )
    status.update(fields)
    return status


class MastodonFake(FakeServer):
    name = "mastodon"

    def __init__(
        self,
        *,
        tokens: set[str] | None = None,
        heartbeat: float = 15.0,
        timelines_access: dict[str, str] | None = None,
        rate_limit: tuple[int, float] = (300, 300.0),
        unknown_tag_404: bool = False,
        version: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.version = version  # None: the recorded instance document's (4.7.0-alpha.2)
        self.tokens = {DEFAULT_TOKEN} if tokens is None else set(tokens)
        self.heartbeat = heartbeat
        self.timelines_access = {"local": "public", "remote": "public", **(timelines_access or {})}
        self.rate_limit = rate_limit
        self.unknown_tag_404 = unknown_tag_404
        self._statuses: dict[int, dict[str, Any]] = {}  # id -> record
        self._last_id = 0
        # Mastodon's low 16 bits hash a per-instance secret with a sequence: two instances
        # never hand out the same id for the same millisecond.
        self._salt = random.randrange(0, 1 << 15)
        self._used_ids: set[int] = set()
        self._window = (-1, 0)  # (window index, requests counted in it)
        self.known_tags: set[str] = set()

    # -- content ---------------------------------------------------------------------------

    def _new_id(self, when: datetime | None) -> int:
        if when is None:
            sid = max((int(time.time() * 1000) << 16) + self._salt, self._last_id + 1)
            self._last_id = sid
        else:
            sid = (int(when.timestamp() * 1000) << 16) + self._salt
            while sid in self._used_ids:
                sid += 1
        self._used_ids.add(sid)
        return sid

    def publish(
        self,
        post: dict[str, Any],
        *,
        created_at: datetime | str | float | None = None,
        id: int | str | None = None,  # noqa: A002 - the API's own word
        local: bool | None = None,
        keep: bool = False,
    ) -> dict[str, Any]:
        """Make `post` (a Status dict) known to this instance; returns the status as served.

        By default it gets a fresh snowflake id and `created_at` = now. `created_at=` a past time
        gives it the backdated id of a late-federated post. `keep=True` serves the dict verbatim
        (its own `id` and `created_at`), for byte-exact replays of fixtures. Public statuses with a
        matching tag go to the connected hashtag streams as `update`.
        """
        status = copy.deepcopy(post)
        with self.lock:
            if keep:
                sid = int(status["id"])
                self._used_ids.add(sid)
                self._last_id = max(self._last_id, sid)
            elif id is not None:
                sid = int(id)
                self._used_ids.add(sid)
                status["id"] = str(sid)
            else:
                when = parse_time(created_at) if created_at is not None else None
                sid = self._new_id(when)
                status["id"] = str(sid)
                status["created_at"] = iso_ms(when or datetime.fromtimestamp(time.time(), UTC))
            if not status.get("uri"):
                status["uri"] = f"{self.url}/users/{status['account']['username']}/statuses/{sid}"
            if not status.get("url"):
                status["url"] = f"{self.url}/@{status['account']['username']}/{sid}"
            if local is None:
                local = status["uri"].startswith(self.url)
            record = {"id": sid, "status": status, "local": local, "deleted": False}
            record["tags"] = {normalize_hashtag(t["name"]) for t in status.get("tags") or []}
            self._statuses[sid] = record
            self.known_tags |= record["tags"]
            self._emit("update", record)
        return copy.deepcopy(status)

    def update(self, status: dict[str, Any]) -> dict[str, Any]:
        """Replace the stored status with the same id verbatim and stream `status.update`.

        An id the instance does not hold yet is added (an edit of a status never seen).
        """
        status = copy.deepcopy(status)
        sid = int(status["id"])
        with self.lock:
            record = self._statuses.get(sid)
            if record is None:
                record = {"id": sid, "local": status["uri"].startswith(self.url), "deleted": False}
                self._statuses[sid] = record
                self._used_ids.add(sid)
            record["status"] = status
            record["tags"] = {normalize_hashtag(t["name"]) for t in status.get("tags") or []}
            self.known_tags |= record["tags"]
            self._emit("status.update", record)
        return copy.deepcopy(status)

    def edit(self, status_id: int | str, **changes: Any) -> dict[str, Any]:
        """Change fields of a status, stamp `edited_at` = now, stream `status.update`."""
        with self.lock:
            status = copy.deepcopy(self._statuses[int(status_id)]["status"])
        if "tags" in changes and changes["tags"] and isinstance(changes["tags"][0], str):
            changes["tags"] = [{"name": t, "url": f"{self.url}/tags/{t}"} for t in changes["tags"]]
        status.update(changes)
        status["edited_at"] = iso_ms(datetime.now(UTC))
        return self.update(status)

    def delete(self, status_id: int | str, *, stream: bool = True) -> None:
        """Delete a status: `delete` with the bare id on the streams, 404 on REST, gone from timelines.

        `stream=False` deletes it without telling the streams, as when the delete happened while
        the collector was disconnected (the stream never replays it): only REST shows it.
        """
        with self.lock:
            record = self._statuses[int(status_id)]
            record["deleted"] = True
            if stream:
                self._emit("delete", record)

    def status(self, status_id: int | str) -> dict[str, Any]:
        with self.lock:
            return copy.deepcopy(self._statuses[int(status_id)]["status"])

    def ids(self) -> list[str]:
        """Ids of the live (undeleted) statuses, oldest first."""
        with self.lock:
            return [str(i) for i in sorted(self._statuses) if not self._statuses[i]["deleted"]]

    def _emit(self, event: str, record: dict[str, Any]) -> None:
        status = record["status"]
        if event != "delete" and (status.get("reblog") or status.get("visibility") != "public"):
            return
        data = str(record["id"]) if event == "delete" else compact(status)
        self.hub.broadcast(
            {"event": event, "data": data, "tags": set(record["tags"]), "local": record["local"]}
        )

    # -- HTTP ------------------------------------------------------------------------------

    def build_app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/api/v2/instance", self.instance),
                Route("/api/v2/instance/", self.instance),
                Route("/api/v1/streaming", self.streaming_root),
                Route("/api/v1/streaming/{channel:path}", self.stream),
                Route("/api/v1/timelines/tag/{tag}", self.tag_timeline),
                Route("/api/v1/statuses", self.statuses),
                Route("/api/v1/statuses/{id}", self.show_status),
            ]
        )

    def is_stream(self, path: str) -> bool:
        return path.startswith("/api/v1/streaming/")

    def fault_response(self, fault: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
        if fault["kind"] == "rate_limit":
            return (
                429,
                [
                    ("content-type", "application/json"),
                    ("x-ratelimit-limit", str(self.rate_limit[0])),
                    ("x-ratelimit-remaining", "0"),
                    ("x-ratelimit-reset", iso_us(fault["reset_at"])),
                ],
                b'{"error":"Too many requests"}',
            )
        return super().fault_response(fault)

    def _token(self, request: Request) -> str | None:
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        return request.query_params.get("access_token") or None

    def _json(self, obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        body = compact(obj).encode()
        hdrs = {
            "cache-control": "private, no-store",
            "content-type": "application/json; charset=utf-8",
            "vary": "Authorization, Origin",
            "x-content-type-options": "nosniff",
        }
        if status == 200:
            hdrs["etag"] = f'W/"{hashlib.md5(body).hexdigest()}"'
        hdrs.update(headers or {})
        return Response(body, status_code=status, headers=hdrs)

    def _rate(self) -> tuple[dict[str, str], bool]:
        """Count one REST request against the budget: (headers, over budget?)."""
        limit, period = self.rate_limit
        now = time.time()
        window = int(now // period)
        with self.lock:
            index, used = self._window
            used = used + 1 if index == window else 1
            self._window = (window, used)
        reset = now + (period - now % period)
        headers = {
            "x-ratelimit-limit": str(limit),
            "x-ratelimit-remaining": str(max(0, limit - used)),
            "x-ratelimit-reset": iso_us(reset),
        }
        return headers, used > limit

    def _rest_guard(self, request: Request) -> tuple[dict[str, str], Response | None]:
        headers, over = self._rate()
        if over:
            return headers, self._json({"error": "Too many requests"}, 429, headers)
        token = self._token(request)
        if token is not None and token not in self.tokens:
            return headers, self._json({"error": "The access token is invalid"}, 401, headers)
        return headers, None

    async def instance(self, request: Request) -> Response:
        headers, refused = self._rest_guard(request)
        if refused:
            return refused
        doc = json.loads(
            (FIXTURES / "mastodon-instance-v2-mastodon-social.json").read_text("utf-8")
        )
        doc["domain"] = self.host
        doc["configuration"]["urls"]["streaming"] = f"ws://{self.host}"
        doc["configuration"]["timelines_access"]["hashtag_feeds"] = dict(self.timelines_access)
        if self.version is not None:
            doc["version"] = self.version
        return self._json(doc, headers=headers)

    async def streaming_root(self, request: Request) -> Response:
        # Same host serves streaming: GET /api/v1/streaming answers 404 (streaming.md).
        return Response(b'{"error":"Not Found"}', 404, media_type="application/json")

    def _stream_error(self, status: int, message: str) -> Response:
        return Response(
            compact({"error": message}).encode(), status, {"content-type": "application/json"}
        )

    async def stream(self, request: Request) -> Response:
        token = self._token(request)
        if token is None:
            return self._stream_error(401, "Missing access token")
        if token not in self.tokens:
            return self._stream_error(401, "Invalid access token")
        channel = request.path_params["channel"].rstrip("/")
        if channel not in ("hashtag", "hashtag/local"):
            return self._stream_error(400, "Unknown channel requested")
        raw_tag = request.query_params.get("tag", "")
        if not raw_tag:
            return self._stream_error(400, "Missing tag name parameter")
        tag = normalize_hashtag(raw_tag)
        local_only = channel == "hashtag/local"

        def match(item: dict[str, Any]) -> bool:
            return tag in item["tags"] and (item["local"] or not local_only)

        sub = self.hub.subscribe(match, tag=tag, local=local_only)
        return StreamingResponse(self._stream_body(sub), headers=STREAM_HEADERS)

    async def _stream_body(self, sub):
        import asyncio

        faults = self.faults
        try:
            yield b":)\n"
            next_beat = time.monotonic() + self.heartbeat
            while True:
                await faults.wait_stall()
                wait = next_beat - time.monotonic()
                if wait <= 0:
                    yield b":thump\n"
                    next_beat = time.monotonic() + self.heartbeat
                    continue
                try:
                    item = await asyncio.wait_for(sub.queue.get(), min(wait, 0.1))
                except TimeoutError:
                    continue
                if item is CLOSE:
                    raise CutConnection("server stopped")
                await faults.wait_stall()
                head = f"event: {item['event']}\n".encode()
                data = item["data"]
                if faults.take_cut():
                    whole = head + f"data: {data}\n\n".encode()
                    yield whole[: len(whole) // 2]
                    raise CutConnection("fault: cut")
                if faults.take_malformed():
                    data = (
                        data[: max(1, len(data) // 2)] if data.startswith("{") else '{"id":' + data
                    )
                yield head
                yield f"data: {data}\n\n".encode()
        finally:
            self.hub.unsubscribe(sub)

    def _select(
        self,
        tags: set[str],
        all_tags: set[str],
        none_tags: set[str],
        local: bool,
        remote: bool,
        only_media: bool,
        authed: bool,
    ) -> tuple[list[dict[str, Any]], Response | None]:
        access = self.timelines_access
        wanted = []
        if not remote or local:
            wanted.append(("local", True))
        if not local or remote:
            wanted.append(("remote", False))
        allowed = set()
        for name, flag in wanted:
            mode = access.get(name, "public")
            if mode == "disabled":
                continue
            if mode == "authenticated" and not authed:
                return [], self._json({"error": "This method requires an authenticated user"}, 422)
            allowed.add(flag)
        rows = []
        for record in self._statuses.values():
            status = record["status"]
            if record["deleted"] or record["local"] not in allowed:
                continue
            if status.get("reblog") or status.get("visibility") != "public":
                continue
            if (
                not record["tags"] & tags
                or not all_tags <= record["tags"]
                or record["tags"] & none_tags
            ):
                continue
            if only_media and not status.get("media_attachments"):
                continue
            rows.append(record)
        return rows, None

    async def tag_timeline(self, request: Request) -> Response:
        headers, refused = self._rest_guard(request)
        if refused:
            return refused
        q = request.query_params
        tag = normalize_hashtag(request.path_params["tag"])
        if self.unknown_tag_404 and tag not in self.known_tags:
            return self._json({"error": "Record not found"}, 404, headers)
        truthy = {"1", "true", "t", "on", "yes"}
        any_tags = {normalize_hashtag(t) for t in q.getlist("any[]")}
        all_tags = {normalize_hashtag(t) for t in q.getlist("all[]")}
        none_tags = {normalize_hashtag(t) for t in q.getlist("none[]")}
        limit = 20
        if "limit" in q:
            limit = min(abs(_to_i(q["limit"])), 40)
        with self.lock:
            rows, refused = self._select(
                {tag} | set(list(any_tags)[:4]),
                all_tags,
                none_tags,
                q.get("local", "").lower() in truthy,
                q.get("remote", "").lower() in truthy,
                q.get("only_media", "").lower() in truthy,
                self._token(request) in self.tokens,
            )
            if refused:
                refused.headers.update(headers)
                return refused
            page = paginate(
                [r["id"] for r in rows], limit, q.get("max_id"), q.get("since_id"), q.get("min_id")
            )
            statuses = [copy.deepcopy(self._statuses[i]["status"]) for i in page]
        if page:
            keep = {k: q[k] for k in ("local", "limit", "only_media") if k in q}
            base = f"{self.url}/api/v1/timelines/tag/{request.path_params['tag']}"
            nxt = urlencode(sorted({**keep, "max_id": str(page[-1])}.items()))
            prev = urlencode(sorted({**keep, "min_id": str(page[0])}.items()))
            headers["link"] = f'<{base}?{nxt}>; rel="next", <{base}?{prev}>; rel="prev"'
        return self._json(statuses, headers=headers)

    def set_counts(self, status_id: int | str, *, favourites: int = 0, reblogs: int = 0,
                   replies: int = 0) -> None:  # fmt: skip
        with self.lock:
            status = self._statuses[int(status_id)]["status"]
            status.update(favourites_count=favourites, reblogs_count=reblogs, replies_count=replies)

    async def statuses(self, request: Request) -> Response:
        headers, refused = self._rest_guard(request)
        if refused:
            return refused
        if self.version is not None and tuple(map(int, self.version.split(".")[:2])) < (4, 3):
            return self._json({"error": "Not Found"}, 404, headers)
        ids = list(dict.fromkeys(_to_i(v) for v in request.query_params.getlist("id[]")))
        if len(ids) > 20:
            return self._json({"error": "Validation failed"}, 422, headers)
        with self.lock:
            found = [copy.deepcopy(r["status"]) for i in ids
                     if (r := self._statuses.get(i)) is not None and not r["deleted"]]  # fmt: skip
        random.shuffle(found)  # Mastodon answers in no order
        return self._json(found, headers=headers)

    async def show_status(self, request: Request) -> Response:
        headers, refused = self._rest_guard(request)
        if refused:
            return refused
        with self.lock:
            record = self._statuses.get(_to_i(request.path_params["id"]))
            if record is None or record["deleted"]:
                return self._json({"error": "Record not found"}, 404, headers)
            return self._json(record["status"], headers=headers)


def _to_i(value: str | None) -> int:
    """Ruby's String#to_i: leading digits, else 0."""
    digits = ""
    for ch in (value or "").strip():
        if not ch.isdigit():
            break
        digits += ch
    return int(digits) if digits else 0


def paginate(
    ids: list[int], limit: int, max_id: str | None, since_id: str | None, min_id: str | None
) -> list[int]:
    """paginable.rb to_a_paginated_by_id over the ids of one timeline; result newest first."""
    ids = sorted(ids)
    if min_id:  # present?: nil and "" are absent
        low = _to_i(min_id)
        chosen = [i for i in ids if i > low and (not max_id or i < _to_i(max_id))][:limit]
        return list(reversed(chosen))
    chosen = [i for i in reversed(ids) if (not max_id or i < _to_i(max_id))]
    chosen = [i for i in chosen if not since_id or i > _to_i(since_id)]
    return chosen[:limit]
