"""`python -m admin deploy-config`: the files it writes are valid for the engines that read them
(HAProxy checks its own with `haproxy -c`; Debian's haproxy is installed by `make test`), and a
real HAProxy run on the generated config passes a live sidecar's health and streams through."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
import time

import httpx
from click.testing import CliRunner

from admin.cli import cli
from core.redisd import free_port, wait_for_port
from tests.conftest import ROOT

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


def deploy(tmp_path, *args: str, env: dict | None = None):
    """`python -m admin deploy-config --out tmp_path ARGS`, in this process."""
    return CliRunner().invoke(cli, ["deploy-config", "--out", str(tmp_path), *args], env=env)


def test_the_generated_haproxy_config_is_valid_and_units_parse(tmp_path):
    done = deploy(tmp_path / "d", "--sidecars", "4", "--workers", "3")
    assert done.exit_code == 0, done.output
    out = tmp_path / "d"
    check = subprocess.run([HAPROXY, "-c", "-f", str(out / "haproxy.cfg")], capture_output=True,
                           text=True, timeout=60)  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    assert "Configuration file is valid" in check.stdout
    config = (out / "haproxy.cfg").read_text()
    assert config.count("    server live") == 4 and "timeout tunnel 1h" in config
    assert "http-check send meth GET uri /healthz" in config and "balance leastconn" in config
    assert "\n    compression " not in config
    for name in ("afa-collector@", "afa-scheduler@", "afa-live", "afa-dashboard"):
        unit = configparser.RawConfigParser(strict=False)
        unit.read_string((out / "systemd" / f"{name}.service").read_text())
        assert unit["Service"]["EnvironmentFile"] == "/etc/afa/afa.env"
        assert unit["Service"]["ExecStart"].startswith("/srv/afa/.venv/bin/")
    live = (out / "systemd" / "afa-live.service").read_text()
    assert "AFA_LIVE_WORKERS=3" in live
    assert not (out / "litestream.yml").exists()  # no replica configured
    sentinel = (out / "sentinel.conf").read_text()
    assert "sentinel monitor afa " in sentinel and "REDIS_URL=redis+sentinel://" in sentinel
    bad = deploy(tmp_path / "e", "--sidecars", "nohost")
    assert bad.exit_code == 1 and "'nohost' is not HOST:PORT" in bad.output


def test_haproxy_on_the_generated_config_serves_a_real_sidecar(tmp_path, redis_url):
    import os

    live_port, front = free_port(), free_port()
    env = {**os.environ, "REDIS_URL": redis_url, "AFA_LIVE_PORT": str(live_port),
           "AFA_CONTENT_DIR": str(ROOT / "content")}  # fmt: skip
    done = deploy(tmp_path / "d", "--sidecars", f"127.0.0.1:{live_port}", "--bind",
                  f"127.0.0.1:{front}", "--maxconn", "2000", env=env)  # fmt: skip
    assert done.exit_code == 0, done.output
    sidecar = subprocess.Popen([sys.executable, "-m", "live", "serve", "--port", str(live_port)],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    config = tmp_path / "d" / "haproxy.cfg"
    haproxy = subprocess.Popen([HAPROXY, "-db", "-f", str(config)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_for_port(live_port, 90)
        wait_for_port(front, 30)
        base = f"http://127.0.0.1:{front}"
        deadline = time.monotonic() + 60
        while httpx.get(f"{base}/healthz").status_code != 200:  # the health check passes
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert httpx.get(f"{base}/stats").status_code == 404  # private routes stay private
        with httpx.stream("GET", f"{base}/live/northwind-2026/stream", timeout=30) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            assert "content-encoding" not in response.headers
            first = next(response.iter_text())
            assert "\nretry: " in first  # the stream's opening, not held back by the balancer
    finally:
        haproxy.terminate()
        sidecar.terminate()
        haproxy.wait(10)
        sidecar.wait(30)
