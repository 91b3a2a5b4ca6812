"""Enrichment figures against the fakes (a real redis-server, a real SQLite file):

    python tests/bench/bench_enrich.py [--authors 200] [--rate 20] [--posts 10000]

Hydration latency: the collector runs a Bluesky source against the fake Jetstream and the fake
AppView; each post is by an author it has not seen, so each needs a getProfiles answer. The
figure runs from the fake publishing the commit to the post's author name being in the Redis
stream (the `post` when the profile came within the bound, else the `edit` after it): p50 and
p99, with the AppView answering at once, and with it answering after `--slow` seconds (longer
than the 2 s bound: the post goes out bare and the edit follows).

Count refresh: `--posts` archived posts per source, and the time `Refresher.refresh` takes to
ask the fake AppView (getPosts, 25 a call), the fake Mastodon (statuses?id[]=, 20 a call) and
the fake Flickr (search with count extras, 500 a page, windows halved past 4,000) about them.
The fakes answer on loopback without rate limits; the real limits set a floor too (printed).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from collector.collect import Options, collect  # noqa: E402
from collector.enrich import Enrichment  # noqa: E402
from collector.enrich.counts import Refresher, archived_posts  # noqa: E402
from collector.pipeline import Pipeline  # noqa: E402
from collector.sources.bluesky import parse_post_view  # noqa: E402
from collector.sources.flickr import parse_photo  # noqa: E402
from collector.sources.mastodon import origin_host, parse_status  # noqa: E402
from core.events import load_events  # noqa: E402
from core.redisconn import connect  # noqa: E402
from core.redisd import EmbeddedRedis  # noqa: E402
from core.settings import Settings  # noqa: E402
from core.tail import decode_entry, stream_key  # noqa: E402
from tests.fakes.appview import AppViewFake  # noqa: E402
from tests.fakes.base import FIXTURES  # noqa: E402
from tests.fakes.flickr import DEFAULT_KEY, FlickrFake  # noqa: E402
from tests.fakes.jetstream import JetstreamFake, post_event  # noqa: E402
from tests.fakes.mastodon import MastodonFake, new_status  # noqa: E402

FAST = Options(status_seconds=1.0, stop_grace=3.0, refresh_counts=False)
REAL_LIMITS = {"bluesky": (3000, 300), "mastodon": (300, 300), "flickr": (3600, 3600)}


def event_with(*sources: dict):
    event = load_events(ROOT / "content")[0]
    return replace(event, sources=tuple(sources))


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(int(len(ordered) * share), len(ordered) - 1)]


# -- hydration latency ------------------------------------------------------------------------


def record(k: int) -> dict:
    return {"$type": "app.bsky.feed.post", "createdAt": datetime.now(UTC).isoformat(),
            "text": f"Talk notes {k} #northwind26", "langs": ["en"],
            "facets": [{"index": {"byteStart": len(f"Talk notes {k} "),
                                  "byteEnd": len(f"Talk notes {k} #northwind26")},
                        "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "northwind26"}]}]}  # fmt: skip


def hydration(workdir: Path, redis_url: str, authors: int, rate: float, delay: float) -> dict:
    settings = Settings(archive_path=workdir / f"hydrate-{delay}.db", redis_url=redis_url,
                        content_dir=ROOT / "content")  # fmt: skip
    with JetstreamFake() as jetstream, AppViewFake() as appview:
        appview.delay = delay
        dids = [f"did:plc:bench{delay:g}x{k:016d}".replace(".", "d") for k in range(authors)]
        for k, did in enumerate(dids):
            appview.add_profile(did, f"author{k}.bsky.social", f"Author {k}")
        event = event_with({"type": "bluesky", "jetstream": f"{jetstream.ws_url}/subscribe",
                            "appview": appview.url, "batch_seconds": 0.05})  # fmt: skip
        redis = connect(redis_url, decode_responses=True)
        redis.delete(stream_key(event.slug))
        sent: dict[str, float] = {}
        named: dict[str, float] = {}
        stop, done = asyncio.Event(), threading.Event()
        loop = asyncio.new_event_loop()
        runner = threading.Thread(target=loop.run_until_complete,
                                  args=(collect(settings, [event], stop, options=FAST),))  # fmt: skip
        runner.start()
        reader = threading.Thread(
            target=_read_names, args=(redis, event.slug, named, done, authors)
        )
        reader.start()
        jetstream.wait_for_clients(1, 60)
        for k, did in enumerate(dids):
            sent[f"at://{did}/app.bsky.feed.post/3bench{k:08d}"] = time.perf_counter()
            jetstream.publish(post_event(did, f"3bench{k:08d}", record(k)))
            time.sleep(1 / rate)
        reader.join(60 + delay * 2)
        done.set()
        loop.call_soon_threadsafe(stop.set)
        runner.join(30)
        redis.close()
        calls = len(appview.requests_to("/xrpc/app.bsky.actor.getProfiles"))
    samples = [named[uri] - at for uri, at in sent.items() if uri in named]
    return {"appview_delay": delay, "posts": authors, "named": len(samples), "calls": calls,
            "p50_ms": statistics.median(samples) * 1e3, "p99_ms": percentile(samples, 0.99) * 1e3,
            "max_ms": max(samples) * 1e3, "load_average": os.getloadavg()}  # fmt: skip


def _read_names(redis, slug: str, named: dict, done: threading.Event, want: int) -> None:
    """When each post's author name first reached the stream (a post, or the edit after it)."""
    last = "0-0"
    while not done.is_set() and len(named) < want:
        for _stream, entries in redis.xread({stream_key(slug): last}, block=500) or []:
            for entry_id, fields in entries:
                last = entry_id
                _kind, data = decode_entry(fields)
                payload = json.loads(data)
                name = (payload.get("item") or {}).get("author", {}).get("name")
                if name and payload["uri"] not in named:
                    named[payload["uri"]] = time.perf_counter()


# -- count refresh ----------------------------------------------------------------------------


def refresh_figures(workdir: Path, redis_url: str, posts: int) -> list[dict]:
    settings = Settings(archive_path=workdir / "refresh.db", redis_url=redis_url,
                        content_dir=ROOT / "content")  # fmt: skip
    figures = []
    with (AppViewFake(rate_limit=(10**9, 300)) as appview,
          MastodonFake(rate_limit=(10**9, 300)) as mastodon, FlickrFake() as flickr):  # fmt: skip
        sources = {
            "bluesky": ({"type": "bluesky", "appview": appview.url}, _bluesky(appview, posts)),
            "mastodon": ({"type": "mastodon", "instance": mastodon.url}, _mastodon(mastodon, posts)),
            "flickr": ({"type": "flickr", "base_url": f"{flickr.url}/services/rest/",
                        "tags": ["northwind26"]}, _flickr(flickr, posts)),
        }  # fmt: skip
        for name, (config, items) in sources.items():
            event = event_with(config)
            pipeline = Pipeline.open(settings)
            for start in range(0, len(items), 2000):
                pipeline.commit(event.slug, f"bench:{name}", items[start : start + 2000], None)
            archived = [p for p in archived_posts(pipeline.db, event.slug) if p.source == name]
            pipeline.close()
            figures.append(asyncio.run(_time_refresh(event, name, archived)))
    return figures


async def _time_refresh(event, name: str, archived: list) -> dict:
    async with httpx.AsyncClient(timeout=60) as http:
        enrichment = Enrichment(http, asyncio.Event())
        refresher = Refresher(http, event, {"AFA_FLICKR_KEY": DEFAULT_KEY}.get,
                              enrichment.appview)  # fmt: skip
        started = time.perf_counter()
        found = await refresher.refresh(archived)
        seconds = time.perf_counter() - started
    limit, window = REAL_LIMITS[name]
    return {"source": name, "posts": len(archived), "seconds": seconds, "calls": found.calls,
            "counted": len(found.changes), "failed": found.failed,
            "real_limit_floor_seconds": max(found.calls - limit, 0) / limit * window,
            "load_average": os.getloadavg()}  # fmt: skip


def _bluesky(appview: AppViewFake, n: int) -> list:
    view = json.loads((FIXTURES / "bluesky-searchPosts.json").read_text())["posts"][0]
    items = []
    for k in range(n):
        one = copy.deepcopy(view)
        one["uri"] = view["uri"].rsplit("/", 1)[0] + f"/3bench{k:08d}"
        one["likeCount"] = k % 97
        appview.publish(one, keep=True)
        items.append(parse_post_view(one))
    return items


def _mastodon(mastodon: MastodonFake, n: int) -> list:
    base = datetime.now(UTC) - timedelta(hours=2)
    items = []
    for k in range(n):
        status = mastodon.publish(new_status(f"<p>post {k} #northwind26</p>", tags=["northwind26"]),
                                  created_at=base + timedelta(milliseconds=k))  # fmt: skip
        mastodon.set_counts(status["id"], favourites=k % 89, reblogs=k % 13)
        items.append(parse_status(status, origin_host(mastodon.url)))
    return items


def _flickr(flickr: FlickrFake, n: int) -> list:
    photo = json.loads((FIXTURES / "flickr-photos-search.json").read_text())["photos"]["photo"][0]
    base = time.time() - 20_000
    items = []
    for k in range(n):
        one = flickr.publish({**photo, "id": str(54_000_000_000 + k), "tags": "northwind26",
                              "count_faves": str(k % 31), "count_comments": "1"},
                             uploaded=base + k)  # fmt: skip
        items.append(parse_photo(one))
    return items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--authors", type=int, default=200, help="posts, each by a new author")
    parser.add_argument("--rate", type=float, default=20.0, help="posts per second")
    parser.add_argument("--slow", type=float, default=3.0,
                        help="a slow AppView's delay (s); 0 leaves that run out")  # fmt: skip
    parser.add_argument("--posts", type=int, default=10_000, help="posts per source to refresh")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench" / "enrich.json")
    args = parser.parse_args()
    with (tempfile.TemporaryDirectory() as tmp,
          EmbeddedRedis(Path(tmp) / "redis", persist=False) as redis):  # fmt: skip
        delays = (0.0, args.slow) if args.slow else (0.0,)
        hydrate = [hydration(Path(tmp), redis.url, args.authors, args.rate, d) for d in delays]
        refresh = refresh_figures(Path(tmp), redis.url, args.posts)
    for h in hydrate:
        how = "answering at once" if not h["appview_delay"] else f"{h['appview_delay']:g} s slow"
        print(f"hydration latency, AppView {how} ({h['named']}/{h['posts']} new authors, "
              f"{h['calls']} getProfiles calls): p50 {h['p50_ms']:.0f} ms, p99 {h['p99_ms']:.0f} ms, "
              f"max {h['max_ms']:.0f} ms (load average {h['load_average'][0]:.1f})")  # fmt: skip
    for r in refresh:
        print(f"count refresh, {r['source']}: {r['posts']:,} posts in {r['seconds']:.1f} s, "
              f"{r['calls']} calls{' (' + '; '.join(r['failed']) + ')' if r['failed'] else ''}; "
              f"at the real rate limit at least {r['real_limit_floor_seconds']:.0f} s "
              f"(load average {r['load_average'][0]:.1f})")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"hydration": hydrate, "refresh": refresh}, indent=2))


if __name__ == "__main__":
    main()
