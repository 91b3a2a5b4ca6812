"""The lean ASGI response that carries one client's SSE stream.

sse-starlette's EventSourceResponse runs five or six tasks per connection, a timer per send and
one write per event; with thousands of viewers that was the sidecar's whole cost. Here one task
runs the response and one waits for the disconnect; the body is the opening (retry hint and
catch-up) in one write, then everything pending at each wake-up in one write. Heartbeats and
send timeouts are the reader's job (see fanout.py); the wire format stays in sse.py.
"""

from __future__ import annotations

import asyncio
import time

from starlette.types import Receive, Scope, Send

from .fanout import CatchUp, Fanout, Feed, Stats, Subscriber
from .sse import reset_event, retry_hint

DISCONNECT_WAIT_SECONDS = 1.0


class LiveResponse:
    """A lean ASGI SSE response: the opening (retry hint + catch-up) in one write, then every
    wake-up's pending chunks in one write. One task runs it and one more waits for the
    disconnect; heartbeats and send timeouts are the reader's job (see fanout.py)."""

    headers = [
        (b"content-type", b"text/event-stream; charset=utf-8"),
        (b"cache-control", b"no-cache"),
        (b"x-accel-buffering", b"no"),
    ]

    def __init__(
        self, fanout: Fanout, feed: Feed, subscriber: Subscriber, start: CatchUp, limit: int,
        address: str,
    ) -> None:  # fmt: skip
        self.fanout, self.feed, self.subscriber = fanout, feed, subscriber
        self.start, self.limit, self.address = start, limit, address

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        stats, subscriber = self.fanout.stats, self.subscriber
        stats.connections += 1
        subscriber.task = asyncio.current_task()
        waiter = asyncio.create_task(self._wait_disconnect(receive))
        try:
            try:
                await send({"type": "http.response.start", "status": 200, "headers": self.headers})
                if scope.get("method") != "HEAD":
                    await self._body(send)
            except asyncio.CancelledError:
                if not subscriber.dropped:
                    raise
                asyncio.current_task().uncancel()  # type: ignore[union-attr]
            if subscriber.dropped:
                await reset_connection(send, waiter)
            else:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            waiter.cancel()
            stats.connections -= 1
            self.fanout.leave(self.address)
            self.feed.unsubscribe(subscriber)

    async def _body(self, send: Send) -> None:
        wire, last, more = opening(self.start, self.limit, self.fanout.stats)
        await self._write(send, wire)
        while more:
            chunks = await self.subscriber.next()
            if not chunks:
                return
            parts = []
            for chunk in chunks:
                if chunk.last > last or not chunk.entries:
                    parts.append(chunk.after(last))
                    self.fanout.stats.sent += sum(1 for e in chunk.entries if e.seq > last)
                    last = max(last, chunk.last)
            await self._write(send, parts[0] if len(parts) == 1 else b"".join(parts))

    async def _write(self, send: Send, body: bytes) -> None:
        if not body:
            return
        self.subscriber.sending_since = time.monotonic()
        await send({"type": "http.response.body", "body": body, "more_body": True})
        self.subscriber.sending_since = 0.0

    async def _wait_disconnect(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self.subscriber.close()


async def reset_connection(send: Send, disconnected: asyncio.Task[None]) -> None:
    """End a dropped client's response by resetting its connection, and return once the
    server has seen it go.

    A dropped client is one that stopped reading: its last write may have been cut off
    mid-body, and even the closing empty chunk would wait forever for it to read. ASGI has no
    message that ends a response early (raising would log a traceback, returning logs
    "returned without completing response"), so this reaches the transport that uvicorn's
    `send` is bound to and aborts it. Once uvicorn has processed the loss (our disconnect
    waiter hears `http.disconnect`), it does not count the response as unfinished. With a
    server that has no such transport this does nothing, and the server closes the
    connection itself when the response returns."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    abort = getattr(transport, "abort", None)  # asyncio's or uvloop's transport
    if not callable(abort):
        return
    abort()
    await asyncio.wait({disconnected}, timeout=DISCONNECT_WAIT_SECONDS)


def opening(start: CatchUp, limit: int, stats: Stats) -> tuple[bytes, int, bool]:
    """(the first write, the last seq it carries, whether live entries follow)."""
    if start.reset:
        stats.resets += 1
        return retry_hint() + reset_event(start.after, start.first, start.last), start.after, False
    entries = start.entries[:limit]
    stats.sent += len(entries)
    last = entries[-1].seq if entries else start.after
    wire = b"".join([retry_hint(), *(entry.wire for entry in entries)])
    return wire, last, len(start.entries) <= limit
