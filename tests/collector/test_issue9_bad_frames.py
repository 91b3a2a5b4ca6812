"""Regression, issue #9 item 5: one malformed frame stopped a source for good.

Bug: a Jetstream record with a facet `index` that is not an object, a non-string `$type` or a
huge integer `createdAt` raised AttributeError or OverflowError, which escaped `parse_frame`: the
source restarted from its saved cursor, received the same frame and crashed again, forever; a
replay of a recording holding such a frame exited with a traceback on the same line every time.
Fix: the source contract's `@parser` (collector/sources/base.py) turns any exception while
parsing one payload into a ParseError, kept as one counted malformed record; the parsers check
the shapes they rely on, so a bad field spoils at most its own post (a post with a bad facet
keeps its text). Reproduction: the frames below, interleaved with good posts, through
`collector replay` and through the live collector fed by the fake Jetstream.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys

from core.archive import open_archive
from tests.collector.live_helpers import count, run_until, sample_event
from tests.fakes.jetstream import JetstreamFake, now_us

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]
EVENT, DID, TAG = "northwind-2026", "did:plc:badframes", "northwind26"
IMAGE = {"$type": "blob", "ref": {"$link": "bafkreibadframesimage"}, "mimeType": "image/jpeg",
         "size": 1}  # fmt: skip


def record(text: str = f"a post #{TAG}", **fields) -> dict:
    return {"$type": "app.bsky.feed.post", "text": text, "createdAt": "2026-10-24T09:00:00Z",
            "langs": ["en"], **fields}  # fmt: skip


def frame(rkey: str, rec) -> dict:
    commit = {"rev": "3rev", "operation": "create", "collection": "app.bsky.feed.post",
              "rkey": rkey, "cid": "bafyreibadframes", "record": rec}  # fmt: skip
    return {"did": DID, "time_us": 0, "kind": "commit", "commit": commit}


def uri(rkey: str) -> str:
    return f"at://{DID}/app.bsky.feed.post/{rkey}"


# a bad field spoils only itself: these posts are archived, with their text
KEPT = {
    "3kfacetindex": record(
        facets=[
            {
                "index": [0, 5],
                "features": [
                    {"$type": "app.bsky.richtext.facet#link", "uri": "https://x.example/"}
                ],
            }
        ]
    ),
    "3kfacettype": record(
        facets=[
            {
                "index": {"byteStart": 0, "byteEnd": 1},
                "features": [{"$type": 7, "uri": "https://x.example/"}],
            }
        ]
    ),
    "3kaspect": record(
        embed={
            "$type": "app.bsky.embed.images",
            "images": [{"alt": "a photo", "image": IMAGE, "aspectRatio": [4, 3]}],
        }
    ),
    "3kimages": record(embed={"$type": "app.bsky.embed.images", "images": "many"}),
    "3klangs": record(langs="en", reply=[], tags="northwind26"),
    "3kcontrol": record(text=f"hi\u0007 \u202egnp.exe\u202c \ud800 #{TAG}"),
}
# the post itself is broken: one malformed record each
SPOILED = {
    "3khugetime": record(createdAt=10**30),
    "3kbadtime": record(createdAt="2026-99-99T99:99:99Z"),
    "3knorecord": "not an object",
    "3kdeep": record(embed=json.loads("[" * 600 + "]" * 600)),
}
GOOD = [f"3kgood{k:04d}" for k in range(6)]


def frames() -> list[dict]:
    """Good posts between the bad ones, in a fixed order."""
    bad = [frame(rkey, rec) for rkey, rec in [*KEPT.items(), *SPOILED.items()]]
    good = [frame(rkey, record(f"good {rkey} #{TAG}")) for rkey in GOOD]
    out = []
    for k, one in enumerate(bad):
        out += [good[k % len(good)], one] if k < len(good) else [one]
    return out


def archived(db) -> dict[str, str]:
    rows = db.execute("SELECT uri, data FROM items WHERE event = ?", [EVENT]).fetchall()
    return {uri: json.loads(data)["text"] for uri, data in rows}


def check_archive(db_path) -> list[str]:
    db = open_archive(db_path)
    try:
        items = archived(db)
        malformed = [r[0] for r in db.execute("SELECT identity FROM malformed")]
    finally:
        db.close()
    assert set(items) == {uri(r) for r in [*GOOD, *KEPT]}
    assert items[uri("3kfacetindex")] == f"a post #{TAG}"  # the bad facet: no link, same text
    assert items[uri("3kcontrol")] == f"hi gnp.exe \ufffd #{TAG}"  # cleaned, not dropped
    return malformed


def test_a_replay_goes_past_every_bad_frame(tmp_path, redis_url):
    lines = [json.dumps({"format": "afa-recording/1", "event": EVENT})]
    for k, one in enumerate(frames()):
        at = f"2026-10-24T09:{k // 60:02d}:{k % 60:02d}Z"
        lines.append(json.dumps({"at": at, "source": "bluesky", "origin": "jetstream",
                                 "type": "jetstream", "payload": one}))  # fmt: skip
    lines.insert(3, '{"at": "2026-10-24T09:00:01Z", "source": "bluesky", "payl')  # cut line
    path = tmp_path / "bad-frames.jsonl"
    path.write_text("\n".join(lines) + "\n")
    content = tmp_path / "content"
    shutil.copytree(ROOT / "content", content)
    env = {**os.environ, "REDIS_URL": redis_url, "AFA_ARCHIVE_PATH": str(tmp_path / "a.db"),
           "AFA_CONTENT_DIR": str(content)}  # fmt: skip
    result = subprocess.run([sys.executable, "-m", "collector", "replay", EVENT, str(path),
                             "--speed", "0"], env=env, cwd=ROOT, capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    malformed = check_archive(tmp_path / "a.db")
    assert len(malformed) == len(SPOILED) + 1  # every bad post, and the cut line
    assert {f"bluesky:{uri(r)}" for r in SPOILED} - {f"bluesky:{uri('3kdeep')}"} <= set(malformed)
    assert f"{len(SPOILED) + 1} malformed" in result.stderr


def test_the_live_collector_never_restarts_on_them(make_settings, redis_url):
    settings = make_settings(redis_url=redis_url)
    db = settings.archive_path
    expected = len(GOOD) + len(KEPT)
    with JetstreamFake() as js:
        config = {"type": "bluesky", "hashtags": [TAG], "jetstream": js.ws_url + "/subscribe",
                  "watchdog_seconds": 30, "batch_seconds": 0.05}  # fmt: skip
        sent = []

        def done() -> bool:
            if not sent and len(js.hub):  # connected: send them all, as the firehose would
                js.faults.malformed()  # the first one cut in half, as a broken connection would
                for one in [frame("3khalf", record()), *frames()]:
                    one["time_us"] = now_us()
                    js.publish(json.dumps(one), keep_time=True)  # byte for byte (\ud800 too)
                sent.append(True)
            return bool(sent) and db.exists() and count(
                db, "SELECT count(*) FROM items") == expected and count(
                db, "SELECT count(*) FROM malformed") == len(SPOILED) + 1  # fmt: skip

        states, _ = asyncio.run(run_until(settings, [sample_event(config)], done, timeout=60))
        subscribes = js.requests_to("/subscribe")
    state = next(iter(states.values()))
    malformed = check_archive(db)
    assert {uri(r) for r in SPOILED} - {uri("3kdeep")} <= set(malformed)
    assert len(subscribes) == 1  # one connection from start to stop: never restarted
    assert (state.received, state.malformed) == (expected, len(SPOILED) + 1)
    assert state.errors == 0 and state.state == "stopped"
