"""Run a command against the embedded default Redis when no REDIS_URL is set.

`make collect` and `make live` run in separate terminals and must meet on one Redis server, so
the first of them starts a real redis-server in the background under var/redis/ (on the Unix
socket var/redis/redis.sock, its pid written there) and the others find it. `make stop` stops it. With REDIS_URL
set this only runs the command.

    python scripts/with_redis.py -- python -m collector run
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.redisd import EmbeddedRedis, wait_for_socket  # noqa: E402
from core.settings import load_settings  # noqa: E402


def answers(path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(0.5)
            s.connect(str(path))
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def shared_redis(workdir: Path) -> str:
    redis = EmbeddedRedis(workdir)
    if answers(redis.socket):
        return redis.url
    redis.prepare()
    subprocess.run(redis.command(detached=True), check=True)
    wait_for_socket(redis.socket)
    print(f"started the embedded Redis at {redis.url} (`make stop` stops it)",
          file=sys.stderr, flush=True)  # fmt: skip
    return redis.url


def stop(workdir: Path) -> None:
    pid_file = workdir / "redis.pid"
    if not pid_file.exists():
        print("no embedded Redis is running", file=sys.stderr)
        return
    pid = int(pid_file.read_text().strip())
    try:
        os.kill(pid, 15)
    except ProcessLookupError:
        pass
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    pid_file.unlink(missing_ok=True)
    print(f"stopped the embedded Redis (pid {pid})", file=sys.stderr)


def main(argv: list[str]) -> int:
    settings = load_settings()
    workdir = settings.var_dir / "redis"
    if argv[:1] == ["--stop"]:
        stop(workdir)
        return 0
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    env = dict(os.environ)
    if not settings.redis_url:
        env["REDIS_URL"] = shared_redis(workdir)
    os.execvpe(argv[0], argv, env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
