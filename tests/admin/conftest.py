"""Admin fixtures: a signed-in dashboard client over real HTTP, a whole system under supervisord."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import xmlrpc.client
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest
from supervisor.xmlrpc import SupervisorTransport

from core.redisd import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
EVENT = "northwind-2026"
SECRET = "correct horse battery staple 42"


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def sign_in(client: httpx.Client, secret: str = SECRET) -> httpx.Response:
    """The form, as a browser fills it: GET the page (cookie + token), POST the secret."""
    page = client.get("/signin")
    return client.post("/signin", data={"secret": secret, "csrf": csrf_of(page.text)})


def dashboard_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AFA_") and k != "REDIS_URL"}
    env.update(
        AFA_VAR_DIR=str(tmp / "var"),
        AFA_ARCHIVE_PATH=str(tmp / "archive.db"),
        AFA_OUTPUT_DIR=str(tmp / "output"),
        AFA_CONTENT_DIR=str(ROOT / "content"),
        AFA_ADMIN_SECRET=SECRET,
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@dataclass
class Supervised:
    """`python -m admin supervise` running in its own session (as a terminal would run it)."""

    process: subprocess.Popen
    env: dict[str, str]
    tmp: Path
    admin_port: int
    live_port: int
    site_port: int

    @property
    def rpc(self):
        sock = Path(self.env["AFA_VAR_DIR"]) / "run" / "supervisor.sock"
        transport = SupervisorTransport(None, None, serverurl=f"unix://{sock}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor

    def info(self, name: str) -> dict:
        return self.rpc.getProcessInfo(name)

    def wait_state(self, name: str, states: set[str], timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = self.info(name)
            if info["statename"] in states:
                return info
            time.sleep(0.1)
        raise AssertionError(f"{name} never reached {states}: {self.info(name)}")

    def children(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)

    def stop(self, timeout: float = 60) -> str:
        """Ctrl-C, as a terminal sends it to the foreground process group."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
        try:
            output, _ = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            output, _ = self.process.communicate()
        return output


def start_supervised(tmp: Path, *args: str, **extra_env: str) -> Supervised:
    admin_port, live_port, site_port = free_port(), free_port(), free_port()
    env = dashboard_env(
        tmp, AFA_ADMIN_PORT=str(admin_port), AFA_LIVE_PORT=str(live_port),
        AFA_SITE_PORT=str(site_port), **extra_env,
    )  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "admin", "supervise", *args],
        cwd=ROOT, env=env, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    supervised = Supervised(process, env, tmp, admin_port, live_port, site_port)
    try:
        wait_for_port(admin_port, timeout=60)
    except Exception:
        raise RuntimeError(f"supervise did not start: {supervised.stop()}") from None
    return supervised


@pytest.fixture
def dashboard_client():
    clients: list[httpx.Client] = []

    def make(port: int, **kwargs) -> httpx.Client:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=15, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
