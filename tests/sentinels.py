"""A real Redis that fails over: a primary, a replica and three Sentinels, each a redis-server
process (`redis-server --sentinel` for the Sentinels) on a free loopback port.

The servers ask for a password (so the redis+sentinel:// URL's auth is exercised); the Sentinels
mark a primary down after DOWN_AFTER_MS without an answer, and two of three must agree.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis as redis_lib

from core.redisd import find_redis_server, free_port, wait_for_port

SERVICE = "afa"
PASSWORD = "failover-s3cret"
DOWN_AFTER_MS = 1000

SENTINEL_CONF = """\
port {port}
bind 127.0.0.1
dir {dir}
sentinel monitor {service} 127.0.0.1 {primary} 2
sentinel auth-pass {service} {password}
sentinel down-after-milliseconds {service} {down_after}
sentinel failover-timeout {service} 10000
sentinel parallel-syncs {service} 1
"""


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen

    def client(self, **options) -> redis_lib.Redis:
        password = None if self.name.startswith("sentinel") else PASSWORD
        return redis_lib.Redis(port=self.port, password=password, socket_timeout=5, **options)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@dataclass
class SentinelGroup:
    """The servers, started by `start()` and every one stopped by `stop()`."""

    workdir: Path
    servers: dict[str, Server] = field(default_factory=dict)

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://:{PASSWORD}@{hosts}/{SERVICE}/0"

    @property
    def sentinels(self) -> list[Server]:
        return [s for name, s in self.servers.items() if name.startswith("sentinel")]

    def start(self) -> SentinelGroup:
        primary = self._server("primary", [])
        self._server("replica", ["--replicaof", "127.0.0.1", str(primary.port)])
        for n in range(3):
            folder = self._folder(f"sentinel{n}")
            port = free_port()
            conf = folder / "sentinel.conf"  # Sentinel rewrites it: its own file, writable
            conf.write_text(SENTINEL_CONF.format(
                port=port, dir=folder, service=SERVICE, primary=primary.port,
                password=PASSWORD, down_after=DOWN_AFTER_MS,
            ))  # fmt: skip
            self._spawn(f"sentinel{n}", port, [str(conf), "--sentinel"], folder)
        self.wait_ready()
        return self

    def _folder(self, name: str) -> Path:
        folder = self.workdir / name
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _server(self, name: str, extra: list[str]) -> Server:
        folder, port = self._folder(name), free_port()
        args = ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder), "--save", "",
                "--appendonly", "no", "--requirepass", PASSWORD, "--masterauth", PASSWORD,
                *extra]  # fmt: skip
        return self._spawn(name, port, args, folder)

    def _spawn(self, name: str, port: int, args: list[str], folder: Path) -> Server:
        log = open(folder / "server.log", "ab")  # noqa: SIM115 - lives as long as the child
        process = subprocess.Popen([find_redis_server(), *args], stdout=log,
                                   stderr=subprocess.STDOUT)  # fmt: skip
        self.servers[name] = server = Server(name, port, process)
        wait_for_port(port, timeout=30)
        return server

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until every Sentinel knows the other two and sees the replica in sync: only then
        can they agree that the primary is down and promote the replica."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self._ready(s) for s in self.sentinels):
                return
            time.sleep(0.1)
        raise AssertionError(f"the Sentinels did not get ready: {self.logs()}")

    def _ready(self, sentinel: Server) -> bool:
        client = sentinel.client(decode_responses=True)
        try:
            others = client.sentinel_sentinels(SERVICE)
            replicas = client.sentinel_slaves(SERVICE)
        except redis_lib.RedisError:
            return False
        finally:
            client.close()
        in_sync = [r for r in replicas if r.get("master-link-status") == "ok"
                   and not r.get("is_sdown")]  # fmt: skip
        return len(others) == 2 and len(in_sync) == 1

    def primary_port(self) -> int | None:
        """The primary's port as the first Sentinel that answers says it."""
        for sentinel in self.sentinels:
            if sentinel.process.poll() is not None:
                continue
            client = sentinel.client()
            try:
                found = client.sentinel_get_master_addr_by_name(SERVICE)
                return int(found[1]) if found else None
            except redis_lib.RedisError:
                continue
            finally:
                client.close()
        return None

    def by_port(self, port: int) -> Server:
        return next(s for s in self.servers.values() if s.port == port)

    def logs(self) -> str:
        return "\n".join(
            f"--- {name}\n"
            + (self.workdir / name / "server.log").read_text(errors="replace")[-1500:]
            for name in self.servers
        )

    def stop(self) -> None:
        for server in self.servers.values():
            if server.process.poll() is None:
                server.process.terminate()
        for server in self.servers.values():
            try:
                server.process.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
