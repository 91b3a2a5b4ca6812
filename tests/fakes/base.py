"""What every fake server shares: a server thread on a free port, faults, a request log, a script.

A fake is started with `with SomeFake(...) as fake:` (or `.start()` / `.stop()`), listens on
127.0.0.1 on a free port (`fake.url`), and keeps everything a test needs to look at or change while
it runs:

* `fake.publish(...)` / `fake.play([(seconds, post), ...])`: content appears now, or at offsets
  from the `play` call (offsets <= 0 are published before `play` returns: "already there").
* `fake.faults`: a `Faults` object, settable from the test thread at any time.
* `fake.requests`: a `Served` per request, in arrival order (the status is filled in when the
  response starts).
* `fake.restart(downtime=0)`: stop the server, disconnecting every streaming client, and start it
  again on the same port with the same published content.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import uvicorn

from core.redisd import free_port

FIXTURES = (
    Path(__file__).resolve().parents[1] / "fixtures" / "shared"
)  # real payloads, origins listed there


class CutConnection(Exception):
    """Raised inside a response to make the ASGI server drop the socket without finishing it."""


@dataclass
class Served:
    """One request as the fake saw it."""

    at: float  # time.time() on arrival
    method: str
    path: str
    query: str
    headers: dict[str, str]
    status: int | None = None
    fault: str | None = None  # which injected fault answered it, if any

    @property
    def params(self) -> dict[str, list[str]]:
        return parse_qs(self.query, keep_blank_values=True)

    def param(self, name: str) -> str | None:
        values = self.params.get(name)
        return values[0] if values else None


class Faults:
    """Faults injected into a running fake. Every method is safe to call from the test thread.

    * `fail(status, count, path)`: the next `count` requests (whose path starts with `path`, if
      given) are answered `status` (500, 502, 503 …) with the source's usual error body.
    * `rate_limit(count, reset_in, path)`: the next `count` requests get the source's 429, whose
      reset headers point `reset_in` seconds after this call.
    * `cut(count)`: the next `count` stream events are written half and the socket is then dropped;
      on a plain HTTP response, the headers and half the body are sent and the socket is dropped.
    * `malformed(count)`: the next `count` stream events carry broken JSON (the framing stays
      valid); a plain HTTP JSON body is truncated to half (with a matching Content-Length).
    * `stall(seconds)`: nothing at all is sent for that long: no events, no heartbeats, no
      responses. Events published meanwhile are delivered when the stall ends.
    * `clear()`: forget every pending fault and end a stall.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._http: list[dict[str, Any]] = []
        self._cut = 0
        self._malformed = 0
        self._stall_until = 0.0

    def fail(self, status: int = 500, count: int = 1, path: str | None = None) -> None:
        with self._lock:
            self._http.append({"kind": "fail", "status": status, "count": count, "path": path})

    def rate_limit(self, count: int = 1, reset_in: float = 2.0, path: str | None = None) -> None:
        with self._lock:
            self._http.append(
                {
                    "kind": "rate_limit",
                    "status": 429,
                    "count": count,
                    "path": path,
                    "reset_at": time.time() + reset_in,
                }
            )

    def cut(self, count: int = 1) -> None:
        with self._lock:
            self._cut += count

    def malformed(self, count: int = 1) -> None:
        with self._lock:
            self._malformed += count

    def stall(self, seconds: float) -> None:
        with self._lock:
            self._stall_until = time.monotonic() + seconds

    def clear(self) -> None:
        with self._lock:
            self._http.clear()
            self._cut = self._malformed = 0
            self._stall_until = 0.0

    # -- used by the servers --------------------------------------------------------------

    def take_http(self, path: str) -> dict[str, Any] | None:
        with self._lock:
            for fault in self._http:
                if fault["path"] is None or path.startswith(fault["path"]):
                    fault["count"] -= 1
                    if fault["count"] <= 0:
                        self._http.remove(fault)
                    return dict(fault)
        return None

    def take_cut(self) -> bool:
        with self._lock:
            if self._cut > 0:
                self._cut -= 1
                return True
        return False

    def take_malformed(self) -> bool:
        with self._lock:
            if self._malformed > 0:
                self._malformed -= 1
                return True
        return False

    def stall_remaining(self) -> float:
        return max(0.0, self._stall_until - time.monotonic())

    async def wait_stall(self) -> None:
        while (left := self.stall_remaining()) > 0:
            await asyncio.sleep(min(left, 0.02))


CLOSE = object()  # put on a subscriber's queue: drop that client now


@dataclass(eq=False)
class Subscription:
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue
    match: Callable[[Any], bool]
    info: dict[str, Any] = field(default_factory=dict)


class Hub:
    """Fan-out from any thread to the stream handlers running on the server's event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: set[Subscription] = set()

    def subscribe(self, match: Callable[[Any], bool], **info: Any) -> Subscription:
        sub = Subscription(asyncio.get_running_loop(), asyncio.Queue(), match, info)
        with self._lock:
            self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subs.discard(sub)

    def __len__(self) -> int:
        with self._lock:
            return len(self._subs)

    def subscribers(self) -> list[Subscription]:
        with self._lock:
            return list(self._subs)

    def broadcast(self, item: Any) -> int:
        sent = 0
        for sub in self.subscribers():
            if sub.match(item):
                _put(sub, item)
                sent += 1
        return sent

    def close_all(self) -> None:
        for sub in self.subscribers():
            _put(sub, CLOSE)


def _put(sub: Subscription, item: Any) -> None:
    try:
        sub.loop.call_soon_threadsafe(sub.queue.put_nowait, item)
    except RuntimeError:  # that loop is closed: the client is gone already
        pass


class UvicornThread:
    """An ASGI app served by uvicorn (h11) in a daemon thread, on a fixed port."""

    def __init__(self, app: Callable, port: int) -> None:
        self.app = app
        self.port = port
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    def start(self, timeout: float = 10.0) -> None:
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            http="h11",
            ws="none",
            lifespan="off",
            log_config=None,
            log_level="critical",
            access_log=False,
            server_header=False,
            date_header=False,
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, name=f"fake:{self.port}", daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"fake server on port {self.port} did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        if self.server is not None and self.thread is not None:
            self.server.should_exit = True
            self.thread.join(10)
            if self.thread.is_alive():
                self.server.force_exit = True
                self.thread.join(5)
        self.server = self.thread = None


class FakeServer:
    """Base of the HTTP fakes. Subclasses provide `build_app()` and the source's error shapes."""

    name = "fake"

    def __init__(
        self, *, port: int | None = None, script: Iterable[tuple[float, Any]] = ()
    ) -> None:
        self.port = port or free_port()
        self.faults = Faults()
        self.requests: list[Served] = []
        self.hub = Hub()
        self.lock = threading.RLock()
        self._script = list(script)
        self._runner: Any = None
        self._stopping = threading.Event()
        self._players: list[threading.Thread] = []
        self.started_at: float | None = None
        self.restarts = 0

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> FakeServer:
        self._runner = self.make_runner()
        self._runner.start()
        self.started_at = time.time()
        if self._script:
            self.play(self._script)
        return self

    def stop(self) -> None:
        self._stopping.set()
        for player in self._players:
            player.join(5)
        self._players.clear()
        self.hub.close_all()
        if self._runner is not None:
            self._runner.stop()
            self._runner = None

    def restart(self, downtime: float = 0.0) -> None:
        """Stop listening (streaming clients are dropped), wait `downtime`, listen again."""
        self.hub.close_all()
        self._runner.stop()
        if downtime:
            time.sleep(downtime)
        self._runner = self.make_runner()
        self._runner.start()
        self.restarts += 1

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def make_runner(self) -> Any:
        return UvicornThread(FaultMiddleware(self.build_app(), self), self.port)

    def build_app(self) -> Callable:
        raise NotImplementedError

    # -- script ---------------------------------------------------------------------------

    def play(self, script: Iterable[tuple[float, Any]]) -> None:
        """Publish each item at its offset in seconds from now (a callable is called instead)."""
        items = sorted(script, key=lambda pair: pair[0])
        now = [(t, item) for t, item in items if t <= 0]
        later = [(t, item) for t, item in items if t > 0]
        for _, item in now:
            self._play_one(item)
        if not later:
            return
        start = time.monotonic()

        def run() -> None:
            for offset, item in later:
                if self._stopping.wait(max(0.0, start + offset - time.monotonic())):
                    return
                self._play_one(item)

        player = threading.Thread(target=run, name=f"{self.name}-script", daemon=True)
        self._players.append(player)
        player.start()

    def _play_one(self, item: Any) -> None:
        if callable(item):
            item()
        else:
            self.publish(item)

    def publish(self, item: Any) -> Any:
        raise NotImplementedError

    # -- hooks for FaultMiddleware --------------------------------------------------------

    def is_stream(self, path: str) -> bool:
        return False

    def fault_response(self, fault: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
        if fault["kind"] == "rate_limit":
            wait = max(0, int(fault["reset_at"] - time.time() + 0.999))
            return (
                429,
                [("content-type", "text/plain"), ("retry-after", str(wait))],
                b"Too Many Requests",
            )
        status = fault["status"]
        body = {500: b"Internal Server Error", 502: b"Bad Gateway", 503: b"Service Unavailable"}
        return (
            status,
            [("content-type", "text/html")],
            b"<html><body><h1>%d</h1>%s</body></html>\n"
            % (
                status,
                body.get(status, b"Error"),
            ),
        )

    # -- helpers for tests -----------------------------------------------------------------

    def requests_to(self, path_prefix: str) -> list[Served]:
        return [r for r in list(self.requests) if r.path.startswith(path_prefix)]

    def wait_for_clients(self, count: int = 1, timeout: float = 5.0) -> None:
        """Block until `count` streaming clients are connected."""
        deadline = time.monotonic() + timeout
        while len(self.hub) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{len(self.hub)} streaming clients after {timeout}s, wanted {count}"
                )
            time.sleep(0.01)


class FaultMiddleware:
    """Logs every request and applies the HTTP-level faults before the app sees the request."""

    def __init__(self, app: Callable, fake: FakeServer) -> None:
        self.app = app
        self.fake = fake

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        fake, faults = self.fake, self.fake.faults
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        entry = Served(
            time.time(), scope["method"], scope["path"], scope["query_string"].decode(), headers
        )
        fake.requests.append(entry)
        await faults.wait_stall()
        fault = faults.take_http(scope["path"])
        if fault is not None:
            status, resp_headers, body = fake.fault_response(fault)
            entry.status, entry.fault = status, fault["kind"]
            raw = [(k.encode(), v.encode()) for k, v in resp_headers]
            raw.append((b"content-length", str(len(body)).encode()))
            await send({"type": "http.response.start", "status": status, "headers": raw})
            await send({"type": "http.response.body", "body": body})
            return
        stream = fake.is_stream(scope["path"])
        cut = not stream and faults.take_cut()
        bad = not stream and not cut and faults.take_malformed()
        if cut:
            entry.fault = "cut"
        elif bad:
            entry.fault = "malformed"
        held: list[dict] = []

        async def wrapped(message: dict) -> None:
            if message["type"] == "http.response.start":
                entry.status = message["status"]
            if not (cut or bad):
                await send(message)
                return
            held.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                start = held[0]
                body = b"".join(m.get("body", b"") for m in held[1:])
                half = body[: len(body) // 2]
                if bad:
                    hdrs = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
                    hdrs.append((b"content-length", str(len(half)).encode()))
                    await send({**start, "headers": hdrs})
                    await send({"type": "http.response.body", "body": half})
                    return
                await send(start)
                await send({"type": "http.response.body", "body": half, "more_body": True})
                raise CutConnection(scope["path"])

        await self.app(scope, receive, wrapped)
