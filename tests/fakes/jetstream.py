"""A fake Jetstream (v1 `/subscribe`): one JSON event per websocket text frame, resumable by cursor.

    with JetstreamFake() as js:
        js.load_capture()                       # the 152 real events, their own time_us
        ev = js.publish(post_event("did:plc:abc", "3kxyz", {"$type": "app.bsky.feed.post", ...}))
        js.delete_post("did:plc:abc", "3kxyz")
        ws_url = js.ws_url + "/subscribe?wantedCollections=app.bsky.feed.post&cursor=" + str(t_us)

What it reproduces (SOURCES.md §3, fixtures/jetstream-*):

* Query: `wantedCollections` (repeated, NSID or `prefix.*`, ≤ 100), `wantedDids` (repeated,
  ≤ 10,000), `maxMessageSizeBytes` (0/empty/garbage = no cap), `cursor` (unix µs). Invalid
  options answer HTTP 400 before the upgrade. `compress` and `requireHello` are ignored (never
  compressed).
* Cursor: events with `time_us >= cursor` are replayed from the retained buffer (sorted by
  time_us, as the store is keyed), then the live tail follows with no gap and no duplicate. No
  cursor, or one in the future, is the live tail; one older than the retention is clamped to the
  oldest retained event.
* Frames: one JSON object per text frame, written as Go's encoder does (`&`, `<`, `>` as
  `\\u0026`…); captured lines are sent verbatim. Identity and account events pass whatever
  `wantedCollections` says; `wantedDids` filters every kind. A client `options_update` message
  replaces the filters; an invalid one disconnects the client.
* Faults: `cut` writes a frame header and half its payload, then drops the TCP connection (no
  close frame); `malformed` sends half an event's JSON in a valid text frame; `stall` sends nothing
  and stops reading (so pings go unanswered); `fail`/`rate_limit` answer the HTTP upgrade request.
"""

from __future__ import annotations

import asyncio
import json
import re
import struct
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request

from .base import CLOSE, FIXTURES, FakeServer, Served

NSID = re.compile(
    r"^[a-zA-Z][a-zA-Z0-9-]*(\.[a-zA-Z0-9][a-zA-Z0-9-]*)+(\.\*)?$|^[a-zA-Z][a-zA-Z0-9-]*(\.[a-zA-Z0-9-]+)*\.\*$"
)
DID = re.compile(r"^did:[a-z]+:[a-zA-Z0-9._:%-]+$")


def go_json(obj: Any) -> str:
    """encoding/json output: compact, raw UTF-8, HTML-significant characters escaped."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    for ch, esc in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e")):
        text = text.replace(ch, esc)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def now_us() -> int:
    return time.time_ns() // 1000


def post_event(
    did: str,
    rkey: str,
    record: dict[str, Any] | None = None,
    *,
    operation: str = "create",
    collection: str = "app.bsky.feed.post",
    cid: str = "bafyreifakecid",
    rev: str = "3fakerev",
) -> dict[str, Any]:
    """A v1 commit event (time_us is filled in by `publish`). Deletes carry no record and no cid."""
    commit: dict[str, Any] = {
        "rev": rev,
        "operation": operation,
        "collection": collection,
        "rkey": rkey,
    }
    if operation != "delete":
        commit["record"] = record or {}
        commit["cid"] = cid
    return {"did": did, "time_us": 0, "kind": "commit", "commit": commit}


def event_from_post_view(view: dict[str, Any]) -> dict[str, Any]:
    """The Jetstream create event for a searchPosts postView (the same post over both paths)."""
    _, _, rest = view["uri"].partition("at://")
    did, collection, rkey = rest.split("/")
    return post_event(did, rkey, view["record"], collection=collection, cid=view["cid"])


class _Filters:
    def __init__(self, collections: list[str], dids: list[str], max_size: int) -> None:
        self.collections = collections
        self.dids = set(dids)
        self.max_size = max_size

    def accepts(self, event: dict[str, Any], size: int) -> bool:
        if self.max_size and size > self.max_size:
            return False
        if self.dids and event["did"] not in self.dids:
            return False
        if event["kind"] != "commit" or not self.collections:
            return True
        collection = event["commit"]["collection"]
        for wanted in self.collections:
            if wanted.endswith(".*"):
                if collection.startswith(wanted[:-1]):
                    return True
            elif collection == wanted:
                return True
        return False


def _parse_filters(collections: list[str], dids: list[str], max_size: Any) -> _Filters:
    if len(collections) > 100:
        raise ValueError("too many wanted collections")
    if len(dids) > 10_000:
        raise ValueError("too many wanted DIDs")
    for c in collections:
        if not NSID.match(c):
            raise ValueError(f"invalid collection: {c}")
    for d in dids:
        if not DID.match(d):
            raise ValueError(f"invalid did: {d}")
    try:
        size = max(0, int(max_size or 0))
    except (TypeError, ValueError):
        size = 0
    return _Filters(collections, dids, size)


class _LoopThread:
    """The websockets server on its own event loop in a daemon thread."""

    def __init__(self, fake: JetstreamFake) -> None:
        self.fake = fake
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self._stop: asyncio.Future | None = None

    def start(self) -> None:
        self.thread = threading.Thread(
            target=self._run, name=f"jetstream:{self.fake.port}", daemon=True
        )
        self.thread.start()
        if not self.ready.wait(10) or self.error:
            raise RuntimeError(f"fake jetstream did not start: {self.error}")

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # noqa: BLE001 - reported to start()
            self.error = exc
            self.ready.set()

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = self.loop.create_future()
        async with serve(
            self.fake._handler,
            "127.0.0.1",
            self.fake.port,
            process_request=self.fake._process_request,
            ping_interval=self.fake.ping_interval,
            compression=None,
            server_header=None,
        ) as server:
            self.ready.set()
            await self._stop
            for conn in list(server.connections):
                conn.transport.abort()
            server.close(close_connections=False)
            await server.wait_closed()

    def stop(self) -> None:
        if self.loop is not None and self._stop is not None:
            try:
                self.loop.call_soon_threadsafe(self._stop.set_result, None)
            except RuntimeError:
                pass
        if self.thread is not None:
            self.thread.join(10)


class JetstreamFake(FakeServer):
    name = "jetstream"

    def __init__(
        self,
        *,
        retention: float | None = None,
        max_events: int | None = None,
        ping_interval: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.retention = retention  # seconds of time_us kept for replay (None: everything)
        self.max_events = max_events
        self.ping_interval = ping_interval
        self._events: list[tuple[int, str, dict[str, Any]]] = []  # (time_us, text, event)
        self._last_us = 0

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def make_runner(self) -> _LoopThread:
        return _LoopThread(self)

    # -- content ---------------------------------------------------------------------------

    def publish(
        self, event: dict[str, Any] | str | bytes, *, keep_time: bool = False
    ) -> dict[str, Any]:
        """Append an event to the buffer and send it to matching live subscribers.

        A dict or a JSON line; `time_us` is set to now (strictly increasing) unless `keep_time`,
        in which case a JSON line is sent byte for byte as given.
        """
        if isinstance(event, bytes):
            event = event.decode("utf-8")
        raw = event if isinstance(event, str) else None
        obj = json.loads(raw) if raw is not None else json.loads(json.dumps(event))
        with self.lock:
            if keep_time:
                text = raw.strip() if raw is not None else go_json(obj)
            else:
                obj["time_us"] = max(now_us(), self._last_us + 1)
                text = go_json(obj)
            self._last_us = max(self._last_us, obj["time_us"])
            self._events.append((obj["time_us"], text, obj))
            if self.max_events is not None and len(self._events) > self.max_events:
                del self._events[: len(self._events) - self.max_events]
            self.hub.broadcast((obj, text))
        return obj

    def delete_post(
        self, did: str, rkey: str, collection: str = "app.bsky.feed.post"
    ) -> dict[str, Any]:
        return self.publish(post_event(did, rkey, operation="delete", collection=collection))

    def load_capture(self, path: Path | None = None) -> list[dict[str, Any]]:
        """Buffer every line of a .jsonl capture verbatim, with its own time_us (no live send)."""
        path = path or FIXTURES / "jetstream-v1-capture-2026-07-04.jsonl"
        return [
            self.publish(line, keep_time=True)
            for line in path.read_text("utf-8").splitlines()
            if line
        ]

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [obj for _, _, obj in self._events]

    def _retained(self) -> list[tuple[int, str, dict[str, Any]]]:
        events = self._events
        if self.retention is not None:
            floor = now_us() - int(self.retention * 1_000_000)
            events = [e for e in events if e[0] >= floor]
        return sorted(events, key=lambda e: e[0])

    # -- websocket -------------------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request):
        parts = urlsplit(request.path)
        entry = Served(
            time.time(),
            "GET",
            parts.path,
            parts.query,
            {k.lower(): v for k, v in request.headers.raw_items()},
        )
        self.requests.append(entry)
        fault = self.faults.take_http(parts.path)
        if fault is not None:
            status, headers, body = self.fault_response(fault)
            entry.status, entry.fault = status, fault["kind"]
            response = connection.respond(status, body.decode())
            for k, v in headers:
                if k != "content-type":
                    response.headers[k] = v
            return response
        if parts.path != "/subscribe":
            entry.status = 404
            return connection.respond(404, "404 page not found\n")
        q = parse_qs(parts.query, keep_blank_values=True)
        try:
            filters = _parse_filters(
                q.get("wantedCollections", []),
                q.get("wantedDids", []),
                (q.get("maxMessageSizeBytes") or [0])[0],
            )
            cursor = None
            if q.get("cursor") and q["cursor"][0] != "":
                cursor = int(q["cursor"][0])
        except ValueError as exc:
            entry.status = 400
            return connection.respond(400, f"{exc}\n")
        entry.status = 101
        connection.fake_state = {"filters": filters, "cursor": cursor}  # type: ignore[attr-defined]
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        state = ws.fake_state  # type: ignore[attr-defined]
        filters: _Filters = state["filters"]
        cursor = state["cursor"]
        box = {"filters": filters}

        def match(item: tuple[dict[str, Any], str]) -> bool:
            obj, text = item
            return box["filters"].accepts(obj, len(text.encode()))

        with self.lock:
            backlog: list[tuple[dict[str, Any], str]] = []
            if cursor is not None and cursor <= now_us():
                retained = self._retained()
                if retained and cursor < retained[0][0]:
                    cursor = retained[0][0]  # clamped to the oldest retained event
                backlog = [(obj, text) for t, text, obj in retained if t >= cursor]
            sub = self.hub.subscribe(match)
        reader = asyncio.create_task(self._read_options(ws, box))
        try:
            for item in backlog:
                if match(item) and not await self._send(ws, item[1]):
                    return
            while True:
                await self._stall(ws)
                try:
                    item = await asyncio.wait_for(sub.queue.get(), 0.1)
                except TimeoutError:
                    if reader.done():
                        return
                    continue
                if item is CLOSE:
                    ws.transport.abort()
                    return
                await self._stall(ws)
                if not await self._send(ws, item[1]):
                    return
        except Exception:  # noqa: BLE001 - the client went away
            return
        finally:
            reader.cancel()
            self.hub.unsubscribe(sub)

    async def _stall(self, ws: ServerConnection) -> None:
        if self.faults.stall_remaining() > 0:
            ws.transport.pause_reading()
            try:
                await self.faults.wait_stall()
            finally:
                ws.transport.resume_reading()

    async def _send(self, ws: ServerConnection, text: str) -> bool:
        if self.faults.take_cut():
            payload = text.encode()
            n = len(payload)
            if n < 126:
                header = struct.pack("!BB", 0x81, n)
            elif n < 65536:
                header = struct.pack("!BBH", 0x81, 126, n)
            else:
                header = struct.pack("!BBQ", 0x81, 127, n)
            ws.transport.write(header + payload[: n // 2])
            await asyncio.sleep(0.05)
            ws.transport.abort()
            return False
        if self.faults.take_malformed():
            text = text[: len(text) // 2]
        await ws.send(text)
        return True

    async def _read_options(self, ws: ServerConnection, box: dict[str, _Filters]) -> None:
        async for message in ws:
            try:
                msg = json.loads(message)
                if msg.get("type") != "options_update":
                    raise ValueError("unknown message type")
                p = msg.get("payload") or {}
                box["filters"] = _parse_filters(
                    list(p.get("wantedCollections") or []),
                    list(p.get("wantedDids") or []),
                    p.get("maxMessageSizeBytes", 0),
                )
            except (ValueError, TypeError, AttributeError):
                await ws.close(1008, "invalid options update")
                return
