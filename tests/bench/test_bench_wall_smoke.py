"""bench_wall.py still runs, on a few posts. Figures are printed, never judged."""

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent / "bench_wall.py"


def test_bench_wall_runs(tmp_path):
    out = tmp_path / "wall.json"
    done = subprocess.run(
        [sys.executable, str(BENCH), "--posts", "3", "--burst", "300", "--out", str(out)],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(out.read_text())
    assert result["publish_to_pixels_ms"]["posts"] == 3
    assert result["burst"]["posts"] == 300 and result["burst"]["cards"] > 0
