"""bench_moderation.py still runs, on a small archive. Figures are printed, never judged."""

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent / "bench_moderation.py"


def test_bench_moderation_runs(tmp_path):
    out = tmp_path / "moderation.json"
    done = subprocess.run(
        [sys.executable, str(BENCH), "--posts", "3000", "--trials", "2", "--save-posts", "300",
         "--out", str(out)],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(out.read_text())
    assert set(result["save_posts_per_second"]) == {"none", "gate", "approve_first"}
    assert result["archive_posts"] == 3000 and result["block_past_posts"] == 2
    assert result["hide_to_sse_ms"]["max"] > 0
