"""nginx + the Nchan module as the benchmark's reference: found (or installed), configured in a
temp dir, started in the foreground on a free loopback port, published to over HTTP, stopped.

The subscriber location serves the same path as the sidecar (/live/EVENT/stream), so the load
generator is the same; Nchan ids are its own (time:tag), so the generator reads the seq from the
first bytes of the data line instead (`data: {"seq":N,...`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

MODULE_DIRS = [Path("/usr/lib/nginx/modules"), Path("/usr/share/nginx/modules")]
MODULE = "ngx_nchan_module.so"
INSTALL = ["apt-get", "install", "-y", "nginx-light", "libnginx-mod-nchan"]
INSTALL_HINT = "apt-get update && apt-get install -y nginx-light libnginx-mod-nchan"

CONFIG = """\
load_module {module};
daemon off;
master_process on;
worker_processes {workers};
worker_rlimit_nofile {nofile};
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections {connections}; multi_accept on; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
  nchan_shared_memory_size 256M;
  server {{
    listen 127.0.0.1:{port} backlog=4096;
{locations}
  }}
}}
"""

CHANNEL = """\
    location = /live/{channel}/stream {{
      nchan_subscriber eventsource;
      nchan_channel_id {channel};
      nchan_subscriber_first_message oldest;
      nchan_subscriber_timeout 0;
      nchan_message_buffer_length {buffer};
      nchan_message_timeout 1h;
      add_header X-Accel-Buffering no;
    }}
    location = /pub/{channel} {{
      nchan_publisher;
      nchan_channel_id {channel};
      nchan_message_buffer_length {buffer};
      nchan_message_timeout 1h;
    }}
"""


def find_module() -> Path | None:
    for folder in MODULE_DIRS:
        if (folder / MODULE).exists():
            return folder / MODULE
    return None


def ensure_nchan(log=print) -> tuple[str, Path] | None:
    """(nginx binary, module path); installs them with apt-get when run as root, else None."""
    nginx, module = shutil.which("nginx") or _sbin("nginx"), find_module()
    if nginx and module:
        return nginx, module
    if os.geteuid() != 0:
        log(f"nginx + Nchan not installed; to compare, run as root: {INSTALL_HINT}")
        return None
    log(f"installing nginx + Nchan: {' '.join(INSTALL)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    done = subprocess.run(INSTALL, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:  # a stale package list is the usual cause
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, timeout=300)
        done = subprocess.run(INSTALL, env=env, capture_output=True, text=True, timeout=600)
    nginx, module = shutil.which("nginx") or _sbin("nginx"), find_module()
    if not (nginx and module):
        log(f"could not install nginx + Nchan:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        return None
    return nginx, module


def _sbin(name: str) -> str | None:
    path = Path("/usr/sbin") / name
    return str(path) if path.exists() else None


def write_config(
    tmp: Path, module: Path, port: int, channels: list[str], buffer: int, workers: int
) -> Path:
    locations = "".join(CHANNEL.format(channel=c, buffer=buffer) for c in channels)
    text = CONFIG.format(
        module=module, workers=workers, tmp=tmp, port=port, locations=locations,
        nofile=20_000, connections=16_384,
    )  # fmt: skip
    path = tmp / "nginx.conf"
    path.write_text(text)
    return path


class Nginx:
    """nginx in the foreground in its own process group, with its own pid and error log."""

    def __init__(self, nginx: str, module: Path, tmp: Path, port: int, channels: list[str],
                 buffer: int, workers: int = 0) -> None:  # fmt: skip
        """`workers` 0: one per CPU (nginx's `auto`)."""
        self.tmp, self.port = tmp, port
        workers = workers or os.cpu_count() or 1
        self.config = write_config(tmp, module, port, channels, buffer, workers)
        self.command = [nginx, "-p", str(tmp), "-c", str(self.config), "-e", str(tmp / "error.log")]
        self.process: subprocess.Popen | None = None

    def start(self) -> Nginx:
        check = subprocess.run([*self.command, "-t"], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"nginx -t failed:\n{check.stderr}")
        self.process = subprocess.Popen(
            self.command, stdout=subprocess.DEVNULL, stderr=open(self.tmp / "stderr.log", "wb"),
            start_new_session=True,
        )  # fmt: skip
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # nginx: fast shutdown, workers too
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def error_log(self) -> str:
        path = self.tmp / "error.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""


class Publisher:
    """POSTs each message to the channel's publisher location on one keep-alive connection,
    pipelined: `publish()` writes the request and returns at once, a reader thread takes the
    responses in order. Nchan answers a POST only after it has written the message to every
    subscriber of the worker that holds the channel, so a publisher that waited for each
    answer would be held back by the fan-out it is measuring, and each message would leave
    late (its latency then hides in the publisher's lag). Pipelined, every message reaches
    nginx on schedule; nginx still takes them one after another, so its fan-out backlog shows
    where it belongs, in the subscribers' latency. `acks` holds each answer's arrival time."""

    def __init__(self, port: int, channel: str) -> None:
        self.head = (
            f"POST /pub/{channel} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Content-Type: application/json\r\nContent-Length: "
        ).encode()
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.responses = self.sock.makefile("rb")
        self.sent = 0
        self.acks: list[float] = []
        self.errors: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def publish(self, data: str) -> None:
        body = data.encode()
        self.sock.sendall(b"%s%d\r\n\r\n%s" % (self.head, len(body), body))
        self.sent += 1

    def _read(self) -> None:
        try:
            while True:
                status = read_response(self.responses)
                if status is None:
                    return
                self.acks.append(time.time())
                if status not in (200, 201, 202):
                    self.errors.append(f"HTTP {status}")
        except (OSError, ValueError) as exc:
            self.errors.append(f"{type(exc).__name__}: {exc}")

    def close(self, timeout: float = 60) -> None:
        """Wait (up to `timeout` s) for every answer, then close the connection."""
        if self.sock.fileno() < 0:
            return
        deadline = time.monotonic() + timeout
        while len(self.acks) + len(self.errors) < self.sent and time.monotonic() < deadline:
            if not self.reader.is_alive():
                break
            time.sleep(0.01)
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.reader.join(5)
        if len(self.acks) < self.sent and not self.errors:
            self.errors.append(f"{self.sent - len(self.acks)} POSTs unanswered")


def read_response(stream) -> int | None:
    """Read one HTTP/1.1 response (Content-Length or chunked body); its status, None at EOF."""
    line = stream.readline()
    if not line:
        return None
    status = int(line.split()[1])
    length, chunked = 0, False
    while (header := stream.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = header.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while (size := int(stream.readline().split(b";")[0], 16)) > 0:
            stream.read(size + 2)
        stream.readline()
    elif length:
        stream.read(length)
    return status


class SequentialPublisher:
    """POSTs each message on one keep-alive connection and waits for its answer (http.client)."""

    def __init__(self, port: int, channel: str) -> None:
        import http.client

        self.path = f"/pub/{channel}"
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.acks: list[float] = []
        self.errors: list[str] = []

    def publish(self, data: str) -> None:
        self.conn.request("POST", self.path, body=data.encode(),
                          headers={"Content-Type": "application/json"})  # fmt: skip
        response = self.conn.getresponse()
        response.read()
        self.acks.append(time.time())
        if response.status not in (200, 201, 202):
            self.errors.append(f"HTTP {response.status}")

    def close(self) -> None:
        self.conn.close()
