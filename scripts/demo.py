"""Run the whole system on one machine: embedded Redis, collector, the site's rebuild loop, live
sidecar and a static server for output/. Ctrl-C stops every process it started.

    python scripts/demo.py --event northwind-2026 --recording var/recordings/northwind-2026.jsonl
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.errors import AfaError, ContentErrors  # noqa: E402
from core.events import load_events  # noqa: E402
from core.paths import private_dir  # noqa: E402
from core.redisconn import redact  # noqa: E402
from core.redisd import EmbeddedRedis, port_or_free  # noqa: E402
from core.settings import load_settings  # noqa: E402


class Processes:
    """Children in their own process groups, so a stop reaches everything they started."""

    def __init__(self, env: dict[str, str], logdir: Path) -> None:
        self.env = env
        self.logdir = logdir
        self.children: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, *args: str, log: bool = False) -> subprocess.Popen:
        out = open(self.logdir / f"{name}.log", "ab") if log else None  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env=self.env,
            start_new_session=True,
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
        )
        self.children.append((name, proc))
        return proc

    def run(self, *args: str) -> None:
        subprocess.run([sys.executable, *args], cwd=ROOT, env=self.env, check=True)

    def stop(self) -> None:
        for _, proc in self.children:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for name, proc in self.children:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"demo: {name} did not stop in time; killing it", flush=True)
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def failed(self) -> str | None:
        for name, proc in self.children:
            if proc.poll() not in (None, 0):
                return f"{name} exited with code {proc.returncode}"
        return None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--event", required=True, help="event slug under content/")
    parser.add_argument("--recording", type=Path, help="recorded stream to replay")
    parser.add_argument("--speed", type=float, default=None, help="replay clock speed-up")
    parser.add_argument(
        "--duration", type=float, default=0, help="stop after N seconds (0: run until Ctrl-C)"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the archive of an earlier demo run"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = load_settings()
    try:
        events = {e.slug: e for e in load_events(settings.content_dir)}
    except ContentErrors as exc:
        print(exc, file=sys.stderr)
        return 1
    if args.event not in events:
        print(f"demo: no event {args.event!r} in {settings.content_dir}/", file=sys.stderr)
        return 1
    var = settings.var_dir / "demo"
    if not args.keep and var.exists():
        shutil.rmtree(var)
    private_dir(settings.var_dir)
    private_dir(var / "logs")
    speed = args.speed if args.speed is not None else settings.replay_speed
    site_port = port_or_free(settings.site_port)
    live_port = port_or_free(settings.live_port)

    redis = None
    redis_url = settings.redis_url
    if not redis_url:
        redis = EmbeddedRedis(var / "redis", persist=True).start()
        redis_url = redis.url
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "AFA_ARCHIVE_PATH": str(var / "archive.db"),
        "AFA_LIVE_PORT": str(live_port),
        "AFA_SITE_PORT": str(site_port),
        "AFA_SITE_ORIGIN": f"http://127.0.0.1:{site_port}",
        "AFA_BASE_URL": settings.base_url or f"http://127.0.0.1:{site_port}",  # the wall's QR code
        "PYTHONUNBUFFERED": "1",
    }
    procs = Processes(env, var / "logs")
    stopping = False

    def on_signal(signum, frame):  # noqa: ARG001
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        procs.run("-m", "sitegen", "build")
        procs.start("live", "-m", "live", "serve", "--port", str(live_port))
        procs.start("static", "-m", "sitegen", "serve", "--port", str(site_port), log=True)
        procs.start("sitegen", "-m", "sitegen", "schedule", args.event)
        if args.recording:
            procs.start(
                "collector",
                "-m",
                "collector",
                "replay",
                args.event,
                str(args.recording),
                "--speed",
                str(speed),
            )
        print_banner(
            events[args.event].name, args.event, site_port, live_port, redis_url, speed, var
        )
        started = time.monotonic()
        while not stopping:
            if args.duration and time.monotonic() - started > args.duration:
                break
            problem = procs.failed()
            if problem:
                print(
                    f"demo: {problem}; stopping everything (logs in {var / 'logs'})",
                    file=sys.stderr,
                )
                return 1
            time.sleep(0.2)
        return 0
    except (AfaError, subprocess.CalledProcessError) as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    finally:
        print("demo: stopping every process it started", flush=True)
        procs.stop()
        if redis:
            redis.stop()


def print_banner(name, slug, site_port, live_port, redis_url, speed, var) -> None:
    site = f"http://127.0.0.1:{site_port}"
    print(
        f"\nA Feed Apart demo: {name}, replayed at {speed:g}x\n"
        f"  event page   {site}/{slug}/\n"
        f"  live page    {site}/{slug}/live/\n"
        f"  venue wall   {site}/{slug}/wall/ (one room's: {site}/{slug}/wall/ROOM/)\n"
        f"  meet-ups     {site}/{slug}/meetups/\n"
        f"  live stream  http://127.0.0.1:{live_port}/live/{slug}/stream\n"
        f"  redis        {redact(redis_url)}\n"
        f"  archive      {var / 'archive.db'}\n"
        "Press Ctrl-C to stop.\n",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
