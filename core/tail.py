"""The live tail in Redis: key names and the stream-entry encoding, shared by collector and live.

One stream per event; entry ID `SEQ-0` where SEQ is the change's number in the event's sequence,
so an SSE `id:` and the browser's Last-Event-ID map straight onto XRANGE/XREAD.
Keys carry a hash tag ({event}) so one event's keys stay on one Redis Cluster slot.
"""

from __future__ import annotations

import json
from typing import Any

# post, edit and retract change what a post shows; pin and unpin are organizers' pinned posts
# (the wall and the live page keep them on top); boost says who boosted a post (the meet-ups
# board counts them as going). Each is a numbered change like any other.
KINDS = ("post", "edit", "retract", "pin", "unpin", "boost")


def stream_key(event: str) -> str:
    return f"afa:{{{event}}}:stream"


def counters_key(event: str) -> str:
    return f"afa:{{{event}}}:counters"


def status_key(event: str) -> str:
    return f"afa:{{{event}}}:sources"


def events_key() -> str:
    return "afa:events"


def entry_id(seq: int) -> str:
    return f"{seq}-0"


def seq_of(entry_id: str | bytes) -> int:
    if isinstance(entry_id, bytes):
        entry_id = entry_id.decode()
    return int(entry_id.split("-", 1)[0])


def encode_entry(kind: str, payload: dict[str, Any]) -> dict[str, str]:
    """Stream entry fields: the kind and the JSON payload, encoded once for every reader."""
    if kind not in KINDS:
        raise ValueError(f"unknown change kind {kind!r}")
    return {"kind": kind, "data": json.dumps(payload, ensure_ascii=False, separators=(",", ":"))}


def decode_entry(fields: dict) -> tuple[str, str]:
    """(kind, raw JSON text) from a stream entry, whether the client decodes responses or not."""
    kind = fields.get("kind", fields.get(b"kind"))
    data = fields.get("data", fields.get(b"data"))
    if isinstance(kind, bytes):
        kind = kind.decode()
    if isinstance(data, bytes):
        data = data.decode()
    return kind, data


def live_payload(kind: str, seq: int, uri: str, item: dict[str, Any] | None) -> dict[str, Any]:
    """What a live page receives for one change. `item` is None for a retract and an unpin."""
    payload: dict[str, Any] = {"seq": seq, "kind": kind, "uri": uri}
    if item is not None:
        payload["item"] = {k: v for k, v in item.items() if k != "extra"}
    return payload
