"""Recordings: JSON Lines of source deliveries, each parsed by the same functions the real
sources use. `collector replay` reads them; `collector run --record FILE` writes them (Recorder).

Format `afa-recording/1`: an optional header line `{"format": "afa-recording/1", "event": ...}`,
then one line per delivery, in the order the sources published them:

    {"at": "<ISO UTC time>", "source": "mastodon", "origin": "<host>",
     "type": "update" | "status.update" | "delete", "payload": <Status> | "<local id>"}
    {"at": ..., "source": "bluesky", "origin": "jetstream", "type": "jetstream", "payload": <event>}
    {"at": ..., "source": "flickr", "origin": "flickr", "type": "photo", "payload": <photo>}
    {"at": ..., "source": "bluesky", "origin": "appview", "type": "postView", "payload": <postView>}
    {"at": ..., "source": "feed", "origin": "<feed url>", "type": "document",
     "payload": {"body_base64": "<the bytes as sent>", "content_type": "..."}} (or "body": text)

Enrichment answers are deliveries too (collector/enrich/answers.py), each with the `request`
that asked for it, so a replay knows what an answer left out:

    {... "source": "bluesky", "origin": "appview", "type": "getProfiles",
     "request": {"actors": [did, ...]}, "payload": {"profiles": [<profileViewDetailed>]}}
    {... "source": "bluesky", "origin": "appview", "type": "getPosts",
     "request": {"uris": [...]}, "payload": {"posts": [<postView>]}}
    {... "source": "mastodon", "origin": "<host>", "type": "statuses",
     "request": {"ids": [...]}, "payload": [<Status>]}
    {... "source": "flickr", "origin": "flickr", "type": "photos.getInfo",
     "request": {"photo_id": "..."}, "payload": <getInfo answer, or its stat:fail>}
    {... "source": "flickr", "origin": "flickr", "type": "photos.search", "payload": <page>}
    {... "source": "collector", "origin": "refresh", "type": "refreshed",
     "payload": {"scope": "<session slug or event>", "posts": N}}
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from core.errors import ParseError
from core.items import Item

from .. import jsontext
from ..enrich import answers
from ..normalise import Change, Delete, Refreshed, parse_source_time
from . import bluesky, feeds, flickr, mastodon
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
    if (source := data["source"], data["type"]) in ANSWERS:
        delivery.changes += ANSWERS[source, data["type"]](data, delivery.at)
        return delivery
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
    if source == "bluesky" and kind == "postView":
        return bluesky.parse_post_view(payload, hashtags)
    if source == "flickr" and kind == "photo":
        return flickr.parse_photo(payload)
    raise ParseError(f"unknown delivery {source}/{kind}")


def _request(data: dict, name: str) -> Any:
    request = data.get("request")
    return request.get(name) if isinstance(request, dict) else None


def _document(data: dict, at: datetime) -> list[Change]:
    payload = data.get("payload")
    payload = payload if isinstance(payload, dict) else {}
    if isinstance(payload.get("body_base64"), str):
        body = base64.b64decode(payload["body_base64"], validate=True)
    elif isinstance(payload.get("body"), str):
        body = payload["body"].encode("utf-8")
    else:
        raise ParseError("feed document without a body")
    items, _bad, _bozo = feeds.read_feed(
        body, str(data.get("origin")), at, str(payload.get("content_type") or "application/xml")
    )
    return list(items)


def _refreshed(data: dict, at: datetime) -> list[Change]:
    payload = data.get("payload")
    if not isinstance(payload, dict) or not isinstance(payload.get("scope"), str):
        raise ParseError("refreshed without a scope")
    posts = payload.get("posts")
    return [Refreshed(payload["scope"], at, posts if isinstance(posts, int) else 0)]


ANSWERS = {
    ("bluesky", "getProfiles"): lambda d, _at: answers.profile_updates(d.get("payload")),
    ("bluesky", "getPosts"): lambda d, _at: answers.post_counts(
        d.get("payload"), _request(d, "uris")
    ),
    ("mastodon", "statuses"): lambda d, _at: answers.status_counts(
        d.get("payload"), str(d.get("origin")), _request(d, "ids")
    ),
    ("flickr", "photos.getInfo"): lambda d, _at: answers.photo_info(
        d.get("payload"), str(_request(d, "photo_id"))
    ),
    ("flickr", "photos.search"): lambda d, _at: answers.photo_counts(d.get("payload")),
    ("feed", "document"): _document,
    ("collector", "refreshed"): _refreshed,
}  # deliveries that may change many posts, or none


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


class Recorder:
    """Appends deliveries to a recording as the collector commits them. A new file starts with
    the header; an existing one (the collector restarted) is continued. Each batch is written
    and flushed before its commit, so a crash may record a delivery twice (the replay's
    identity dedupe takes care of it), never lose one the archive has."""

    def __init__(self, path: Path, event: str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not self.path.exists() or self.path.stat().st_size == 0
        self.file = open(self.path, "a", encoding="utf-8", newline="\n")  # noqa: SIM115
        self.lock = threading.Lock()
        self.lines = 0
        if fresh:
            self.write(
                [{"format": FORMAT, "event": event, "generated_by": "collector run --record"}]
            )

    def write(self, lines: Iterable[dict[str, Any]]) -> None:
        text = "".join(jsontext.dumps(line) + "\n" for line in lines)
        if text:
            with self.lock:
                self.file.write(text)
                self.file.flush()
                self.lines += text.count("\n")

    def close(self) -> None:
        with self.lock:
            self.file.close()
