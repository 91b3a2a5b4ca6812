"""`make run`: every process under supervisord, with a configuration generated under var/run/.

    programs(...)      what runs: the embedded Redis (when REDIS_URL is unset), Litestream (when
                       AFA_REPLICA_URL is set), one collector and one site rebuild loop per event,
                       the live sidecar, the static server, the dashboard; each with its restart
                       policy
    render_config(...) those programs as a supervisord.conf: a log per process, rotated; an
                       XML-RPC socket only the owner can open (the dashboard's way in)
    exec_supervisord() replaces this process with supervisord in the foreground, so Ctrl-C
                       reaches it and it stops every program (and their children) before it exits

The secret and any API tokens are never written into the configuration: programs inherit them
from supervisord's own environment.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import AfaError
from core.events import Event
from core.paths import private_dir
from core.redisd import EmbeddedRedis
from core.settings import Settings

from .replica import replicate_command

LOG_MAXBYTES = "10MB"
LOG_BACKUPS = 5
SOCKET_PATH_MAX = 100  # AF_UNIX paths are limited to 108 bytes


@dataclass(frozen=True)
class Program:
    """One [program:x] section. `once` programs (a replay, a schedule that ends with the event)
    exit 0 when their work is done and are restarted only when they crash."""

    name: str
    command: list[str]
    priority: int = 100
    once: bool = False
    stopwaitsecs: int = 15
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunPlan:
    run_dir: Path
    programs: list[Program]
    environment: dict[str, str]

    @property
    def config_path(self) -> Path:
        return self.run_dir / "supervisord.conf"

    @property
    def socket_path(self) -> Path:
        return self.run_dir / "supervisor.sock"

    @property
    def log_dir(self) -> Path:
        return self.run_dir / "logs"


def run_dir(settings: Settings) -> Path:
    return (settings.var_dir / "run").resolve()


def supervisor_url(settings: Settings) -> str:
    """Where the dashboard reaches supervisord: the setting, else the socket under var/run/."""
    return settings.supervisor_url or f"unix://{run_dir(settings) / 'supervisor.sock'}"


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


def programs(
    settings: Settings,
    events: Sequence[Event],
    *,
    embedded_redis: bool = False,
    replay: Path | None = None,
    speed: float | None = None,
    static: bool = True,
    dashboard: bool = True,
) -> list[Program]:
    """What `make run` supervises. Redis starts first and stops last (lowest priority)."""
    found: list[Program] = []
    if embedded_redis:
        redis = embedded(settings)
        redis.prepare()  # its folder, 0700, and a socket path that fits
        found.append(Program("redis", redis.command(), priority=10, stopwaitsecs=30))
    if settings.replica_url:  # starts before the collectors and stops after them
        command = replicate_command(run_dir(settings) / "litestream.yml")
        found.append(Program("litestream", command, priority=15, stopwaitsecs=30))
    for event in events:
        if replay is not None:
            speed_arg = str(settings.replay_speed if speed is None else speed)
            command = python("-m", "collector", "replay", event.slug, str(replay.resolve()),
                             "--speed", speed_arg)  # fmt: skip
            found.append(Program(f"collector-{event.slug}", command, priority=20, once=True))
        else:
            command = python("-m", "collector", "run", event.slug)
            found.append(Program(f"collector-{event.slug}", command, priority=20))
        command = python("-m", "sitegen", "schedule", event.slug)  # sitegen/rebuild_loop.py
        found.append(Program(f"scheduler-{event.slug}", command, priority=30, once=True))
    found.append(Program("live", python("-m", "live", "serve", "--port", str(settings.live_port))))
    if static:
        command = python("-m", "sitegen", "serve", "--port", str(settings.site_port))
        found.append(Program("static", command))
    if dashboard:
        found.append(Program("dashboard", python("-m", "admin", "serve"), priority=200))
    return found


def embedded(settings: Settings) -> EmbeddedRedis:
    """The embedded Redis of `make run`: on a Unix socket in var/run/redis/ (0700)."""
    return EmbeddedRedis(run_dir(settings) / "redis", persist=True)


def plan(settings: Settings, found: list[Program], redis_url: str) -> RunPlan:
    environment = {"PYTHONUNBUFFERED": "1"}
    if redis_url:
        environment["REDIS_URL"] = redis_url
    path = run_dir(settings)
    if len(str(path / "supervisor.sock")) > SOCKET_PATH_MAX:
        raise AfaError(f"{path} is too deep for a Unix socket: set AFA_VAR_DIR to a shorter path")
    return RunPlan(path, found, environment)


def quote(value: str) -> str:
    """A value for supervisord's ini parser, which expands %(name)s: a literal % is %%."""
    return value.replace("%", "%%")


def render_env(env: dict[str, str]) -> str:
    return ",".join(f'{k}="{quote(v).replace(chr(34), "")}"' for k, v in sorted(env.items()))


def render_config(run: RunPlan, directory: Path) -> str:
    sock, logs = run.socket_path, run.log_dir
    lines = [
        "; generated by `python -m admin supervise`: edits are overwritten on the next `make run`",
        "[unix_http_server]", f"file={sock}", "chmod=0700", "",
        "[supervisord]", "nodaemon=true", f"logfile={logs / 'supervisord.log'}",
        f"logfile_maxbytes={LOG_MAXBYTES}", f"logfile_backups={LOG_BACKUPS}",
        f"pidfile={run.run_dir / 'supervisord.pid'}", f"childlogdir={logs}",
        f"directory={quote(str(directory))}", f"environment={render_env(run.environment)}", "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface", "",
        "[supervisorctl]", f"serverurl=unix://{sock}", "",
    ]  # fmt: skip
    for program in run.programs:
        lines += render_program(program, directory, logs)
    return "\n".join(lines)


def render_program(program: Program, directory: Path, logs: Path) -> list[str]:
    section = [
        f"[program:{program.name}]",
        f"command={quote(shlex.join(program.command))}",
        f"directory={quote(str(directory))}",
        f"priority={program.priority}",
        "autostart=true",
        f"autorestart={'unexpected' if program.once else 'true'}",
        "exitcodes=0",
        "startsecs=1",
        "startretries=10",
        "stopsignal=TERM",
        f"stopwaitsecs={program.stopwaitsecs}",
        "stopasgroup=true",
        "killasgroup=true",
        "redirect_stderr=true",
        f"stdout_logfile={logs / (program.name + '.log')}",
        f"stdout_logfile_maxbytes={LOG_MAXBYTES}",
        f"stdout_logfile_backups={LOG_BACKUPS}",
    ]
    if program.env:
        section.append(f"environment={render_env(program.env)}")
    return [*section, ""]


def write_config(run: RunPlan, directory: Path) -> Path:
    private_dir(run.log_dir)
    private_dir(run.run_dir / "redis")
    private_dir(run.run_dir)
    run.config_path.write_text(render_config(run, directory))
    return run.config_path


def exec_supervisord(config: Path) -> None:
    """Become supervisord (foreground): Ctrl-C or SIGTERM stops every program, then it exits."""
    sys.stdout.flush()
    sys.stderr.flush()
    args = [sys.executable, "-c", "from supervisor.supervisord import main; main()"]
    os.execv(sys.executable, [*args, "-c", str(config)])
