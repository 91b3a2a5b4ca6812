"""collector/replay.py with `workers`: lines parsed ahead in a process pool give the archive and
the stream byte for byte what one process gives, identity events crossing chunk edges included."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import redis as redis_lib

from collector.replay import Replay, Stopper
from collector.sources import replayed
from core.events import load_events
from core.tail import counters_key, stream_key

from .conftest import build_recording

EVENT = "northwind-2026"
ROOT = Path(__file__).resolve().parents[2]


def identity(did: str, handle: str) -> dict:
    return {"did": did, "time_us": 1, "kind": "identity",
            "identity": {"did": did, "handle": handle, "seq": 1, "time": "2026-10-24T09:00:00Z"}}  # fmt: skip


def replay_into(make_settings, redis_url, path, name: str, workers: int) -> dict:
    settings = make_settings(redis_url=redis_url, archive_path=path.parent / f"{name}.db")
    event = next(e for e in load_events(settings.content_dir) if e.slug == EVENT)
    stats = Replay(settings, event, path, 0, 20.0, Stopper(), workers=workers).run()
    db = sqlite3.connect(settings.archive_path)
    tables = {
        "items": "SELECT uri, data, seq, version, status FROM items ORDER BY id",
        "changes": "SELECT seq, kind, uri, data FROM changes ORDER BY seq",
        "malformed": "SELECT identity, reason, raw FROM malformed ORDER BY id",
        "cursors": "SELECT source_key, cursor FROM cursors",
    }
    found = {name: db.execute(sql).fetchall() for name, sql in tables.items()}
    db.close()
    client = redis_lib.Redis.from_url(redis_url, decode_responses=True)
    found["stream"] = client.xrange(stream_key(EVENT))
    found["counters"] = client.hgetall(counters_key(EVENT))
    client.delete(stream_key(EVENT), counters_key(EVENT))
    client.close()
    found["stats"] = (stats.lines, stats.posts, stats.changes, stats.malformed, stats.skipped)
    return found


def test_a_pool_of_workers_archives_what_one_process_does(
    tmp_path, make_settings, redis_url, monkeypatch
):
    rec = build_recording(tmp_path / "recording.jsonl", 40)
    for k, line in enumerate(list(rec.lines)):  # handles learnt before, between and after posts
        payload = line["payload"]
        if line["source"] == "bluesky" and payload.get("kind") == "commit" and k % 3 == 0:
            rec.lines.insert(k, {**line, "payload": identity(payload["did"], f"h{k}.example")})
    path = rec.write(extra_raw=[(5, "{not json"), (40, '{"at": "yesterday"}')])
    monkeypatch.setattr(replayed, "CHUNK_LINES", 7)  # many chunks, identity events on their edges

    alone = replay_into(make_settings, redis_url, path, "alone", workers=1)
    pooled = replay_into(make_settings, redis_url, path, "pooled", workers=2)

    assert alone["stats"][1] > 50 and alone["stats"][3] == 3 and alone["stats"][4] == 1
    assert any('"handle":"h' in data for _uri, data, *_ in alone["items"])
    for name in alone:
        assert pooled[name] == alone[name], name


WORKER_REPLAY = """
import sys
from pathlib import Path
from collector.sources import replayed
from collector.replay import Replay
from core.events import load_events
from core.settings import Settings

if __name__ == "__main__":
    settings = Settings(archive_path=Path(sys.argv[2]), redis_url=sys.argv[3],
                        content_dir=Path(sys.argv[4]))
    event = next(e for e in load_events(settings.content_dir) if e.slug == "northwind-2026")
    replayed.CHUNK_LINES = 7  # chunks for both workers
    Replay(settings, event, Path(sys.argv[1]), 1.0, 20.0, workers=2).run()  # 10 s between lines
"""


def children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_workers_exit_when_the_replay_is_killed(tmp_path, make_settings, redis_url):
    path = build_recording(tmp_path / "recording.jsonl", 40).write()
    script = tmp_path / "replay_with_workers.py"
    script.write_text(WORKER_REPLAY)
    settings = make_settings()
    child = subprocess.Popen(
        [sys.executable, str(script), str(path), str(tmp_path / "a.db"), redis_url,
         str(settings.content_dir)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while len(workers := children(child.pid)) < 3:  # 2 workers, spawn's resource tracker
            assert child.poll() is None, child.stderr.read().decode()
            assert time.monotonic() < deadline, "the replay started no workers"
            time.sleep(0.1)
    finally:
        child.kill()
        child.wait()
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in workers):
        assert time.monotonic() < deadline, f"workers outlived the replay: {workers}"
        time.sleep(0.1)
