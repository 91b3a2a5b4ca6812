"""Moderation costs, against a real redis-server, a real SQLite file and a live sidecar.

    python tests/bench/bench_moderation.py [--posts 100000] [--trials 20] [--save-posts 20000]

- save path: posts/s through save_batch with no moderation, with a gate (100 blocked accounts,
  20 keyword and 5 pattern rules), and with approve-first on;
- decisions on an archive of --posts posts: hide (decision → entry in the Redis stream, and
  decision → retract read by an SSE client of `python -m live serve`), block of an account with
  100 past posts, a keyword rule added and removed (a scan of the whole event), approving 1,000
  held posts.

Figures go to stdout and var/bench/moderation.json (--out). The machine is shared: expect noise.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import redis as redis_lib  # noqa: E402

from collector.publish import publish_after_commit  # noqa: E402
from collector.store import save_batch  # noqa: E402
from core.archive import last_seq, open_archive  # noqa: E402
from core.items import Author, Item  # noqa: E402
from core.moderation.decisions import Moderator  # noqa: E402
from core.redisd import EmbeddedRedis, free_port, wait_for_port  # noqa: E402
from core.tail import stream_key  # noqa: E402

EVENT = "bench"
T0 = datetime(2026, 10, 24, 9, tzinfo=UTC)
WORDS = "the talk was great and the speaker showed slides about databases and streams".split()


def make_posts(n: int, start: int = 0, authors: int = 2_000) -> list[Item]:
    posts = []
    for k in range(start, start + n):
        a = k % authors
        text = " ".join(WORDS[(k + i) % len(WORDS)] for i in range(12)) + f" #{k}"
        posts.append(Item(
            uri=f"https://bench.social/users/u{a}/statuses/{k}", source="mastodon",
            origin="bench.social", local_id=str(k), url="", created_at=T0 + timedelta(seconds=k),
            author=Author(id=f"https://bench.social/users/u{a}", handle=f"@u{a}@bench.social",
                          name=f"User {a}"),
            html=f"<p>{text}</p>", text=text,
        ))  # fmt: skip
    return posts


def save_rate(db, posts: list[Item], batch: int = 100) -> float:
    started = time.perf_counter()
    for i in range(0, len(posts), batch):
        save_batch(db, EVENT, posts[i : i + batch], "bench", None)
    return len(posts) / (time.perf_counter() - started)


def save_path(workdir: Path, n: int) -> dict:
    out = {}
    for name in ("none", "gate", "approve_first"):
        db = open_archive(workdir / f"save-{name}.db")
        mod = Moderator(db, None)
        if name == "gate":
            for a in range(100):
                mod.block(EVENT, f"@blocked{a}@elsewhere.social", who="bench", why="")
            for w in range(20):
                mod.add_rule(EVENT, "keyword", f"spamword{w}", who="bench", why="")
            for p in range(5):
                mod.add_rule(EVENT, "pattern", rf"buy\s+now{p}\b", who="bench", why="")
        if name == "approve_first":
            mod.set_approve_first(EVENT, True, who="bench", why="")
        out[name] = round(save_rate(db, make_posts(n)))
        db.close()
    return out


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def decisions(workdir: Path, n: int, trials: int, redis_url: str) -> dict:
    redis = redis_lib.Redis.from_url(redis_url)
    db = open_archive(workdir / "decisions.db")
    posts = make_posts(n)
    for i in range(0, n, 1_000):
        committed = save_batch(db, EVENT, posts[i : i + 1_000], "bench", None)
        publish_after_commit(redis, db, EVENT, committed, 10_000)
    mod = Moderator(db, redis, tail_length=10_000)
    hide = [timed(lambda p=p: mod.hide(EVENT, p.uri, who="bench", why="")) for p in posts[:trials]]
    sse = hide_to_sse(mod, db, posts[trials : 2 * trials], redis_url)
    block = timed(lambda: mod.block(EVENT, "@u7@bench.social", who="bench", why=""))
    past = len(posts[7::2_000])
    rule_add = timed(lambda: mod.add_rule(EVENT, "keyword", "#4242", who="bench", why=""))
    rule_id = max(r[0] for r in db.execute("SELECT id FROM moderation_rules"))
    rule_remove = timed(lambda: mod.remove_rule(EVENT, rule_id, who="bench", why=""))
    pattern = pattern_rule(mod, redis_url, n)
    mod.set_approve_first(EVENT, True, who="bench", why="")
    save_batch(db, EVENT, make_posts(1_000, start=n), "bench", None)
    approve = timed(lambda: mod.approve(EVENT, None, who="bench"))
    db.close()
    redis.close()
    ms = lambda v: round(v * 1000, 1)  # noqa: E731
    return {
        "archive_posts": n,
        "hide_to_redis_ms": {"median": ms(statistics.median(hide)), "max": ms(max(hide))},
        "hide_to_sse_ms": {"median": ms(statistics.median(sse)), "max": ms(max(sse))},
        "block_ms": ms(block), "block_past_posts": past,
        "rule_add_scan_ms": ms(rule_add), "rule_remove_scan_ms": ms(rule_remove),
        "approve_1000_ms": ms(approve),
        "pattern_rule_to_redis_ms": ms(pattern["to_redis"]),
        "pattern_rule_whole_scan_ms": ms(pattern["whole"]),
        "pattern_rule_retracts": pattern["retracts"],
    }  # fmt: skip


def pattern_rule(mod: Moderator, redis_url: str, n: int) -> dict:
    """A pattern rule (a regular expression: no index narrows it, every post is read) matching
    one post in the live tail and ten older ones: the time until the tail post's retract is in
    the Redis stream, read by a second client, and until the whole decision returns."""
    target = f"/statuses/{n - 5}".encode()
    reader = redis_lib.Redis.from_url(redis_url)
    last = reader.xinfo_stream(stream_key(EVENT))["last-generated-id"]
    seen: list[float] = []

    def watch() -> None:
        nonlocal last
        deadline = time.monotonic() + 30
        while not seen and time.monotonic() < deadline:
            for _key, entries in reader.xread({stream_key(EVENT): last}, block=1_000) or []:
                for entry_id, fields in entries:
                    last = entry_id
                    if b"retract" in fields.values() and any(target in v for v in fields.values()):
                        seen.append(time.perf_counter())

    watcher = threading.Thread(target=watch)
    watcher.start()
    started = time.perf_counter()
    outcome = mod.add_rule(EVENT, "pattern", rf"#(?:{n - 5}|42\d2)\b", who="bench", why="")
    whole = time.perf_counter() - started
    watcher.join()
    reader.close()
    if not seen:
        raise SystemExit("bench: the pattern rule's retract never reached the stream")
    return {"to_redis": seen[0] - started, "whole": whole, "retracts": len(outcome.changes)}


def hide_to_sse(mod: Moderator, db, posts: list[Item], redis_url: str) -> list[float]:
    port = free_port()
    env = {"REDIS_URL": redis_url, "AFA_CONTENT_DIR": str(ROOT / "content"), "PATH": ""}
    live = subprocess.Popen([sys.executable, "-m", "live", "serve", "--port", str(port)], cwd=ROOT,
                            env={**__import__("os").environ, **env}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    times = []
    try:
        wait_for_port(port, 30)
        url = f"http://127.0.0.1:{port}/live/{EVENT}/stream?after={last_seq(db, EVENT)}"
        with httpx.Client(timeout=10) as client, client.stream("GET", url) as response:
            lines = response.iter_lines()
            time.sleep(0.5)
            for post in posts:
                started = time.perf_counter()
                mod.hide(EVENT, post.uri, who="bench", why="")
                for line in lines:
                    if line.startswith("data:") and post.uri in line:
                        break
                times.append(time.perf_counter() - started)
    finally:
        live.terminate()
        live.wait(10)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--save-posts", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench" / "moderation.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        server = EmbeddedRedis(workdir / "redis", persist=False).start()
        try:
            result = {"save_posts_per_second": save_path(workdir, args.save_posts)}
            result.update(decisions(workdir, args.posts, args.trials, server.url))
        finally:
            server.stop()
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
