"""The venue wall in Chromium, against a real redis-server, SQLite file and live sidecar.

    python tests/bench/bench_wall.py [--posts 30] [--burst 5000] [--out var/bench/wall.json]

- publish to pixels: one post at a time (the wall idle, so none waits for pacing), from just
  before the collector's save_batch + publish to the moment the wall put the post in its DOM
  (a MutationObserver stamps it; page and bench share the machine's clock);
- a burst of --burst posts in batches of 250, shown as fast as they come (?pace=0): the posts
  and elements in the DOM before and after, and the JS heap after a forced GC (DevTools
  protocol: HeapProfiler.collectGarbage, Runtime.getHeapUsage).

Figures go to stdout and --out. The machine is shared: expect noise, and note the load.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

from collector.publish import publish_after_commit  # noqa: E402
from collector.store import save_batch  # noqa: E402
from core.archive import open_archive  # noqa: E402
from core.items import Author, Item  # noqa: E402
from core.redisconn import connect  # noqa: E402
from core.redisd import EmbeddedRedis, free_port, wait_for_port  # noqa: E402
from core.settings import Settings  # noqa: E402
from sitegen.build import build_site  # noqa: E402

EVENT = "northwind-2026"
CONTENT = ROOT / "content"
T0 = datetime(2026, 10, 24, 8, 50, tzinfo=UTC)
STAMP = """
window.__shown = {};
new MutationObserver(function (records) {
  var at = performance.timeOrigin + performance.now();
  records.forEach(function (r) {
    r.addedNodes.forEach(function (n) {
      var card = n.querySelector && n.querySelector("article.card");
      if (card) window.__shown[card.dataset.uri] = at;
    });
  });
}).observe(document.getElementById("wall-columns"), {childList: true, subtree: true});
"""


def post(n: int) -> Item:
    return Item(
        uri=f"https://bench.social/users/u{n % 500}/statuses/{n}", source="mastodon",
        origin="bench.social", local_id=str(n), url="", created_at=T0 + timedelta(seconds=n),
        author=Author(id=f"https://bench.social/users/u{n % 500}", name=f"User {n % 500}"),
        html=f"<p>post {n}: the talk was great</p>", text=f"post {n}", likes=n % 10 == 0,
    )  # fmt: skip


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=30, help="posts timed one at a time")
    parser.add_argument("--burst", type=int, default=5000, help="posts pushed at once")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench" / "wall.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="afa-bench-wall-") as tmp:
        result = run(Path(tmp), args.posts, args.burst)
    result["load_average"] = os.getloadavg()[0]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    p = result["publish_to_pixels_ms"]
    print(f"wall, publish to pixels ({args.posts} posts one at a time): p50 {p['p50']:.0f} ms, "
          f"p95 {p['p95']:.0f} ms, max {p['max']:.0f} ms")  # fmt: skip
    b = result["burst"]
    print(f"wall after {b['posts']:,} posts: {b['cards']} posts, {b['elements']} elements in the "
          f"DOM (before: {b['elements_before']}); JS heap {b['heap_before_mb']:.2f} → "
          f"{b['heap_after_mb']:.2f} MB ({b['heap_growth_mb']:+.2f} MB)")  # fmt: skip
    print(f"  load average {result['load_average']:.1f} on {os.cpu_count()} cores (shared: noisy)")
    return 0


def run(tmp: Path, posts: int, burst: int) -> dict:
    redis_server = EmbeddedRedis(tmp / "redis", persist=False).start()
    out = tmp / "output"
    out.mkdir()
    site = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(out)))
    threading.Thread(target=site.serve_forever, daemon=True).start()
    site_url = f"http://127.0.0.1:{site.server_address[1]}"
    port = free_port()
    env = {**os.environ, "REDIS_URL": redis_server.url, "AFA_CONTENT_DIR": str(CONTENT),
           "AFA_SITE_ORIGIN": site_url}  # fmt: skip
    sidecar = subprocess.Popen([sys.executable, "-m", "live", "serve", "--port", str(port)],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    db = open_archive(tmp / "archive.db")
    redis = connect(redis_server.url)
    try:
        settings = Settings(content_dir=CONTENT, archive_path=tmp / "archive.db", output_dir=out,
                            var_dir=tmp / "var", live_url=f"http://127.0.0.1:{port}",
                            site_origin=site_url)  # fmt: skip
        build_site(settings, now=T0, search=False)
        wait_for_port(port, 90)

        def save(items: list[Item]) -> int:
            committed = save_batch(db, EVENT, items, "bench:wall", None)
            publish_after_commit(redis, db, EVENT, committed, 10_000)
            return committed[-1].seq

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=os.environ.get("AFA_CHROMIUM", "/usr/bin/chromium"),
                args=["--no-sandbox", "--disable-gpu"],
            )
            page = browser.new_page(viewport={"width": 1920, "height": 1080})
            page.goto(f"{site_url}/{EVENT}/wall/?pace=0&idle=3600000")
            page.wait_for_function("document.getElementById('wall-status').dataset.state == 'live'")
            page.evaluate(STAMP)
            delays = []
            for n in range(1, posts + 1):
                started = time.time() * 1000
                save([post(n)])
                uri = post(n).uri
                page.wait_for_function("uri => window.__shown[uri]", arg=uri)
                delays.append(page.evaluate("uri => window.__shown[uri]", uri) - started)
            result = {"publish_to_pixels_ms": {
                "p50": statistics.median(delays), "max": max(delays),
                "p95": sorted(delays)[max(0, round(len(delays) * 0.95) - 1)], "posts": posts}}  # fmt: skip
            result["burst"] = burst_figures(page, save, burst)
            browser.close()
        return result
    finally:
        redis.close()
        db.close()
        sidecar.terminate()
        sidecar.wait(15)
        site.shutdown()
        redis_server.stop()


def burst_figures(page, save, burst: int) -> dict:
    cdp = page.context.new_cdp_session(page)

    def heap() -> int:
        cdp.send("HeapProfiler.collectGarbage")
        return cdp.send("Runtime.getHeapUsage")["usedSize"]

    def seen(seq: int) -> None:
        page.wait_for_function("s => Number(document.getElementById('wall').dataset.seen) >= s",
                               arg=seq, timeout=300_000)  # fmt: skip

    seen(save([post(n) for n in range(100, 300)]))  # warmed up
    elements = "document.getElementsByTagName('*').length"
    before, elements_before = heap(), page.evaluate(elements)
    last = 0
    for first in range(10_000, 10_000 + burst, 250):
        last = save([post(n) for n in range(first, min(first + 250, 10_000 + burst))])
    seen(last)
    after = heap()
    return {"posts": burst, "cards": page.locator("article.card").count(),
            "elements": page.evaluate(elements), "elements_before": elements_before,
            "heap_before_mb": before / 2**20, "heap_after_mb": after / 2**20,
            "heap_growth_mb": (after - before) / 2**20}  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
