"""Two sidecars behind a real HAProxy, 200 clients, one sidecar SIGKILLed mid-stream: every
client resumes on the other by Last-Event-ID and ends with every post exactly once (issue 10).

The clients are the benchmark's load generator (tests/bench/sseload.py: raw sockets, each
client's arrivals in one array, a reconnect after 1 s with Last-Event-ID as EventSource does).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from core.redisd import free_port
from tests.haproxy import HAProxy

from .conftest import EVENT, publish

SSELOAD = Path(__file__).resolve().parents[1] / "bench" / "sseload.py"
CLIENTS, POSTS, KILL_AFTER = 200, 120, 40


class Clients:
    """sseload.py as a child: READY once every client has its 200, DONE once each has every
    post; `stop()` returns its summary."""

    def __init__(self, port: int, out: Path) -> None:
        self.out = out
        command = [sys.executable, str(SSELOAD), "--port", str(port), "--clients", str(CLIENTS),
                   "--posts", str(POSTS), "--path", f"/live/{EVENT}/stream?after=0",
                   "--seq-from", "id", "--out", str(out)]  # fmt: skip
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True)  # fmt: skip

    def wait_for(self, word: str) -> str:
        line = self.process.stdout.readline().strip()
        assert line.startswith(word), f"load generator said {line!r}, not {word}"
        return line

    def stop(self) -> dict:
        if self.process.poll() is None:
            self.process.stdin.write("stop\n")
            self.process.stdin.flush()
        self.process.wait(60)
        return json.loads(self.out.with_suffix(".json").read_text())


def test_a_sidecar_killed_behind_haproxy_loses_no_client_a_post(start_live, redis_client, tmp_path):
    env = {"AFA_LIVE_MAX_PER_ADDRESS": "0"}  # every client arrives from HAProxy's address
    sidecars = [start_live(**env), start_live(**env)]
    ports = [int(live.url.rsplit(":", 1)[1]) for live in sidecars]
    balancer = HAProxy(tmp_path / "haproxy", free_port(), ports).start()
    clients = Clients(balancer.port, tmp_path / "clients")
    try:
        clients.wait_for("READY")
        spread = [live.stats()["viewers"].get(EVENT, 0) for live in sidecars]
        assert sum(spread) == CLIENTS and min(spread) > 0, spread

        def publisher() -> None:
            for seq in range(1, POSTS + 1):
                publish(redis_client, [seq])
                if seq == KILL_AFTER:  # mid-stream: no goodbye to its clients
                    os.kill(sidecars[0].child.process.pid, signal.SIGKILL)
                time.sleep(0.02)

        thread = threading.Thread(target=publisher, daemon=True)
        thread.start()
        thread.join(120)
        clients.wait_for("DONE")
        moved = sidecars[1].wait_stats(lambda s: s["viewers"] == {EVENT: CLIENTS}, timeout=60)
        summary = clients.stop()
    finally:
        if clients.process.poll() is None:
            clients.process.kill()
        balancer.stop()
    assert summary["complete_clients"] == CLIENTS, (summary, balancer.log())
    assert summary["received"] == CLIENTS * POSTS and summary["duplicates"] == 0, summary
    assert summary["reconnects"] >= spread[0], summary  # the killed sidecar's clients moved
    assert moved["viewers"] == {EVENT: CLIENTS}, moved  # all on the survivor
