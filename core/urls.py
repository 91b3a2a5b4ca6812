"""Which URLs from a source may become a link: absolute http(s) only, the one filter every page
that shows a post uses (the site's templates and the dashboard's)."""

from __future__ import annotations

import functools
import re
from urllib.parse import urlsplit

_CONTROL = re.compile(r"[\x00-\x20]")  # spaces and control characters
_PLAIN = re.compile(r"https?://[A-Za-z0-9.-]+(?:[/?#]|\Z)")  # http(s), host name only


@functools.lru_cache(maxsize=65536)
def http_url(value: str | None) -> str:
    """The URL if it is absolute http(s), else '' (for the href and src attributes the site and
    the dashboard write themselves)."""
    if not value or _CONTROL.search(value):
        return ""
    if _PLAIN.match(value):
        return value  # a plain host name: what urlsplit finds, without splitting
    try:
        parts = urlsplit(value)
    except ValueError:
        return ""
    return value if parts.scheme.lower() in ("http", "https") and parts.hostname else ""
