"""The long-running commands as real processes: `schedule` follows the collector's clock and
`serve` serves output/; both stop cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from core.archive import open_archive
from core.redisd import free_port, wait_for_port
from sitegen.rebuild_loop import run_rebuild_loop, session_deadlines

ROOT = Path(__file__).resolve().parents[2]


def set_clock(db, event: str, iso: str) -> None:
    db["cursors"].upsert(
        {
            "event": event,
            "source_key": "replay",
            "cursor": json.dumps({"clock": iso}),
            "updated_at": iso,
        },
        pk=("event", "source_key"),
    )


def wait_for(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_schedule_rebuilds_when_a_session_ends_by_the_collectors_clock(make_settings, sg):
    settings = make_settings()
    db = open_archive(settings.archive_path)
    set_clock(db, sg.EVENT, "2026-10-24T09:00:00.000Z")  # 11:00 local, d1-morning still on
    lines: list[str] = []
    stop = threading.Event()
    worker = threading.Thread(
        target=run_rebuild_loop, args=(settings, sg.EVENT, 0.05, stop, lines.append)
    )
    worker.start()
    try:
        assert wait_for(
            lambda: any(line.startswith("waiting for 4 session end(s)") for line in lines)
        ), lines
        set_clock(db, sg.EVENT, "2026-10-24T10:24:59.000Z")  # 12:24:59: grace not over
        time.sleep(0.3)
        assert not any("ended at" in line for line in lines)
        sg.save_items(db, [sg.make_item(1, datetime(2026, 10, 24, 9, 35, tzinfo=UTC), ["nwmain"])])
        set_clock(db, sg.EVENT, "2026-10-24T10:25:00.000Z")  # 12:15 + 10 minutes grace
        assert wait_for(lambda: any("ended at" in line for line in lines)), lines
    finally:
        stop.set()
        worker.join(10)
        db.close()
    assert not worker.is_alive()
    rebuilt = [line for line in lines if "ended at" in line]
    assert len(rebuilt) == 1 and rebuilt[0].startswith(
        "session d1-morning ended at 12:15; rebuilt 110 pages"
    )
    assert lines[-1] == "stopped"
    page = (settings.output_dir / sg.EVENT / "talks/streams-not-queues/index.html").read_text()
    assert 'data-uri="https://social.example/users/u1/statuses/1"' in page


def test_session_deadlines_are_utc_end_plus_grace(sg):
    from core.events import load_events

    event = load_events(sg.SAMPLE.parent)[0]
    deadlines = [(f"{d:%Y-%m-%d %H:%M}", s.slug) for d, s in session_deadlines(event)]
    assert deadlines == [
        ("2026-10-24 10:25", "d1-morning"),
        ("2026-10-24 15:40", "d1-afternoon"),
        ("2026-10-25 11:40", "d2-morning"),
        ("2026-10-25 16:10", "d2-afternoon"),
    ]


def run_module(args, env_extra, port=None):
    env = {**os.environ, **env_extra, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "sitegen", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_schedule_and_serve_stop_cleanly_on_sigterm(tmp_path):
    env = {
        "AFA_OUTPUT_DIR": str(tmp_path / "out"),
        "AFA_ARCHIVE_PATH": str(tmp_path / "a.db"),
        "AFA_CONTENT_DIR": str(ROOT / "content"),
    }
    port = free_port()
    schedule = run_module(["schedule", "northwind-2026", "--interval", "0.1"], env)
    serve = run_module(["serve", "--port", str(port)], env)
    try:
        wait_for_port(port, 20)
        assert wait_for(lambda: (tmp_path / "out/northwind-2026/live/index.html").exists(), 30)
        response = httpx.get(f"http://127.0.0.1:{port}/northwind-2026/", timeout=10)
        assert response.status_code == 200 and "Northwind Conf 2026" in response.text
        assert httpx.get(f"http://127.0.0.1:{port}/nope/", timeout=10).status_code == 404
    finally:
        for proc in (schedule, serve):
            proc.send_signal(signal.SIGTERM)
        outputs = [proc.communicate(timeout=20)[0] for proc in (schedule, serve)]
    assert schedule.returncode == 0 and serve.returncode == 0, outputs
    assert (
        outputs[0].rstrip().endswith("stopped")
        and "initial build: built 109 pages, 8 static and" in outputs[0]
    )
    assert outputs[1].rstrip().endswith("stopped") and "GET" not in outputs[1]


def test_schedule_unknown_event_is_a_clean_error(tmp_path):
    proc = run_module(
        ["schedule", "nope"],
        {"AFA_CONTENT_DIR": str(ROOT / "content"), "AFA_ARCHIVE_PATH": str(tmp_path / "a.db")},
    )
    output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert output.strip().endswith("Error: no event 'nope' in " + str(ROOT / "content") + "/")
