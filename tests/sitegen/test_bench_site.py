"""The site benchmark still runs: a small event through every step (full, floor, one session,
no change), its figures printed and written as JSON. Speed is measured by `make bench-site`,
never asserted here."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_site_runs_every_step(tmp_path):
    out = tmp_path / "site.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "tests/bench/bench_site.py"), "--posts", "400",
         "--keep", str(tmp_path / "work"), "--json", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for line in (
        "full build:",
        "floor (plain loop):",
        "one-session rebuild:",
        "no-change rebuild:",
        "search, a session's update:",
        "| one-session rebuild |",
    ):
        assert line in done.stdout, done.stdout
    figures = json.loads(out.read_text())
    assert figures["posts"] == 400 and set(figures["met"]) == {
        "ratio",
        "session",
        "nochange",
        "rss_mb",
        "search",
    }
    assert figures["search"]["posts"] > 0 and figures["search"]["files"] > 0
    assert figures["session"]["rendered"] > 0 and figures["session"]["written"] > 0
    assert len(figures["session"]["runs"]) == 3  # the figure is the median of three sessions
    # (the median session may be an earlier one: a later session can add an archive page)
    assert figures["nochange"]["pages"] >= figures["session"]["pages"] > figures["full"]["pages"]
