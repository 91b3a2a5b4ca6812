"""supervisord's own XML-RPC API, for the dashboard: each process's state, and start/stop/restart.

Blocking calls (xmlrpc.client); the app runs them in a worker thread. Memory is read with psutil,
so it is shown only when the dashboard runs on supervisord's machine.
"""

from __future__ import annotations

import time
import xmlrpc.client
from dataclasses import dataclass
from typing import Any

import psutil
from supervisor.xmlrpc import SupervisorTransport

from core.errors import AfaError

ACTIONS = ("start", "stop", "restart")


@dataclass(frozen=True)
class ProcessRow:
    name: str
    state: str
    pid: int
    uptime: float | None  # seconds, while running
    memory: int | None  # resident bytes of the process and its children
    description: str
    exitstatus: int = 0

    @property
    def running(self) -> bool:
        return self.state == "RUNNING"


def resident_memory(pid: int) -> int | None:
    if pid <= 0:
        return None
    try:
        process = psutil.Process(pid)
        family = [process, *process.children(recursive=True)]
        return sum(p.memory_info().rss for p in family if p.is_running())
    except psutil.Error:
        return None


def process_row(info: dict[str, Any], now: float) -> ProcessRow:
    running = info["statename"] == "RUNNING"
    return ProcessRow(
        name=info["name"],
        state=info["statename"],
        pid=info["pid"],
        uptime=max(now - info["start"], 0.0) if running else None,
        memory=resident_memory(info["pid"]) if running else None,
        description=info.get("description", ""),
        exitstatus=info.get("exitstatus", 0),
    )


class Supervisor:
    """One short-lived XML-RPC connection per call, so threads never share one."""

    def __init__(self, url: str) -> None:
        self.url = url

    def _proxy(self) -> Any:
        transport = SupervisorTransport(None, None, serverurl=self.url)
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor

    def _call(self, name: str, *args: Any) -> Any:
        try:
            return getattr(self._proxy(), name)(*args)
        except xmlrpc.client.Fault as exc:
            raise AfaError(f"supervisord: {exc.faultString}") from exc
        except OSError as exc:
            raise AfaError(f"supervisord is not reachable at {self.url}: {exc}") from exc

    def processes(self) -> list[ProcessRow]:
        now = time.time()
        return [process_row(info, now) for info in self._call("getAllProcessInfo")]

    def names(self) -> set[str]:
        return {info["name"] for info in self._call("getAllProcessInfo")}

    def control(self, name: str, action: str) -> None:
        """start, stop or restart one process, waiting until supervisord says it is done."""
        if action not in ACTIONS:
            raise ValueError(action)
        if name not in self.names():
            raise AfaError(f"no process {name!r}")
        state = self._call("getProcessInfo", name)["statename"]
        stoppable = state in ("RUNNING", "STARTING", "BACKOFF")
        if action in ("stop", "restart") and stoppable:
            self._call("stopProcess", name, True)
        if action in ("start", "restart") and (action == "restart" or not stoppable):
            self._call("startProcess", name, True)
