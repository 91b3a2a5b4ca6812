"""live/sse.py: the exact bytes on the wire."""

from __future__ import annotations

import json

from core.tail import encode_entry, live_payload
from live.sse import entry_event, reset_event, retry_hint, wire_entry


def fields(seq: int, kind: str = "post") -> dict[str, str]:
    item = None if kind == "retract" else {"uri": "u", "html": "<p>é\u2028</p>"}
    return encode_entry(kind, live_payload(kind, seq, "u", item))


def test_entry_on_the_wire():
    entry = fields(7)
    wire = wire_entry("7-0", entry)
    assert wire.seq == 7 and wire.kind == "post" and wire.data == entry["data"]
    assert wire.wire == f"id: 7\nevent: post\ndata: {entry['data']}\n\n".encode()


def test_data_is_passed_through_not_reencoded():
    entry = fields(3, "edit")
    event = entry_event(b"3-0", {k.encode(): v.encode() for k, v in entry.items()})
    assert event.data == entry["data"]  # byte for byte, é and all
    assert (event.id, event.event) == ("3", "edit")


def test_retract():
    wire = wire_entry("9-0", fields(9, "retract"))
    assert wire.wire == b'id: 9\nevent: retract\ndata: {"seq":9,"kind":"retract","uri":"u"}\n\n'


def test_retry_hint_dispatches_nothing():
    assert retry_hint() == b": a feed apart\nretry: 3000\n\n"


def test_reset():
    wire = reset_event(after=3, first=11, last=20)
    assert wire.startswith(b"id: 10\nevent: reset\ndata: ")
    data = wire.split(b"data: ", 1)[1].strip()
    assert json.loads(data) == {"after": 3, "first": 11, "last": 20}
