"""Collector throughput and single-post latency, against a real redis-server and SQLite file.

    python tests/bench/bench_collector.py [--posts 100000] [--latency-posts 1000] [--workers 1,2]

Throughput: replay a generated recording of --posts posts at speed 0 (no waiting) through the
whole pipeline (parse → sanitise → archive → publish) and count posts archived and published
per second, once per --workers value (1: all in one process; more: lines parsed ahead in that
many worker processes, one writer). Latency: hand single posts to the pipeline one at a time and time each from the
payload's arrival to its entry being in the Redis stream.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from collector.normalise import event_hashtags  # noqa: E402
from collector.pipeline import Pipeline  # noqa: E402
from collector.replay import Replay  # noqa: E402
from collector.sources import recording  # noqa: E402
from core.events import load_events  # noqa: E402
from core.redisconn import connect  # noqa: E402
from core.redisd import EmbeddedRedis  # noqa: E402
from core.settings import Settings  # noqa: E402
from core.tail import stream_key  # noqa: E402


def make_recording(posts: int) -> Path:
    path = ROOT / "var" / "bench" / f"recording-{posts}.jsonl"
    if not path.exists():
        print(f"generating {posts:,} posts into {path} …", flush=True)
        subprocess.run([sys.executable, str(ROOT / "scripts/make_sample.py"), "--content",
                        str(ROOT / "content/northwind-2026"), "--out", str(path),
                        "--posts", str(posts)], check=True)  # fmt: skip
    return path


def throughput(path: Path, workdir: Path, redis_url: str, workers: int = 1) -> dict:
    settings = Settings(archive_path=workdir / f"throughput-{workers}.db", redis_url=redis_url,
                        content_dir=ROOT / "content", tail_length=10_000)  # fmt: skip
    event = load_events(settings.content_dir)[0]
    client = connect(redis_url)
    client.delete(stream_key(event.slug))
    started, cpu = time.perf_counter(), _cpu()
    stats = Replay(settings, event, path, speed=0, max_gap_minutes=20, workers=workers).run()
    elapsed, cpu = time.perf_counter() - started, _cpu() - cpu
    stream = client.xlen(stream_key(event.slug))
    client.close()
    return {"workers": workers, "posts": stats.posts, "changes": stats.changes, "seconds": elapsed,
            "posts_per_second": stats.posts / elapsed, "stream_entries": stream,
            "cpu_seconds": cpu, "posts_per_cpu_second": stats.posts / cpu,
            "load_average": os.getloadavg()}  # fmt: skip


def _cpu() -> float:
    """CPU seconds of this process and of its finished children (the worker processes)."""
    own, children = os.times(), os.times()
    return own.user + own.system + children.children_user + children.children_system


def latency(path: Path, workdir: Path, redis_url: str, count: int) -> dict:
    event = load_events(ROOT / "content")[0]
    hashtags, handles = event_hashtags(event), {}
    settings = Settings(
        archive_path=workdir / "latency.db", redis_url=redis_url, tail_length=10_000
    )
    pipeline = Pipeline.open(settings)
    pipeline.redis.delete(stream_key(event.slug))
    samples = []
    for line in recording.read_lines(path, 0):
        data = json.loads(line.text)
        if recording.is_header(data) or data.get("type") != "update":
            continue
        started = time.perf_counter()  # the payload has arrived from the source
        delivery = recording.parse_delivery(
            recording.load_line(line), line.number, hashtags, handles
        )
        pipeline.commit(event.slug, "bench", delivery.changes, {"line": line.number})
        samples.append(time.perf_counter() - started)
        if len(samples) >= count:
            break
    pipeline.close()
    samples.sort()
    return {"samples": len(samples), "p50_ms": statistics.median(samples) * 1e3,
            "p99_ms": samples[int(len(samples) * 0.99) - 1] * 1e3, "max_ms": samples[-1] * 1e3}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--latency-posts", type=int, default=1_000)
    parser.add_argument("--workers", default="1,2", help="comma-separated: a run for each")
    parser.add_argument("--recording", type=Path, help="replay this file instead (smoke test)")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench" / "collector.json")
    args = parser.parse_args()
    path = args.recording or make_recording(args.posts)
    with (
        tempfile.TemporaryDirectory() as tmp,
        EmbeddedRedis(Path(tmp) / "redis", persist=False) as redis,
    ):
        runs = [throughput(path, Path(tmp), redis.url, int(n)) for n in args.workers.split(",")]
        lat = latency(path, Path(tmp), redis.url, args.latency_posts)
    for thr in runs:
        how = "one process" if thr["workers"] == 1 else f"{thr['workers']} parse workers + writer"
        print(
            f"collector throughput ({how}): {thr['posts']:,} posts archived and published in "
            f"{thr['seconds']:.1f} s = {thr['posts_per_second']:,.0f} posts/s "
            f"(target 20,000/s: {thr['posts_per_second'] / 20_000:.2f}x)"
        )
        print(
            f"  on {os.cpu_count()} cores, load average {thr['load_average'][0]:.1f} at the end: "
            f"{thr['cpu_seconds']:.1f} s of CPU (workers included) = "
            f"{thr['posts_per_cpu_second']:,.0f} posts per CPU-second (benchmarks on a shared "
            f"machine are noisy)"
        )
    print(
        f"collector latency, source → Redis, one post at a time ({lat['samples']} posts): "
        f"p50 {lat['p50_ms']:.2f} ms, p99 {lat['p99_ms']:.2f} ms, max {lat['max_ms']:.2f} ms"
    )
    args.out.write_text(json.dumps({"throughput": runs[0], "runs": runs, "latency": lat}, indent=2))


if __name__ == "__main__":
    main()
