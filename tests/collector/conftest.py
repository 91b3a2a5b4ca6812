"""Collector fixtures: a recording built from the shared, real payloads (tests/data copies)."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent.parent / "data"
SHARED = (
    Path(__file__).resolve().parents[1] / "fixtures" / "shared"
)  # real payloads, origins listed there
T0 = datetime(2026, 10, 24, 9, 0, tzinfo=UTC)


def load(path: str):
    return json.loads((DATA / path).read_text())


def iso(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Recording:
    """A recording and what the archive must hold once it is replayed."""

    path: Path
    lines: list[dict] = field(default_factory=list)
    visible: set[str] = field(default_factory=set)
    deleted: set[str] = field(default_factory=set)
    changes: int = 0  # posts + edits + retractions: the stream must hold 1..changes

    def add(self, source: str, origin: str, kind: str, payload) -> None:
        at = T0 + timedelta(seconds=10 * len(self.lines))
        self.lines.append({"at": iso(at), "source": source, "origin": origin,
                           "type": kind, "payload": payload})  # fmt: skip

    def write(self, extra_raw: list[tuple[int, str]] = ()) -> Path:
        rows = [json.dumps({"format": "afa-recording/1", "event": "northwind-2026"})]
        rows += [json.dumps(line, ensure_ascii=False) for line in self.lines]
        for index, raw in extra_raw:
            rows.insert(index, raw)
        self.path.write_text("\n".join(rows) + "\n")
        return self.path


def mastodon_status(k: int, host: str = "mastodon.social", local_id: str | None = None) -> dict:
    status = copy.deepcopy(load("mastodon/status_with_link.json")["payload"])
    uri = f"https://{host}/users/user{k}/statuses/{100000 + k}"
    status.update(
        id=local_id or str(100000 + k), uri=uri, url=f"https://{host}/@user{k}/{100000 + k}",
        created_at=iso(T0 + timedelta(seconds=10 * k)), card=None,
        content=f'<p>Post {k} <a href="https://{host}/tags/northwind26" class="mention hashtag" '
        f'rel="tag">#<span>northwind26</span></a></p>',
        tags=[{"name": "northwind26", "url": f"https://{host}/tags/northwind26"}],
    )  # fmt: skip
    status["account"] = {**status["account"], "acct": f"user{k}", "username": f"user{k}",
                         "url": f"https://{host}/@user{k}"}  # fmt: skip
    return status


def jetstream_post(k: int, operation: str = "create", text: str | None = None) -> dict:
    event = copy.deepcopy(load("bluesky/jetstream_images_link_tags.json")["payload"])
    text = text or f"Notes from talk {k} #northwind26"
    start = len(text.encode()) - len(b"#northwind26")
    event["commit"].update(operation=operation, rkey=f"3nw{k:06d}aa", cid=f"bafyrei{k:08d}")
    event["commit"]["record"].update(
        text=text, createdAt=iso(T0 + timedelta(seconds=7 * k)),
        facets=[{"features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "NorthWind26"}],
                 "index": {"byteStart": start, "byteEnd": start + 12}}],
    )  # fmt: skip
    event["time_us"] = int((T0 + timedelta(seconds=7 * k + 1)).timestamp() * 1_000_000)
    return event


def build_recording(path: Path, size: int = 120) -> Recording:
    """~`size` Mastodon posts (some through two instances, some edited, some deleted), Bluesky
    posts among real Jetstream noise, Flickr photos, and the real fixture statuses."""
    rec = Recording(path)
    for k in range(size):
        status = mastodon_status(k)
        rec.add("mastodon", "mastodon.social", "update", status)
        rec.visible.add(status["uri"])
        rec.changes += 1
        if k % 10 == 3:  # the same post federated to a second instance: a duplicate
            rec.add("mastodon", "fosstodon.org", "update",
                    {**status, "id": f"9{k}", "reblogs_count": 7})  # fmt: skip
        if k % 15 == 4:
            edited = {**status, "content": status["content"] + "<p>edited</p>",
                      "edited_at": iso(T0 + timedelta(hours=1, seconds=k))}  # fmt: skip
            rec.add("mastodon", "mastodon.social", "status.update", edited)
            rec.changes += 1
        if k % 20 == 7:
            rec.add("mastodon", "mastodon.social", "delete", status["id"])
            rec.visible.discard(status["uri"])
            rec.deleted.add(status["uri"])
            rec.changes += 1
    private = {**mastodon_status(size + 1), "visibility": "private"}
    rec.add("mastodon", "mastodon.social", "update", private)  # skipped: not public
    noise = (DATA / "bluesky" / "jetstream_capture_noise.jsonl").read_text().splitlines()
    for k in range(size // 2):
        event = jetstream_post(k)
        rec.add("bluesky", "jetstream", "jetstream", event)
        uri = f"at://{event['did']}/app.bsky.feed.post/{event['commit']['rkey']}"
        rec.visible.add(uri)
        rec.changes += 1
        rec.add("bluesky", "jetstream", "jetstream", json.loads(noise[k % len(noise)]))
        if k % 25 == 5:
            delete = {"did": event["did"], "time_us": event["time_us"] + 5, "kind": "commit",
                      "commit": {"rev": "x", "operation": "delete",
                                 "collection": "app.bsky.feed.post",
                                 "rkey": event["commit"]["rkey"]}}  # fmt: skip
            rec.add("bluesky", "jetstream", "jetstream", delete)
            rec.visible.discard(uri)
            rec.deleted.add(uri)
            rec.changes += 1
    for photo in load("flickr/search_response.json")["photos"]["photo"]:
        rec.add("flickr", "flickr", "photo", photo)
        rec.visible.add(f"https://www.flickr.com/photos/{photo['owner']}/{photo['id']}")
        rec.changes += 1
    rec.add("mastodon", "mastodon.social", "update", {"id": "123", "content": "no uri"})
    return rec


def parse_outcome(source: str, case: dict):
    """What a data file's payload parses to, as JSON: the item dict, a delete, None, or the
    exception. The same function wrote the .expected.json files, which were then read by hand."""
    from collector.normalise import Delete, ProfileHint
    from collector.sources import bluesky, flickr, mastodon
    from core.items import item_to_dict

    handles: dict[str, str] = {}
    try:
        if source == "mastodon":
            result = mastodon.parse_status(case["payload"], case["origin"])
        elif source == "flickr":
            result = flickr.parse_photo(case["payload"])
        elif case["kind"] == "post_view":
            result = bluesky.parse_post_view(case["payload"])
        else:
            result = bluesky.parse_jetstream(case["payload"], set(case["hashtags"]), handles)
    except Exception as exc:  # noqa: BLE001 - the expected file names the exception
        return {"raises": type(exc).__name__, "message": str(exc)}
    if isinstance(result, Delete):
        return {"delete": {"origin": result.origin, "uri": result.uri, "local_id": result.local_id}}
    if isinstance(result, ProfileHint):
        return {"profile_hint": result.author_id, "handles": handles}
    if result is None:
        return {"result": None, "handles": handles}
    return item_to_dict(result)


def data_cases(source: str) -> list[Path]:
    return sorted(
        p
        for p in (DATA / source).glob("*.json")
        if not p.name.endswith(".expected.json") and p.name != "search_response.json"
    )


@pytest.fixture
def make_recording(tmp_path):
    def make(size: int = 120) -> Recording:
        rec = build_recording(tmp_path / "recording.jsonl", size)
        rec.write(extra_raw=[(5, "{not json")])
        return rec

    return make
