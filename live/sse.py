"""The SSE wire format of the live sidecar, and nothing else.

A stream entry `SEQ-0 {"kind": K, "data": JSON}` goes on the wire as

    id: SEQ
    event: K            (post, edit or retract)
    data: JSON          (the text as the collector stored it, never decoded and re-encoded)

Each entry is encoded once, into a `WireEntry` whose bytes every client of the process shares.
sse-starlette's `ServerSentEvent` does the encoding; the response that carries the bytes is
our own lean ASGI response (`app.LiveResponse`), see fanout.py for why.
A response opens with a `retry:` hint; a cursor older than the retained tail gets a `reset`
event instead of a gap (see `reset_event`). Lines end with "\\n" (SEP), pings included.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sse_starlette import ServerSentEvent

from core.tail import decode_entry, seq_of

SEP = "\n"
RETRY_MS = 3000


@dataclass(frozen=True, slots=True)
class WireEntry:
    """One stream entry, ready to send: its sequence number and its encoded SSE bytes."""

    seq: int
    kind: str
    data: str
    wire: bytes


def entry_event(entry_id: str | bytes, fields: dict[Any, Any]) -> ServerSentEvent:
    """The ServerSentEvent for a stream entry: id=SEQ, event=kind, data=the stored JSON text."""
    kind, data = decode_entry(fields)
    return ServerSentEvent(data=data, event=kind, id=str(seq_of(entry_id)), sep=SEP)


def wire_entry(entry_id: str | bytes, fields: dict[Any, Any]) -> WireEntry:
    """Encode a stream entry once; the result is shared by every client that receives it."""
    event = entry_event(entry_id, fields)
    return WireEntry(int(event.id or 0), event.event or "", event.data, event.encode())


def retry_hint(retry_ms: int = RETRY_MS) -> bytes:
    """The opening block: how long a browser waits before reconnecting. Dispatches no event."""
    return ServerSentEvent(retry=retry_ms, comment="a feed apart", sep=SEP).encode()


def reset_event(after: int, first: int, last: int) -> bytes:
    """`event: reset`: the cursor `after` is older than the retained tail (`first`..`last`), so
    the changes between them cannot be replayed. The page reloads its static page. Its `id` is
    first - 1, so a client that reconnects instead resumes with the oldest change still kept."""
    data = json.dumps({"after": after, "first": first, "last": last}, separators=(",", ":"))
    return ServerSentEvent(data=data, event="reset", id=str(max(first - 1, 0)), sep=SEP).encode()


def ping_event() -> bytes:
    """The heartbeat: a comment line, invisible to EventSource, that keeps proxies from timing out."""
    return ServerSentEvent(comment=f"ping {datetime.now(UTC):%H:%M:%S}", sep=SEP).encode()
