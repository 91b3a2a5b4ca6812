"""Issue 9's "done when", on a smaller sample world: replayed and built, the pages, exports and
live payloads name every Bluesky author and hold nothing of the opted-out one, and "most liked"
and "most boosted" are the sample's last count refresh."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
from html import unescape
from pathlib import Path

import pytest

from collector.replay import Replay, Stopper
from core.events import load_events
from core.items import parse_time
from core.tail import decode_entry, stream_key
from sitegen.build import build_site

ROOT = Path(__file__).resolve().parent.parent
COUNT = re.compile(r'<span class="count">(\d+) (likes|boosts)</span>')


@pytest.fixture(scope="module")
def world(tmp_path_factory, request):
    """The sample (1,500 posts), replayed into an archive and Redis, and built without search."""
    tmp = tmp_path_factory.mktemp("world")
    recording = tmp / "sample.jsonl"
    subprocess.run([sys.executable, str(ROOT / "scripts/make_sample.py"), "--content",
                    str(ROOT / "content/northwind-2026"), "--out", str(recording), "--posts", "1500"],
                   check=True, capture_output=True, timeout=120)  # fmt: skip
    lines = [json.loads(line) for line in recording.read_text().splitlines()[1:]]
    return tmp, recording, lines


def last_refresh(lines: list[dict]) -> dict[str, tuple[int, int]]:
    """uri → (boosts, likes) as the final refresh told them."""
    final = next(i for i, line in enumerate(lines) if line["type"] == "refreshed"
                 and line["payload"]["scope"] == "event")  # fmt: skip
    start = max(i for i, line in enumerate(lines[:final]) if line["type"] == "refreshed")
    told = {}
    for line in lines[start + 1 : final]:
        if line["type"] == "getPosts":
            told |= {v["uri"]: (v["repostCount"] + v["quoteCount"], v["likeCount"])
                     for v in line["payload"]["posts"]}  # fmt: skip
        elif line["type"] == "statuses":
            told |= {s["uri"]: (s["reblogs_count"], s["favourites_count"]) for s in line["payload"]}
        elif line["type"] == "photos.search":
            told |= {f"https://www.flickr.com/photos/{p['owner']}/{p['id']}": (0, int(p["count_faves"]))
                     for p in line["payload"]["photos"]["photo"]}  # fmt: skip
    return told


def test_names_opt_outs_and_counts_from_the_sample(world, make_settings, redis_url, redis_client):
    tmp, recording, lines = world
    settings = make_settings(redis_url=redis_url, archive_path=tmp / "a.db",
                             output_dir=tmp / "output")  # fmt: skip
    event = next(e for e in load_events(settings.content_dir) if e.slug == "northwind-2026")
    stats = Replay(settings, event, recording, 0, 20.0, Stopper()).run()
    # Of the four frames that break the lexicon, two cannot be a post (a createdAt past year
    # 9999, a record that is a list): each counted, none fatal. The two with a bad facet spoil
    # only the facet and are archived with their text (the source contract, issue 9).
    assert stats.malformed == 2
    build_site(settings, search=False)
    out = settings.output_dir / event.slug

    profiles = [
        p for line in lines if line["type"] == "getProfiles" for p in line["payload"]["profiles"]
    ]
    opted_out = {p["did"] for p in profiles if p["labels"]}
    assert len(opted_out) == 1
    hidden_handles = {p["handle"] for p in profiles if p["did"] in opted_out}

    for _id, fields in redis_client.xrange(stream_key(event.slug)):  # the live payloads
        kind, data = decode_entry(fields)
        item = json.loads(data).get("item") or {}
        if item.get("source") == "bluesky":
            author = item["author"]
            assert author["handle"] and not author["handle"].startswith("did:"), author
            assert author["name"] and author["avatar"], author
            assert author["id"] not in opted_out

    exported = [json.loads(line) for line in gzip.open(out / "posts.jsonl.gz", "rt")]
    bluesky = [p for p in exported if p["source"] == "bluesky"]
    assert bluesky and all(p["author"]["handle"] and p["author"]["name"] for p in bluesky)
    for page in out.rglob("*"):  # pages, feeds, exports: nothing of the opted-out author
        if page.is_file() and page.suffix in (".html", ".atom", ".jsonl"):
            text = page.read_text("utf-8")
            assert not any(did in text for did in opted_out), page
            assert not any(handle in text for handle in hidden_handles), page

    told = last_refresh(lines)
    final = max(line["at"] for line in lines if line["type"] == "refreshed")
    counted_on = event.local(parse_time(final)).strftime("%d %b, %H:%M")
    checked = 0
    for talk in event.presentations:
        posts = [json.loads(line) for line in (out / "talks" / talk.slug / "posts.jsonl").open()]
        for post in posts:
            if post["uri"] in told:
                assert (post["boosts"], post["likes"]) == told[post["uri"]], post["uri"]
        html = unescape((out / "talks" / talk.slug / "index.html").read_text("utf-8"))
        shown = {kind: int(n) for n, kind in reversed(COUNT.findall(html))}  # first of each list
        for field, kind in (("likes", "likes"), ("boosts", "boosts")):
            best = max((p[field] for p in posts), default=0)
            if best:
                assert shown[kind] == best, (talk.slug, kind)
                assert f"as counted on {counted_on}" in html  # the last refresh, local time
                checked += 1
    assert checked > 20
