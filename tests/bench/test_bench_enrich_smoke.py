"""bench_enrich.py still runs on a few authors and posts. Figures are printed, never judged."""

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent / "bench_enrich.py"


def test_bench_enrich_runs(tmp_path):
    out = tmp_path / "enrich.json"
    done = subprocess.run(
        [sys.executable, str(BENCH), "--authors", "5", "--rate", "50", "--slow", "0",
         "--posts", "60", "--out", str(out)],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(out.read_text())
    assert [h["named"] for h in result["hydration"]] == [5]
    assert [(r["source"], r["posts"], r["failed"]) for r in result["refresh"]] == [
        ("bluesky", 60, []), ("mastodon", 60, []), ("flickr", 60, [])]  # fmt: skip
    assert all(r["counted"] == 60 for r in result["refresh"])
