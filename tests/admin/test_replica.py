"""The archive survives its disk: Litestream replicates it to a real S3-compatible server
(SeaweedFS) while `python -m collector run` archives posts from the fake sources; the disk is
lost (collector stopped, Litestream killed, the archive's files deleted); `make restore`
(`python -m admin restore`) brings back every committed post; a collector started on the
restored archive then ends with everything the sources served, nothing doubled."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import obstore
from click.testing import CliRunner

from admin.cli import cli
from admin.replica import replicate_command, restore_command, write_replica_config
from core.archive import open_archive
from core.settings import Settings
from tests.collector.matrix import (
    EVENT,
    CollectorProcess,
    check_stream,
    start_adapters,
    statuses,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[2]


def restored_count(settings: Settings, config: Path, into: Path, env: dict) -> int:
    """Posts in what `litestream restore` gives right now (0 while there is no replica yet)."""
    command = restore_command(config, settings.archive_path, into)
    for path in (into, Path(f"{into}-wal"), Path(f"{into}-shm")):
        path.unlink(missing_ok=True)
    done = subprocess.run(command, capture_output=True, env=env, timeout=60)
    if done.returncode or not into.exists():
        return 0
    conn = sqlite3.connect(into)
    try:
        return conn.execute("SELECT count(*) FROM items WHERE event = ?", [EVENT]).fetchone()[0]
    finally:
        conn.close()


def test_restored_archive_has_every_replicated_post_and_backfill_completes_it(
    tmp_path, redis_url, s3_server
):
    adapters = start_adapters(["mastodon", "feed"])
    try:
        run_and_restore(tmp_path, redis_url, s3_server, adapters)
    finally:
        for adapter in adapters:
            adapter.fake.stop()


def run_and_restore(tmp_path, redis_url, s3_server, adapters) -> None:
    proc = CollectorProcess(tmp_path, redis_url, adapters)
    bucket = "replica-test"
    obstore.put(s3_server.store(bucket), "made-by-the-organizer", b"")  # the bucket exists
    proc.env |= s3_server.env | {"AFA_REPLICA_URL": f"s3://{bucket}/{EVENT}/archive"}
    settings = Settings(archive_path=proc.db_path, var_dir=tmp_path / "var",
                        replica_url=proc.env["AFA_REPLICA_URL"], s3_endpoint=s3_server.endpoint)  # fmt: skip
    config = write_replica_config(settings, tmp_path / "var" / "run")
    assert "secret" not in config.read_text().lower()  # Litestream reads the keys itself
    open_archive(proc.db_path).close()  # as `make run` does before it starts anything
    log = open(tmp_path / "litestream.log", "wb")  # noqa: SIM115
    env = {**os.environ, **s3_server.env}
    litestream = subprocess.Popen(replicate_command(config), env=env, stdout=log,
                                  stderr=subprocess.STDOUT)  # fmt: skip
    try:
        proc.start()
        for k in range(30):
            adapters[k % 2].publish(k)
            time.sleep(0.02)
        expected = {u for a in adapters for u in a.expected}
        wait_until(lambda: set(statuses(proc)) >= expected, 60, "the first posts", proc)
        # the replica has caught up with every committed post
        probe = tmp_path / "probe.db"
        deadline = time.monotonic() + 60
        while restored_count(settings, config, probe, env) < len(expected):
            assert time.monotonic() < deadline, (tmp_path / "litestream.log").read_text()[-3000:]
            time.sleep(0.3)
    finally:
        proc.stop()
        litestream.send_signal(signal.SIGKILL)  # the disk is gone, and Litestream with it
        litestream.wait()
        log.close()
    before = statuses(proc)
    for name in ("archive.db", "archive.db-wal", "archive.db-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    for k in range(30, 40):  # the sources go on while the organizers restore
        adapters[k % 2].publish(k)

    done = subprocess.run([sys.executable, "-m", "admin", "restore"], cwd=ROOT, env=proc.env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith(f"restored {proc.db_path} from s3://{bucket}/")
    assert statuses(proc) == before  # every committed post is back, as it was

    proc.start()
    try:
        everything = {u for a in adapters for u in a.expected}
        assert len(everything) == 40
        wait_until(lambda: set(statuses(proc)) == everything, 60, "the backfill", proc)
    finally:
        proc.stop()
    posts = Counter(r[0] for r in proc.query(
        "SELECT uri FROM changes WHERE event = ? AND kind = 'post'", EVENT))  # fmt: skip
    assert set(posts) == everything and max(posts.values()) == 1  # nothing doubled
    check_stream(proc, redis_url)


def test_make_run_supervises_litestream_between_redis_and_the_collectors(tmp_path, s3_server):
    from tests.admin.conftest import dashboard_env

    env = dashboard_env(tmp_path) | s3_server.env | {"AFA_REPLICA_URL": "s3://bucket/archive"}
    result = CliRunner().invoke(cli, ["supervise", "--config-only", "--no-static"], env=env)
    assert result.exit_code == 0, result.output
    config = Path(result.output.strip().splitlines()[-1])
    text = config.read_text()
    section = text.split("[program:litestream]\n", 1)[1].split("\n\n", 1)[0]
    assert "litestream replicate -no-expand-env -config " in section
    assert f"-config {config.parent / 'litestream.yml'}" in section
    priority = {name: int(text.split(f"[program:{name}]\n", 1)[1].split("priority=")[1].split()[0])
                for name in ("redis", "litestream", "collector-northwind-2026")}  # fmt: skip
    assert priority["redis"] < priority["litestream"] < priority["collector-northwind-2026"]
    replica = (config.parent / "litestream.yml").read_text()
    assert '"endpoint": "' + s3_server.env["AFA_S3_ENDPOINT"] + '"' in replica
    for secret in (s3_server.env["AWS_SECRET_ACCESS_KEY"], s3_server.env["AWS_ACCESS_KEY_ID"]):
        assert secret not in text and secret not in replica
