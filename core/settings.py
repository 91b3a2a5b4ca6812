"""Settings: one table of defaults with help text, read once from the environment.

Precedence is the environment, then a `.env` file in the working directory, then the default
below (Starlette's Config). Nothing else in the project reads os.environ.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from starlette.config import Config

from .errors import AfaError


def setting(default, help: str, env: str | None = None, shown: bool = True):  # noqa: A002
    """`shown` False keeps the value out of repr(settings): a URL that may hold a password."""
    return field(default=default, repr=shown, metadata={"help": help, "env": env})


@dataclass(frozen=True)
class Settings:
    content_dir: Path = setting(
        Path("content"), "Folder of organizer content: one folder per event."
    )
    archive_path: Path = setting(Path("var/archive.db"), "The SQLite archive, the source of truth.")
    output_dir: Path = setting(Path("output"), "Where sitegen writes the static site.")
    var_dir: Path = setting(Path("var"), "Runtime files: the embedded Redis, logs, recordings.")
    redis_url: str = setting(
        "",
        "Redis to use (redis://, unix://, or redis+sentinel://HOST:PORT,…/SERVICE/DB for a "
        "primary found by its Sentinels); empty starts the embedded redis-server under var/redis.",
        shown=False,
    )
    live_host: str = setting("127.0.0.1", "Address the live sidecar listens on.")
    live_port: int = setting(8001, "Port of the live sidecar.")
    site_port: int = setting(8000, "Port of the static server for output/ (demo and run).")
    live_url: str = setting(
        "", "Public URL of the live sidecar as pages see it; empty means http://host:live_port."
    )
    site_origin: str = setting(
        "*", "Origin allowed by the live sidecar's CORS headers (the site's URL), or *."
    )
    tail_length: int = setting(10_000, "How many changes each event's Redis stream keeps.")
    catchup_limit: int = setting(1_000, "Most posts a reconnecting live page receives at once.")
    heartbeat_seconds: float = setting(15.0, "Seconds between SSE heartbeat comments.")
    live_max_clients: int = setting(
        10_000, "Most open live connections per sidecar process; more get 503 and Retry-After."
    )
    live_max_per_address: int = setting(
        256,
        "Most open live connections from one client address; more get 429. Raise it when many "
        "attendees share one address (venue Wi-Fi NAT); 0 means no limit.",
    )
    live_workers: int = setting(
        1,
        "Worker processes of the live sidecar on its one port; each reads Redis itself, and "
        "they share /stats, /metrics and per-address counts through Redis.",
    )
    live_queue_size: int = setting(
        1_000, "Changes queued per live client before it is dropped as too slow to keep up."
    )
    live_send_timeout: float = setting(
        30.0, "Seconds one send to a live client may block before the client is dropped."
    )
    live_inline_posts: int = setting(50, "Posts written inline into the static live page.")
    replay_speed: float = setting(60.0, "Replay clock speed-up for the demo; 0 means no waiting.")
    grace_minutes: int = setting(10, "Minutes after a talk's end whose posts still belong to it.")
    base_url: str = setting("", "Absolute URL the site is published at (for feeds and cards).")
    publish_target: str = setting(
        "",
        "Where `make publish` and the rebuild loop send output/: s3://BUCKET/PREFIX (object "
        "storage), or an rsync destination (/path, host:path, rsync://host/module/path); empty "
        "publishes nothing.",
    )
    s3_endpoint: str = setting(
        "",
        "Endpoint URL of the S3-compatible storage (R2, B2, MinIO, SeaweedFS) for publishing and "
        "the archive replica; empty means AWS S3. Keys: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY.",
    )
    s3_region: str = setting("us-east-1", "Region of the bucket(s) (auto for Cloudflare R2).")
    publish_gzip: bool = setting(
        True, "Store HTML, CSS, JS, JSON and feeds gzip-compressed (Content-Encoding: gzip)."
    )
    publish_concurrency: int = setting(16, "Uploads to object storage at once.")
    replica_url: str = setting(
        "",
        "Litestream replica of the archive (s3://BUCKET/PATH, or a folder); when set, `make run` "
        "replicates the archive continuously and `make restore` brings it back.",
    )
    admin_host: str = setting("127.0.0.1", "Address the organizers' dashboard listens on.")
    admin_port: int = setting(
        8002, "Port of the organizers' dashboard (its secret: AFA_ADMIN_SECRET)."
    )
    admin_signin_limit: int = setting(
        5, "Failed dashboard sign-ins from one address before its next attempts are slowed down."
    )
    admin_signin_max_delay: float = setting(
        30.0,
        "Longest wait before a sign-in from an address past the limit is checked (1 s, doubling "
        "with each further failure); the right secret is never refused.",
    )
    admin_signin_forget_seconds: float = setting(
        900.0, "Failed sign-ins from one address are forgotten after this long without another."
    )
    admin_trusted_proxies: str = setting(
        "",
        "Comma-separated addresses of the proxies in front of the dashboard whose "
        "X-Forwarded-For and X-Forwarded-Proto are believed; empty believes no one.",
    )
    admin_session_hours: float = setting(12.0, "How long a dashboard sign-in lasts.")
    admin_live_stats: str = setting(
        "", "Comma-separated /stats URLs of the live sidecars; empty means the local sidecar."
    )
    supervisor_url: str = setting(
        "", "supervisord's XML-RPC address for the dashboard; empty means its socket under var/run."
    )

    def with_overrides(self, **overrides) -> Settings:
        return dataclasses.replace(self, **overrides)

    @property
    def public_live_url(self) -> str:
        return self.live_url or f"http://{self.live_host}:{self.live_port}"


def env_name(name: str) -> str:
    return "AFA_" + name.upper() if name != "redis_url" else "REDIS_URL"


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env"
) -> Settings:
    """Read every setting from the environment (AFA_<NAME>, and REDIS_URL)."""
    environ = os.environ if environ is None else environ
    env_path = env_file if env_file and Path(env_file).is_file() else None
    config = Config(env_path, environ=environ)
    values = {}
    for f in dataclasses.fields(Settings):
        cast = type(f.default)
        try:
            values[f.name] = config(env_name(f.name), cast=cast, default=f.default)
        except ValueError as exc:
            raise AfaError(f"setting {env_name(f.name)}: {exc}") from exc
    return Settings(**values)


def secret(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """A secret (API token, password) from the environment, never from content/ or a URL."""
    environ = os.environ if environ is None else environ
    return environ.get(name) or None


def settings_help() -> list[tuple[str, str, str]]:
    """(environment name, default, help) for every setting: the README's settings table."""
    return [
        (env_name(f.name), str(f.default), f.metadata["help"]) for f in dataclasses.fields(Settings)
    ]
