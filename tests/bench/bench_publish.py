"""`make bench-publish`: publishing the 100,000-post bench site, and Litestream's lag.

On a local SeaweedFS (the tests' S3 server):
  first     the whole site (with its Pagefind index) to an empty bucket
  session   after a one-session rebuild (300 posts in one session)
  rsync     the same two steps to a local folder
  replica   Litestream replicating the archive while posts are written at the collector's
            measured rate (batches of 200, 2,000 posts/s): the lag is the time from the last
            commit until a restore holds every post

    .venv/bin/python tests/bench/bench_publish.py [--posts 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import obstore  # noqa: E402

from admin.replica import replicate_command, restore_command, write_replica_config  # noqa: E402
from sitegen.build import build_site  # noqa: E402
from sitegen.publish import publish_site  # noqa: E402
from tests.bench import bench_site as bench  # noqa: E402
from tests.s3server import SeaweedS3  # noqa: E402


def timed_publish(settings, label: str) -> dict:
    report = publish_site(settings)
    print(f"{label}: {report.summary()}", flush=True)
    return {"seconds": report.seconds, "files": report.uploaded, "bytes": report.bytes,
            "deleted": report.deleted, "unchanged": report.unchanged}  # fmt: skip


def restored(config: Path, archive: Path, into: Path) -> int:
    for path in (into, Path(f"{into}-wal"), Path(f"{into}-shm")):
        path.unlink(missing_ok=True)
    done = subprocess.run(restore_command(config, archive, into), capture_output=True, timeout=300)
    if done.returncode or not into.exists():
        return 0
    with sqlite3.connect(into) as conn:
        return conn.execute("SELECT count(*) FROM items").fetchone()[0]


class Watcher(threading.Thread):
    """Lists the replica every 50 ms and notes when each new object first shows up."""

    def __init__(self, store) -> None:
        super().__init__(daemon=True)
        self.store, self.seen, self.stop = store, {}, threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.05):
            try:
                keys = [m["path"] for batch in obstore.list(self.store) for m in batch]
            except Exception:
                continue
            now = time.perf_counter()
            for key in keys:
                self.seen.setdefault(key, now)


def _last_txid(key: str) -> int:
    """The last TXID an LTX file covers: its name is FIRST-LAST.ltx, in hex."""
    try:
        return int(key.rsplit("/", 1)[-1].removesuffix(".ltx").rsplit("-", 1)[-1], 16)
    except ValueError:
        return -1


def replica_lag(server: SeaweedS3, work: Path, settings, seq: int, rng) -> dict:
    obstore.put(server.store("bench-replica"), "made", b"")
    settings = settings.with_overrides(replica_url="s3://bench-replica/archive",
                                       s3_endpoint=server.endpoint)  # fmt: skip
    config = write_replica_config(settings, work / "var" / "run")
    log = open(work / "litestream.log", "wb")  # noqa: SIM115
    litestream = subprocess.Popen(replicate_command(config), stdout=log, stderr=subprocess.STDOUT)
    probe = work / "probe.db"
    items = bench.make_items(40_000, rng, first=500_000, where=(2, 4))  # made before the clock
    try:
        started = time.perf_counter()
        with sqlite3.connect(settings.archive_path) as conn:
            total = conn.execute("SELECT count(*) FROM items").fetchone()[0]
        while restored(config, settings.archive_path, probe) < total:
            time.sleep(0.5)
        snapshot = time.perf_counter() - started
        print(f"replica: first snapshot of {total} posts in {snapshot:.1f} s", flush=True)
        watcher = Watcher(server.store("bench-replica", "archive"))
        watcher.start()
        written, began = 0, time.perf_counter()
        while time.perf_counter() - began < 20 and written < len(items):
            seq = bench.save(settings.archive_path, items[written : written + 200], seq)
            written += 200
            time.sleep(max(0.0, began + written / 2000 - time.perf_counter()))
        last_commit = time.perf_counter()
        rate = written / (last_commit - began)
        # nothing is written after the last commit, so the LTX file with the highest TXID holds
        # it: wait until the listing has been quiet for 3 s, then take when that file appeared
        while time.perf_counter() - max(watcher.seen.values(), default=0) < 3:
            time.sleep(0.1)
        newest = max((k for k in watcher.seen if k.endswith(".ltx")), key=_last_txid)
        first = min(t for k, t in watcher.seen.items() if _last_txid(k) == _last_txid(newest))
        lag = first - last_commit
        watcher.stop.set()
        during = sorted(t for t in watcher.seen.values() if began < t <= last_commit)
        gaps = [b - a for a, b in zip(during, during[1:], strict=False)] or [0.0]
        complete = restored(config, settings.archive_path, probe) == total + written
        print(f"replica: {written} posts written at {rate:,.0f} posts/s for "
              f"{last_commit - began:.0f} s; a new LTX file reached the bucket every "
              f"{sum(gaps) / len(gaps):.2f} s (longest gap {max(gaps):.2f} s); the last commit "
              f"was in the bucket {lag:.2f} s after it; restore then held every post: {complete}",
              flush=True)  # fmt: skip
        return {"snapshot_s": snapshot, "written": written, "rate": rate, "lag_s": lag,
                "mean_gap_s": sum(gaps) / len(gaps), "max_gap_s": max(gaps),
                "complete": complete}  # fmt: skip
    finally:
        litestream.terminate()
        litestream.wait(30)
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--replica-only", action="store_true", help="Only Litestream's lag.")
    parser.add_argument("--json", type=Path, default=ROOT / "var" / "bench" / "publish.json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="afa-bench-publish-"))
    server = SeaweedS3(work / "weed")
    try:
        bench.write_content(work / "content")
        rng = random.Random(4)
        settings = bench.settings_for(work)
        seq = bench.save(settings.archive_path, bench.make_items(args.posts, rng), 0)
        if args.replica_only:
            server.start()
            os.environ.update(server.env)
            print(json.dumps(replica_lag(server, work, settings, seq, rng)))
            return
        started = time.perf_counter()
        build_site(settings, now=bench.datetime(2026, 7, 1, tzinfo=bench.UTC))
        print(f"built {args.posts} posts with search in {time.perf_counter() - started:.1f} s",
              flush=True)  # fmt: skip
        server.start()
        os.environ.update(server.env)
        s3 = settings.with_overrides(publish_target="s3://bench-site/site",
                                     s3_endpoint=server.endpoint)  # fmt: skip
        rsync = settings.with_overrides(publish_target=f"{work}/www/")
        results = {"posts": args.posts, "s3_first": timed_publish(s3, "s3 first"),
                   "rsync_first": timed_publish(rsync, "rsync first")}  # fmt: skip
        seq = bench.save(settings.archive_path, bench.make_items(300, rng, first=args.posts,
                                                                 where=(1, 2)), seq)  # fmt: skip
        started = time.perf_counter()
        build_site(settings, now=bench.datetime(2026, 7, 1, tzinfo=bench.UTC))
        print(f"one-session rebuild in {time.perf_counter() - started:.2f} s", flush=True)
        results["s3_session"] = timed_publish(s3, "s3 after one session")
        results["rsync_session"] = timed_publish(rsync, "rsync after one session")
        results["replica"] = replica_lag(server, work, settings, seq, rng)
        results["load"] = os.getloadavg()[0]
        print(f"load average {results['load']:.1f} at the end, on {os.cpu_count()} cores")
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
