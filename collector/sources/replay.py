"""Replay a recording: JSON Lines of source deliveries, each parsed by the same functions the
real sources use.

Format `afa-recording/1`: an optional header line `{"format": "afa-recording/1", "event": ...}`,
then one line per delivery, in the order the sources published them:

    {"at": "<ISO UTC time>", "source": "mastodon", "origin": "<host>",
     "type": "update" | "status.update" | "delete", "payload": <Status> | "<local id>"}
    {"at": ..., "source": "bluesky", "origin": "jetstream", "type": "jetstream", "payload": <event>}
    {"at": ..., "source": "flickr", "origin": "flickr", "type": "photo", "payload": <photo>}
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from core.errors import ParseError
from core.items import Item

from .. import jsontext
from ..normalise import Delete, parse_source_time
from . import bluesky, flickr, mastodon
from .base import parser

FORMAT = "afa-recording/1"


class Line(NamedTuple):
    number: int  # 1-based line number in the file: the replay cursor
    text: str


@dataclass
class Delivery:
    """One parsed line: when the source published it, and what it changes (maybe nothing)."""

    number: int
    at: datetime
    source: str
    changes: list[Item | Delete] = field(default_factory=list)


def read_lines(path: Path, after: int = 0) -> Iterator[Line]:
    """Every non-blank line after line number `after`."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, text in enumerate(f, start=1):
            if number > after and not text.isspace():  # as text.strip(), without a copy
                yield Line(number, text)


def is_header(data: dict) -> bool:
    return isinstance(data, dict) and "format" in data and "payload" not in data


def load_line(line: Line) -> dict:
    """The line's JSON object, checked for the envelope fields every delivery has."""
    try:
        data = jsontext.loads(line.text)
    except ValueError as exc:
        raise ParseError(f"invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ParseError("line is not a JSON object")
    if is_header(data):
        if data["format"] != FORMAT:
            raise ParseError(f"unknown recording format {data['format']!r}")
        return data
    for key in ("at", "source", "type"):
        if not isinstance(data.get(key), str):
            raise ParseError(f"missing {key!r}")
    return data


def line_time(data: dict) -> datetime:
    return parse_source_time(data.get("at"), "at")


@parser  # a payload's surprise is this line's malformed record, never the replay's end
def parse_delivery(
    data: dict, number: int, hashtags: set[str], handles: dict[str, str]
) -> Delivery:
    """Parse one delivery's payload. Raises ParseError when the payload is malformed, whatever
    broke in it (see collector.sources.base.parser), SkipItem when it is deliberately not
    archived."""
    delivery = Delivery(number, line_time(data), data["source"])
    change = _parse_payload(data, hashtags, handles)
    if change is not None:
        delivery.changes.append(change)
    return delivery


def _parse_payload(data: dict, hashtags: set[str], handles: dict[str, str]):
    source, kind, payload = data["source"], data["type"], data.get("payload")
    origin = str(data.get("origin") or source)
    if source == "mastodon":
        if isinstance(payload, dict) and kind in ("update", "status.update"):
            return mastodon.parse_status(payload, origin)  # as parse_stream_event, already loaded
        text = payload if isinstance(payload, str) else json.dumps(payload)
        return mastodon.parse_stream_event(kind, text, origin).change
    if source == "bluesky" and kind == "jetstream":
        return bluesky.parse_jetstream(payload, hashtags, handles)
    if source == "flickr" and kind == "photo":
        return flickr.parse_photo(payload)
    raise ParseError(f"unknown delivery {source}/{kind}")


def identity(data: dict | None, number: int) -> str:
    """The best name for a delivery in a log line: its post's identity, else its line number."""
    payload = (data or {}).get("payload")
    if isinstance(payload, dict):
        if isinstance(payload.get("uri"), str):
            return payload["uri"]
        commit = payload.get("commit")
        if isinstance(commit, dict) and payload.get("did") and commit.get("rkey"):
            return f"at://{payload['did']}/{commit.get('collection')}/{commit['rkey']}"
        if payload.get("id") is not None:
            return str(payload["id"])
    if isinstance(payload, str) and payload:
        return payload
    return f"line {number}"
