"""`python -m collector replay` end to end: a real redis-server, a real archive, subprocesses."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from click.testing import CliRunner

from collector.cli import cli
from collector.replay import Replay, Stopper
from collector.sources.replayed import ReplayClock
from core.archive import load_cursor, open_archive
from core.events import load_events
from core.settings import Settings
from core.tail import seq_of, stream_key

from .conftest import T0, Recording, iso, mastodon_status

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]
EVENT = "northwind-2026"


@pytest.fixture
def replay_env(tmp_path, redis_url):
    content = tmp_path / "content"
    shutil.copytree(ROOT / "content", content)
    return {**os.environ, "REDIS_URL": redis_url, "AFA_ARCHIVE_PATH": str(tmp_path / "a.db"),
            "AFA_CONTENT_DIR": str(content), "PYTHONUNBUFFERED": "1"}  # fmt: skip


def replay_cmd(path, speed):
    return [sys.executable, "-m", "collector", "replay", EVENT, str(path), "--speed", str(speed)]


def run_replay(env, path, speed=0, *more):
    return subprocess.run([*replay_cmd(path, speed), *more], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def archive_state(env):
    db = open_archive(env["AFA_ARCHIVE_PATH"])
    rows = db.execute("SELECT uri, status FROM items WHERE event = ?", [EVENT]).fetchall()
    db.close()
    return rows


def assert_complete(env, rec: Recording, redis_client):
    rows = archive_state(env)
    uris = [uri for uri, _ in rows]
    assert len(uris) == len(set(uris))
    assert {u for u, s in rows if s == "visible"} == rec.visible
    assert {u for u, s in rows if s == "deleted"} == rec.deleted
    seqs = [seq_of(i) for i, _ in redis_client.xrange(stream_key(EVENT))]
    assert seqs == list(range(1, rec.changes + 1))


def test_replay_archives_everything_exactly_once(replay_env, make_recording, redis_client):
    rec = make_recording()
    result = run_replay(replay_env, rec.path)
    assert result.returncode == 0, result.stderr
    assert_complete(replay_env, rec, redis_client)
    assert "Could not process replay:line 6: invalid JSON" in result.stderr
    assert "Could not process mastodon:123: status has no uri or id" in result.stderr
    assert f"{rec.changes} changes" in result.stderr
    again = run_replay(replay_env, rec.path)
    assert again.returncode == 0, again.stderr
    assert "0 lines, 0 posts archived" in again.stderr
    assert_complete(replay_env, rec, redis_client)


def test_replay_with_parse_workers_from_the_command_line(replay_env, make_recording, redis_client):
    rec = make_recording()
    result = run_replay(replay_env, rec.path, 0, "--workers", "2")
    assert result.returncode == 0, result.stderr
    assert_complete(replay_env, rec, redis_client)
    assert "Could not process replay:line 6: invalid JSON" in result.stderr
    refused = run_replay(replay_env, rec.path, 0, "--workers", "0")
    assert refused.returncode == 2 and "--workers" in refused.stderr


def test_sigkill_midway_then_restart_loses_and_duplicates_nothing(
    replay_env, make_recording, redis_client
):
    rec = make_recording()  # ~290 lines 10 s apart: about 5 s of wall time at 600x
    child = subprocess.Popen(replay_cmd(rec.path, 600), env=replay_env, cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while redis_client.xlen(stream_key(EVENT)) < 40 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert child.poll() is None, "replay finished before it could be killed"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
        child.stderr.close()
    partial = len(archive_state(replay_env))
    assert 0 < partial < len(rec.visible | rec.deleted)
    result = run_replay(replay_env, rec.path)
    assert result.returncode == 0, result.stderr
    assert_complete(replay_env, rec, redis_client)


def test_sigterm_finishes_the_batch_and_exits_cleanly(replay_env, make_recording, redis_client):
    rec = make_recording()
    child = subprocess.Popen(replay_cmd(rec.path, 600), env=replay_env, cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 20  # a loaded machine starts the child slowly: wait for work
    while time.monotonic() < deadline and not _replayed_some(replay_env):
        time.sleep(0.1)
    child.send_signal(signal.SIGTERM)
    _, stderr = child.communicate(timeout=20)
    assert child.returncode == 0, stderr
    assert "stopped" in stderr
    db = open_archive(replay_env["AFA_ARCHIVE_PATH"])
    line = load_cursor(db, EVENT, "replay:recording.jsonl")["line"]
    db.close()
    assert 0 < line < len(rec.lines)
    assert run_replay(replay_env, rec.path).returncode == 0
    assert_complete(replay_env, rec, redis_client)


def _replayed_some(env) -> bool:
    import sqlite3

    try:
        conn = sqlite3.connect(env["AFA_ARCHIVE_PATH"], timeout=1)
        try:
            return bool(conn.execute("SELECT count(*) FROM cursors").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return False


def test_replay_reseeds_redis_that_lost_its_data(replay_env, make_recording, redis_client):
    rec = make_recording(size=30)
    assert run_replay(replay_env, rec.path).returncode == 0
    redis_client.flushall()
    assert run_replay(replay_env, rec.path).returncode == 0
    assert_complete(replay_env, rec, redis_client)


def small_recording(tmp_path, gaps_minutes) -> Recording:
    rec = Recording(tmp_path / "small.jsonl")
    at = T0
    for k, gap in enumerate(gaps_minutes):
        at += timedelta(minutes=gap)
        rec.lines.append({"at": iso(at), "source": "mastodon", "origin": "mastodon.social",
                          "type": "update", "payload": mastodon_status(k)})  # fmt: skip
    rec.write()
    return rec


def make_replay(make_settings, redis_url, path, speed, max_gap=20.0) -> Replay:
    settings: Settings = make_settings(redis_url=redis_url)
    event = next(e for e in load_events(settings.content_dir) if e.slug == EVENT)
    return Replay(settings, event, path, speed, max_gap, Stopper())


def test_clock_saves_a_cursor_every_simulated_minute(tmp_path, make_settings, redis_url):
    rec = small_recording(tmp_path, [0, 5])  # 5 simulated minutes = 0.5 s at 600x
    replay = make_replay(make_settings, redis_url, rec.path, 600)
    saved = []
    original = replay.commit
    replay.commit = lambda batch: (saved.append(batch.clock) if batch.clock_only else None,
                                   original(batch))  # fmt: skip
    stats = replay.run()
    assert stats.posts == 2
    assert 3 <= len(saved) <= 5
    assert all(T0 < t < T0 + timedelta(minutes=5) for t in saved)
    db = open_archive(make_settings().archive_path)
    assert load_cursor(db, EVENT, "replay:small.jsonl") == {
        "line": 3,
        "clock": "2026-10-24T09:05:00.000Z",
    }


def test_long_gaps_are_skipped(tmp_path, make_settings, redis_url):
    rec = small_recording(tmp_path, [0, 180, 1])  # a three-hour lull
    started = time.monotonic()
    stats = make_replay(make_settings, redis_url, rec.path, 60, max_gap=20).run()
    assert stats.posts == 3
    assert time.monotonic() - started < 5  # not 3 minutes


def test_replay_clock_maps_recording_time_to_wall_time():
    clock = ReplayClock(T0, speed=60, max_gap=timedelta(minutes=20))
    assert 0.9 < clock.seconds_until(T0 + timedelta(minutes=1)) <= 1.0  # a minute at 60x
    assert clock.seconds_until(T0 - timedelta(minutes=1)) == 0
    assert clock.seconds_until(T0 + timedelta(hours=2)) == 0  # skipped, and the clock jumped
    assert clock.now() >= T0 + timedelta(hours=2)


def test_missing_redis_url_is_a_clear_error(tmp_path, make_recording):
    rec = make_recording(size=5)
    result = CliRunner().invoke(cli, ["replay", EVENT, str(rec.path)],
                                env={"REDIS_URL": "", "AFA_CONTENT_DIR": str(ROOT / "content")})  # fmt: skip
    assert result.exit_code == 1
    assert result.output == (
        "Error: REDIS_URL is not set: point it at a Redis server, e.g. "
        "REDIS_URL=redis://127.0.0.1:6379/0 (`make demo` starts one and sets it for you)\n"
    )


def test_unknown_event_is_a_clear_error(make_recording, redis_url):
    rec = make_recording(size=5)
    result = CliRunner().invoke(cli, ["replay", "nope", str(rec.path)],
                                env={"REDIS_URL": redis_url, "AFA_CONTENT_DIR": str(ROOT / "content")})  # fmt: skip
    assert result.exit_code == 1
    assert result.output == f"Error: no event 'nope' in {ROOT / 'content'}/ (known: {EVENT})\n"


def test_migrate_and_status(tmp_path):
    env = {"AFA_ARCHIVE_PATH": str(tmp_path / "x.db")}
    result = CliRunner().invoke(cli, ["migrate"], env=env)
    assert result.exit_code == 0  # later parts add their own migrations after these
    assert re.search(r"migrations applied: m001_initial, m002_source_state(, m\d+_\w+)*\n$",
                     result.output), result.output  # fmt: skip
    status = CliRunner().invoke(cli, ["status"], env=env)
    assert status.exit_code == 0 and "last seq" in status.output


def test_every_command_has_help():
    for name, command in cli.commands.items():
        assert command.help and command.help.strip(), name
    # the collector's own; moderation adds its commands beside them
    assert {"migrate", "note", "replay", "report", "run", "status"} <= set(cli.commands)


def test_unreachable_redis_is_a_clear_error(make_recording, tmp_path):
    from core.redisd import free_port

    rec = make_recording(size=5)
    url = f"redis://127.0.0.1:{free_port()}/0"
    env = {"REDIS_URL": url, "AFA_CONTENT_DIR": str(ROOT / "content"),
           "AFA_ARCHIVE_PATH": str(tmp_path / "u.db")}  # fmt: skip
    result = CliRunner().invoke(cli, ["replay", EVENT, str(rec.path)], env=env)
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: cannot reach Redis at {url}: ")
