"""A real HAProxy (Debian's package) in front of live sidecars, for tests and `make bench-live`.

The configuration is what SSE needs from a balancer: HTTP mode without buffering the response
(HAProxy streams it as it comes), long client and server timeouts (the sidecar's heartbeat keeps
a stream busy well within them), health checks on /healthz so a dead sidecar is taken out, and
`option redispatch` with retries so a reconnect that meets the dead sidecar before its check has
failed is sent to a live one. A browser then resumes there by Last-Event-ID.
"""

from __future__ import annotations

import contextlib
import resource
import shutil
import subprocess
from pathlib import Path

from core.redisd import wait_for_port

CONFIG = """\
global
    maxconn {maxconn}
    log stderr format raw local0 err

defaults
    mode http
    log global
    option dontlognull
    timeout connect 2s
    timeout client 1h
    timeout server 1h
    timeout tunnel 1h
    timeout http-request 10s
    retries 3
    option redispatch

frontend live
    bind 127.0.0.1:{port}
    maxconn {maxconn}
    option forwardfor
    default_backend sidecars

backend sidecars
    balance roundrobin
    option httpchk GET /healthz
    http-check expect status 200
    default-server inter 500ms fall 2 rise 2 maxconn {maxconn}
{servers}
"""


def find_haproxy() -> str:
    """The haproxy binary (`make servers` installs Debian's package as root)."""
    found = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")
    if not found:
        raise RuntimeError("haproxy is not installed: run `make servers` as root "
                           "(apt-get install haproxy)")  # fmt: skip
    return found


def render(port: int, backends: list[int], maxconn: int | None = None) -> str:
    """`maxconn` defaults to what the open-files limit allows: two descriptors a stream."""
    if maxconn is None:
        maxconn = max(min(20_000, (resource.getrlimit(resource.RLIMIT_NOFILE)[1] - 200) // 2), 256)
    servers = "\n".join(f"    server s{i} 127.0.0.1:{p} check" for i, p in enumerate(backends))
    return CONFIG.format(port=port, servers=servers, maxconn=maxconn)


class HAProxy:
    """haproxy in the foreground (-db) with a generated config, stopped with `stop()`."""

    def __init__(self, workdir: Path, port: int, backends: list[int]) -> None:
        self.workdir, self.port = Path(workdir), port
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config = self.workdir / "haproxy.cfg"
        self.config.write_text(render(port, backends))
        self.process: subprocess.Popen | None = None

    def start(self) -> HAProxy:
        binary = find_haproxy()
        check = subprocess.run([binary, "-c", "-q", "-f", str(self.config)],
                               capture_output=True, text=True)  # fmt: skip
        if check.returncode != 0:
            raise RuntimeError(f"haproxy -c failed:\n{check.stdout}{check.stderr}")
        log = open(self.workdir / "haproxy.log", "wb")  # noqa: SIM115 - lives with the child
        self.process = subprocess.Popen([binary, "-db", "-f", str(self.config)], stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        wait_for_port(self.port, timeout=60)
        return self

    def log(self) -> str:
        path = self.workdir / "haproxy.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()  # hard stop: open streams would hold a soft one
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            self.process.wait()

    def __enter__(self) -> HAProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
