"""bench_collector.py still runs, alone and with parse workers, on a small recording. Figures
are printed, never judged."""

import json
import subprocess
import sys
from pathlib import Path

from tests.collector.conftest import build_recording

BENCH = Path(__file__).resolve().parent / "bench_collector.py"


def test_bench_collector_runs(tmp_path):
    recording = build_recording(tmp_path / "recording.jsonl", 60)
    path = recording.write()
    out = tmp_path / "collector.json"
    done = subprocess.run(
        [sys.executable, str(BENCH), "--recording", str(path), "--workers", "1,2",
         "--latency-posts", "20", "--out", str(out)],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(out.read_text())
    assert [run["workers"] for run in result["runs"]] == [1, 2]
    assert result["runs"][0]["posts"] == result["runs"][1]["posts"] > 100
    for run in result["runs"]:
        assert run["stream_entries"] == recording.changes  # posts, edits and retractions
    assert result["latency"]["samples"] == 20
