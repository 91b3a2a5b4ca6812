"""The one way every part opens Redis, and the one way a Redis URL is shown to people.

Every process (collector, replay, live sidecar, scheduler, dashboard, CLI) calls `connect` or
`connect_async` with the configured URL, so a new URL scheme (Sentinel, a unix socket, TLS) is
supported everywhere at once. `redact` is what goes into banners, logs and error messages: a
URL's password never does.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
import redis.asyncio as aredis


def connect(url: str, **options: Any) -> redis.Redis:
    """A synchronous client for `url`; `options` are redis-py connection keywords."""
    return redis.Redis.from_url(url, **options)


def connect_async(url: str, **options: Any) -> aredis.Redis:
    """An asyncio client for `url`; `options` are redis-py connection keywords."""
    return aredis.Redis.from_url(url, **options)


def redact(url: str) -> str:
    """`url` with its password (and a bare token user) replaced by `***`, for people to read."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable Redis URL>"
    if parts.password is None and not (parts.username and "@" in parts.netloc):
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    user = parts.username if parts.password is not None else None
    userinfo = f"{user}:***" if user else "***"
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{host}"))
