"""Server-sent events as Mastodon's streaming server writes them: an incremental parser, and
the reader that feeds a response's bytes through it into a queue.

Bytes in, events out. Lines are split on CR, LF or CRLF *before* decoding (a chunk may cut a
multibyte character or a CRLF pair); a line starting with ':' is a comment (Mastodon's ':)' and
':thump' heartbeats); a blank line dispatches the event; repeated data lines are joined with
'\\n'; 'id', 'retry' and unknown fields are ignored. Invalid UTF-8 in an event makes that one
event malformed, never the stream.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import httpx

MAX_LINE = 8 * 1024 * 1024  # a longer line is a broken stream, not a status


class StreamBroken(Exception):
    """The stream cannot be parsed any further; drop the connection and reconnect."""


@dataclass(frozen=True)
class SSEEvent:
    """One dispatched event. `error` is set when its bytes were not valid UTF-8."""

    name: str
    data: str
    error: str | None = None


class SSEParser:
    """Feed it chunks of bytes; get back the events those bytes completed."""

    def __init__(self) -> None:
        self._pending = b""
        self._skip_lf = False  # the last chunk ended on CR: a leading LF belongs to it
        self._first_line = True
        self._name = b""
        self._data: list[bytes] = []
        self._has_data = False
        self.heartbeats = 0

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        if self._skip_lf and chunk[:1] == b"\n":
            chunk = chunk[1:]
        self._skip_lf = False
        events: list[SSEEvent] = []
        buffer = self._pending + chunk
        start = 0
        while True:
            end = _line_end(buffer, start)
            if end < 0:
                break
            event = self._line(buffer[start:end])
            if event is not None:
                events.append(event)
            if buffer[end : end + 1] == b"\r":
                if end + 1 == len(buffer):
                    self._skip_lf = True
                elif buffer[end + 1 : end + 2] == b"\n":
                    end += 1
            start = end + 1
        self._pending = buffer[start:]
        if len(self._pending) > MAX_LINE:
            raise StreamBroken(f"a line longer than {MAX_LINE} bytes")
        return events

    def _line(self, line: bytes) -> SSEEvent | None:
        if self._first_line:
            self._first_line = False
            line = line.removeprefix(b"\xef\xbb\xbf")
        if not line:
            return self._dispatch()
        if line.startswith(b":"):
            self.heartbeats += 1
            return None
        name, _, value = line.partition(b":")
        value = value.removeprefix(b" ")
        if name == b"event":
            self._name = value
        elif name == b"data":
            self._data.append(value)
            self._has_data = True
        return None  # id, retry and unknown fields are ignored

    def _dispatch(self) -> SSEEvent | None:
        name, data, has_data = self._name, self._data, self._has_data
        self._name, self._data, self._has_data = b"", [], False
        if not has_data:
            return None
        raw = b"\n".join(data)
        try:
            return SSEEvent(_decode(name) or "message", raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            text = raw.decode("utf-8", errors="backslashreplace")
            return SSEEvent(_decode(name, "replace") or "message", text, f"invalid UTF-8: {exc}")


def _line_end(buffer: bytes, start: int) -> int:
    lf, cr = buffer.find(b"\n", start), buffer.find(b"\r", start)
    if lf < 0 or cr < 0:
        return max(lf, cr)
    return min(lf, cr)


def _decode(value: bytes, errors: str = "strict") -> str:
    return value.decode("utf-8", errors=errors)


# -- reading a response -------------------------------------------------------------------


@dataclass(frozen=True)
class StreamClosed:
    """Put on the queue last: why the stream ended, and when the reader saw it."""

    reason: str
    at: float = field(default_factory=time.monotonic)


async def read_stream(response: httpx.Response, queue: asyncio.Queue) -> None:
    """Parse the stream into `queue` until it ends; then put why it ended."""
    parser = SSEParser()
    try:
        async for chunk in response.aiter_raw():
            for event in parser.feed(chunk):
                queue.put_nowait(event)
        reason = "the server ended the stream"
    except httpx.ReadTimeout:
        reason = "no byte within the watchdog timeout"
    except (httpx.TransportError, StreamBroken) as exc:
        reason = f"{type(exc).__name__}: {exc}"
    finally:
        await response.aclose()
    queue.put_nowait(StreamClosed(reason))
