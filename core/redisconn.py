"""The one way every part opens Redis, and the one way a Redis URL is shown to people.

Every process (collector, replay, live sidecar, dashboard, CLI) calls `connect` or
`connect_async` with the configured URL, so a URL scheme is supported everywhere at once:

    redis://[[user]:password@]host:port/db       one server over TCP (rediss:// with TLS)
    unix:///path/to/redis.sock?db=0               one server on a Unix socket (the embedded one)
    redis+sentinel://[[user]:password@]host:port[,host:port…]/SERVICE[/db]
                                                  the primary of SERVICE, as its Sentinels say

With Sentinel, the hosts are the Sentinels (port 26379 when left out) and the password is the
primary's; `?sentinel_password=` (and `sentinel_username=`) authenticate to the Sentinels when
they need it. Every new connection asks the Sentinels where the primary is, and a connection to
a primary that was demoted fails as a connection error, so after a failover each part's next
retry reaches the new primary: the collector re-seeds its stream from the archive (publish.py),
the sidecars' readers XREAD on after the last id they delivered (fanout.py).

`redact` is what goes into banners, logs and error messages: a URL's password never does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import redis
import redis.asyncio as aredis
import redis.asyncio.sentinel as asentinel
import redis.sentinel as sentinel

from .errors import AfaError

SENTINEL_SCHEME = "redis+sentinel"
SENTINEL_PORT = 26379
SENTINEL_TIMEOUT = 2.0  # seconds to reach one Sentinel before asking the next
SECRET_PARAMS = {"password", "sentinel_password"}


@dataclass(frozen=True)
class SentinelTarget:
    """What a redis+sentinel:// URL names: the Sentinels, the service, and the primary's db
    and credentials (`auth`) and the Sentinels' own (`sentinel_auth`)."""

    sentinels: list[tuple[str, int]]
    service: str
    db: int = 0
    auth: dict[str, str] = field(default_factory=dict)
    sentinel_auth: dict[str, str] = field(default_factory=dict)


def connect(url: str, **options: Any) -> redis.Redis:
    """A synchronous client for `url`; `options` are redis-py connection keywords."""
    target = sentinel_target(url)
    if target is None:
        return redis.Redis.from_url(url, **options)
    found = sentinel.Sentinel(target.sentinels, sentinel_kwargs=_sentinel_kwargs(target, options))
    return found.master_for(target.service, db=target.db, **target.auth, **options)


def connect_async(url: str, **options: Any) -> aredis.Redis:
    """An asyncio client for `url`; `options` are redis-py connection keywords."""
    target = sentinel_target(url)
    if target is None:
        return aredis.Redis.from_url(url, **options)
    kwargs = _sentinel_kwargs(target, options)
    found = asentinel.Sentinel(target.sentinels, sentinel_kwargs=kwargs)
    return found.master_for(target.service, db=target.db, **target.auth, **options)


def _sentinel_kwargs(target: SentinelTarget, options: dict[str, Any]) -> dict[str, Any]:
    """How to talk to the Sentinels themselves: short timeouts (a dead one must not hold up
    the search for the primary), their credentials, and no other option of the primary's."""
    timeout = options.get("socket_connect_timeout") or SENTINEL_TIMEOUT
    return {"socket_timeout": timeout, "socket_connect_timeout": timeout, **target.sentinel_auth}


def sentinel_target(url: str) -> SentinelTarget | None:
    """The Sentinels, service and db a redis+sentinel:// URL names; None for any other URL."""
    parts = urlsplit(url)
    if parts.scheme != SENTINEL_SCHEME:
        return None
    hosts = parts.netloc.rsplit("@", 1)[-1]
    path = [p for p in parts.path.split("/") if p]
    if not hosts or not path or len(path) > 2:
        raise AfaError(f"REDIS_URL {redact(url)}: expected {SENTINEL_SCHEME}://"
                       "[:password@]host:port[,host:port…]/SERVICE[/db]")  # fmt: skip
    try:
        sentinels = [_host_port(h) for h in hosts.split(",") if h]
        db = int(path[1]) if len(path) == 2 else 0
    except ValueError:
        raise AfaError(f"REDIS_URL {redact(url)}: a bad Sentinel port or db number") from None
    query = dict(parse_qsl(parts.query))
    auth = _auth(unquote(parts.username or ""), unquote(parts.password or ""))
    sentinel_auth = _auth(query.get("sentinel_username", ""), query.get("sentinel_password", ""))
    return SentinelTarget(sentinels, unquote(path[0]), db, auth, sentinel_auth)


def _host_port(text: str) -> tuple[str, int]:
    if text.startswith("["):  # [::1]:26379
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else SENTINEL_PORT
    host, _, port = text.partition(":")
    return host, int(port) if port else SENTINEL_PORT


def _auth(username: str, password: str) -> dict[str, str]:
    found = {"password": password} if password else {}
    if username and password:
        found["username"] = username
    return found


def redact(url: str) -> str:
    """`url` with its passwords (userinfo, a bare token user, `password=` and
    `sentinel_password=` in the query) replaced by `***`, for people to read."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable Redis URL>"
    query, netloc = parts.query, parts.netloc
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, "***" if k in SECRET_PARAMS else v) for k, v in pairs], safe="*/")
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user, has_password, _ = userinfo.partition(":")
        netloc = f"{user}:***@{host}" if has_password and user else f"***@{host}"
    if (query, netloc) == (parts.query, parts.netloc):
        return url
    shown = f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")
    return shown + (f"#{parts.fragment}" if parts.fragment else "")
