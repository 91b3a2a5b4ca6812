"""`collector run --record FILE` (Collector(record=…)): every delivery, enrichment answers too,
goes into an afa-recording/1 file that `collector replay` turns into the same archive."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from contextlib import closing

from click.testing import CliRunner

from collector.cli import cli
from collector.collect import collect
from collector.replay import Replay, Stopper
from tests.collector.conftest import jetstream_post
from tests.collector.live_helpers import FAST, count, sample_event
from tests.fakes.appview import AppViewFake
from tests.fakes.flickr import DEFAULT_KEY, FlickrFake
from tests.fakes.jetstream import JetstreamFake
from tests.fakes.mastodon import DEFAULT_TOKEN, MastodonFake, new_status

ANA, SHY = "did:plc:anaaaaaaaaaaaaaaaaaaaaaa", "did:plc:shyyyyyyyyyyyyyyyyyyyyyy"
ENV = {"T_MASTODON": DEFAULT_TOKEN, "T_FLICKR": DEFAULT_KEY}


def sources(jetstream, appview, mastodon, flickr) -> list[dict]:
    return [
        {"type": "bluesky", "jetstream": f"{jetstream.ws_url}/subscribe", "appview": appview.url,
         "batch_seconds": 0.05},
        {"type": "mastodon", "instance": mastodon.url, "hashtags": ["northwind26"],
         "token_env": "T_MASTODON", "poll_seconds": 0.3, "backfill_from": "newest"},
        {"type": "flickr", "tags": ["northwind26"], "key_env": "T_FLICKR", "interval": 0.2,
         "base_url": flickr.url + "/services/rest/", "since": 0},
    ]  # fmt: skip


def post_by(did: str, k: int) -> dict:
    event = jetstream_post(k)
    event["did"] = did
    return event


def rows(path) -> list[tuple]:
    with closing(sqlite3.connect(path)) as db:
        found = db.execute("SELECT uri, status, data FROM items ORDER BY uri").fetchall()
    return [(uri, status, json.loads(data)["author"]) for uri, status, data in found]


def test_a_recorded_run_replays_into_the_same_archive(tmp_path, make_settings, redis_url):
    recording = tmp_path / "live.jsonl"
    with (JetstreamFake() as jetstream, AppViewFake() as appview, MastodonFake() as mastodon,
          FlickrFake() as flickr):  # fmt: skip
        appview.add_profile(ANA, "ana.bsky.social", "Ana")
        appview.add_profile(SHY, "shy.bsky.social", "Shy", labels=["!no-unauthenticated"])
        settings = make_settings(redis_url=redis_url)
        event = sample_event(*sources(jetstream, appview, mastodon, flickr))

        def script() -> None:
            jetstream.wait_for_clients(1, 30)
            for k, did in enumerate((ANA, SHY, ANA)):
                jetstream.publish(post_by(did, k))
            gone = mastodon.publish(new_status("<p>bye #northwind26</p>", tags=["northwind26"]))
            mastodon.publish(new_status("<p>hello #northwind26</p>", tags=["northwind26"]))
            flickr.publish({"id": "53000000001", "owner": "12345678@N00", "secret": "abc",
                            "server": "65535", "farm": 66, "title": "Stage", "ispublic": 1,
                            "isfriend": 0, "isfamily": 0, "description": {"_content": "Talk"},
                            "license": "4", "ownername": "Kim", "tags": "northwind26",
                            "url_l": "https://live.staticflickr.com/65535/1_l.jpg"},
                           uploaded=time.time() - 5)  # fmt: skip
            deadline = time.monotonic() + 30
            while count(settings.archive_path, "SELECT count(*) FROM items") < 6:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            mastodon.delete(gone["id"], stream=False)
            mastodon.publish(new_status("<p>later #northwind26</p>", tags=["northwind26"]))

        def done() -> bool:
            return count(settings.archive_path, "SELECT count(*) FROM items") == 7

        async def run() -> None:
            stop = asyncio.Event()
            task = asyncio.create_task(collect(settings, [event], stop, options=FAST, environ=ENV,
                                               record=recording))  # fmt: skip
            await asyncio.to_thread(script)
            while not done():
                assert not task.done()
                await asyncio.sleep(0.05)
            stop.set()
            await asyncio.wait_for(task, 15)

        asyncio.run(run())
    lines = [json.loads(line) for line in recording.read_text().splitlines()]
    assert lines[0]["format"] == "afa-recording/1" and lines[0]["event"] == event.slug
    kinds = {(line["source"], line["type"]) for line in lines[1:]}
    assert {("bluesky", "jetstream"), ("bluesky", "getProfiles"), ("mastodon", "update"),
            ("flickr", "photo")} <= kinds  # fmt: skip
    answer = lines.index(next(line for line in lines if line.get("type") == "getProfiles"))
    first_post = lines.index(next(line for line in lines if line.get("type") == "jetstream"))
    assert answer < first_post  # in the order the collector used them: the post went out named
    again = make_settings(redis_url=redis_url, archive_path=tmp_path / "replayed.db")
    Replay(again, event, recording, 0, 20.0, Stopper()).run()
    live, replayed = rows(settings.archive_path), rows(again.archive_path)
    assert [(u, s) for u, s, _ in replayed] == [(u, s) for u, s, _ in live]
    assert replayed == live
    assert sorted(a["name"] for _, s, a in live if "bsky" in a.get("url", "")) == [
        "Ana",
        "Ana",
        "Shy",
    ]


def test_record_takes_one_event(tmp_path, redis_url):
    slug = sample_event().slug
    result = CliRunner().invoke(cli, ["run", slug, slug, "--record", str(tmp_path / "r.jsonl")],
                                env={"REDIS_URL": redis_url})  # fmt: skip
    assert result.exit_code == 1
    assert "--record takes exactly one event" in result.output
