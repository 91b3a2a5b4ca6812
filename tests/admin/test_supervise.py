"""`make run` for real: supervisord from the package index runs the embedded Redis, a replaying
collector, the site scheduler, the live sidecar, the static server and the dashboard. A collector
killed with SIGKILL is restarted and resumes with nothing lost; the dashboard restarts a process
through supervisord's API; Ctrl-C leaves nothing behind."""

from __future__ import annotations

import configparser
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
import redis as redis_lib

from admin import supervise as sv
from core.archive import open_archive
from core.events import load_events
from core.redisd import wait_for_port
from core.settings import Settings
from core.tail import seq_of, stream_key
from tests.collector.conftest import Recording, build_recording

from .conftest import (
    EVENT,
    ROOT,
    SECRET,
    Supervised,
    csrf_of,
    dashboard_env,
    sign_in,
    start_supervised,
)

COLLECTOR = f"collector-{EVENT}"


def settings_for(tmp: Path, **overrides) -> Settings:
    base = Settings(content_dir=ROOT / "content", var_dir=tmp / "var",
                    archive_path=tmp / "archive.db", output_dir=tmp / "output")  # fmt: skip
    return base.with_overrides(**overrides)


def test_the_generated_config_restarts_rotates_and_holds_no_secret(tmp_path, monkeypatch):
    monkeypatch.setenv("AFA_ADMIN_SECRET", SECRET)
    settings = settings_for(tmp_path)
    events = load_events(settings.content_dir)
    found = sv.programs(settings, events, embedded_redis=True, static=True)
    redis_url = sv.embedded(settings).url
    run = sv.plan(settings, found, redis_url)
    config = configparser.RawConfigParser()
    config.read_string(sv.render_config(run, ROOT))
    programs = [s.removeprefix("program:") for s in config.sections() if s.startswith("program:")]
    assert programs == ["redis", COLLECTOR, f"scheduler-{EVENT}", "live", "static", "dashboard"]
    for name in programs:
        section = config[f"program:{name}"]
        assert section["stdout_logfile"] == str(run.log_dir / f"{name}.log")
        assert section["stdout_logfile_maxbytes"] == "10MB"
        assert section["stdout_logfile_backups"] == "5"
        assert section["stopasgroup"] == section["killasgroup"] == "true"
    assert config[f"program:{COLLECTOR}"]["autorestart"] == "true"
    assert config[f"program:{COLLECTOR}"]["command"].endswith(f"-m collector run {EVENT}")
    assert config[f"program:scheduler-{EVENT}"]["autorestart"] == "unexpected"
    assert int(config["program:redis"]["priority"]) < int(config["program:live"]["priority"])
    assert config["supervisord"]["environment"] == (f'PYTHONUNBUFFERED="1",REDIS_URL="{redis_url}"')
    assert redis_url == f"unix://{tmp_path.resolve()}/var/run/redis/redis.sock?db=0"
    assert "--port 0 " in config["program:redis"]["command"]  # no TCP: the socket only
    assert config["unix_http_server"]["chmod"] == "0700"
    assert SECRET not in sv.render_config(run, ROOT)


def test_an_external_redis_is_not_started(tmp_path):
    settings = settings_for(tmp_path, redis_url="redis://redis.internal:6379/0")
    found = sv.programs(settings, load_events(settings.content_dir), static=False,
                        dashboard=False)  # fmt: skip
    assert [p.name for p in found] == [COLLECTOR, f"scheduler-{EVENT}", "live"]


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    """Everything under supervisord, the collector replaying ~290 deliveries at 300x (~10 s)."""
    tmp = tmp_path_factory.mktemp("run")
    rec = build_recording(tmp / "recording.jsonl", size=120)
    rec.write()
    supervised = start_supervised(tmp, EVENT, "--replay", str(rec.path), "--speed", "300")
    supervised.recording = rec
    socket = Path(supervised.env["AFA_VAR_DIR"]).resolve() / "run" / "redis" / "redis.sock"
    supervised.redis = redis_lib.Redis(unix_socket_path=str(socket), decode_responses=True)
    yield supervised
    supervised.redis.close()
    supervised.stop()


def archived(system: Supervised) -> list[tuple[str, str]]:
    db = open_archive(system.env["AFA_ARCHIVE_PATH"])
    try:
        return db.execute("SELECT uri, status FROM items WHERE event = ?", [EVENT]).fetchall()
    finally:
        db.close()


def assert_complete(system: Supervised, rec: Recording) -> None:
    rows = archived(system)
    uris = [uri for uri, _ in rows]
    assert len(uris) == len(set(uris))
    assert {u for u, s in rows if s == "visible"} == rec.visible
    assert {u for u, s in rows if s == "deleted"} == rec.deleted
    seqs = [seq_of(i) for i, _ in system.redis.xrange(stream_key(EVENT))]
    assert seqs == list(range(1, rec.changes + 1))


def test_a_killed_collector_is_restarted_and_loses_nothing(system):
    rec: Recording = system.recording
    first = system.wait_state(COLLECTOR, {"RUNNING"})
    deadline = time.monotonic() + 60
    while len(archived(system)) < 30 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert system.info(COLLECTOR)["statename"] == "RUNNING", "replay ended before the kill"
    os.kill(first["pid"], signal.SIGKILL)
    partial = len(archived(system))
    assert 0 < partial < len(rec.visible | rec.deleted)

    deadline = time.monotonic() + 90  # EXITED with -1 first (killed), then restarted
    while time.monotonic() < deadline:
        done = system.info(COLLECTOR)
        if done["statename"] == "EXITED" and done["exitstatus"] == 0:
            break
        time.sleep(0.1)
    assert (done["statename"], done["exitstatus"]) == ("EXITED", 0), done
    assert_complete(system, rec)
    logs = Path(system.env["AFA_VAR_DIR"]) / "run" / "logs"
    supervisord = (logs / "supervisord.log").read_text()
    assert f"exited: {COLLECTOR} (terminated by SIGKILL; not expected)" in supervisord
    assert supervisord.count(f"spawned: '{COLLECTOR}'") == 2
    assert (logs / f"{COLLECTOR}.log").read_text().count(f"replay {EVENT} done") == 1


def test_the_dashboard_shows_and_restarts_processes(system, dashboard_client):
    client = dashboard_client(system.admin_port)
    assert sign_in(client).status_code == 303
    status = client.get("/api/status").json()
    rows = {p["name"]: p for p in status["processes"]}
    assert set(rows) == {"redis", COLLECTOR, f"scheduler-{EVENT}", "live", "static", "dashboard"}
    live = rows["live"]
    assert live["state"] == "RUNNING" and live["uptime"] > 0 and live["memory"] > 10 * 2**20
    assert status["viewers"]["sidecars"] == 1 and status["archive_problem"] is None

    page = client.get("/")
    response = client.post("/processes/live/restart", data={"csrf": csrf_of(page.text)})
    assert response.status_code == 303
    after = system.info("live")
    assert after["statename"] == "RUNNING" and after["pid"] != live["pid"]

    response = client.post("/processes/static/stop", data={"csrf": csrf_of(page.text)})
    assert response.status_code == 303 and system.info("static")["statename"] == "STOPPED"
    response = client.post("/processes/static/start", data={"csrf": csrf_of(page.text)})
    assert response.status_code == 303 and system.info("static")["statename"] == "RUNNING"
    missing = client.post("/processes/nosuch/restart", data={"csrf": csrf_of(page.text)})
    assert missing.status_code == 409
    itself = client.post("/processes/dashboard/restart", data={"csrf": csrf_of(page.text)})
    assert itself.status_code == 409 and "supervisorctl restart dashboard" in itself.text
    text = client.get("/").text
    assert "live" in text and "RUNNING" in text and SECRET not in text


def test_the_live_sidecar_and_site_are_served(system):
    system.wait_state("live", {"RUNNING"})
    wait_for_port(system.live_port, timeout=90)  # RUNNING means up for a second, not listening
    stats = httpx.get(f"http://127.0.0.1:{system.live_port}/stats", timeout=10)
    assert stats.status_code == 200 and "viewers" in stats.json()
    system.wait_state("static", {"RUNNING"})
    wait_for_port(system.site_port, timeout=90)  # it was asked before it listened: refused
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        page = httpx.get(f"http://127.0.0.1:{system.site_port}/{EVENT}/", timeout=10)
        if page.status_code == 200:
            break
        time.sleep(0.2)
    assert page.status_code == 200 and "Northwind" in page.text


def test_ctrl_c_stops_everything_and_leaves_nothing_behind(system):
    children = system.children()
    assert len(children) >= 5  # redis, live, static, scheduler (maybe done), dashboard
    output = system.stop()
    assert system.process.returncode == 0, output
    alive = [p for p in children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert alive == [], output
    run = Path(system.env["AFA_VAR_DIR"]) / "run"
    assert not (run / "supervisor.sock").exists() and not (run / "supervisord.pid").exists()
    assert "Press Ctrl-C to stop everything." in output
    for name in ("redis", "live", "static", "dashboard"):
        assert (run / "logs" / f"{name}.log").exists()
    assert SECRET not in output
    for log in (run / "logs").iterdir():
        assert SECRET not in log.read_text(errors="replace"), log


def test_without_a_secret_the_run_leaves_the_dashboard_out(tmp_path):
    env = dashboard_env(tmp_path)
    del env["AFA_ADMIN_SECRET"]
    command = [sys.executable, "-m", "admin", "supervise", "--config-only", "--no-static"]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "dashboard left out: AFA_ADMIN_SECRET is not set" in result.stderr
    config = Path(result.stdout.strip()).read_text()
    assert "[program:live]" in config and "[program:dashboard]" not in config
    assert "[program:static]" not in config and "[program:redis]" in config
    wrong = subprocess.run([*command[:4], "nosuch"], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=60)  # fmt: skip
    assert wrong.returncode == 1
    assert f"Error: no event 'nosuch' in {ROOT / 'content'}/ (known: {EVENT})" in wrong.stderr


def test_var_is_created_private(tmp_path):
    """var/ holds logs, the supervisor's socket and the dashboard's signed-out sessions: 0700."""
    env = dashboard_env(tmp_path)
    command = [sys.executable, "-m", "admin", "supervise", "--config-only", "--no-static"]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60, preexec_fn=lambda: os.umask(0o022))  # fmt: skip
    assert result.returncode == 0, result.stderr
    var = Path(env["AFA_VAR_DIR"])
    for folder in (var, var / "run", var / "run" / "logs"):
        assert oct(folder.stat().st_mode & 0o777) == "0o700", folder
    assert oct(Path(env["AFA_ARCHIVE_PATH"]).stat().st_mode & 0o777) == "0o600"
