"""What a Flickr entry in event.yaml may set, read into Options."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as dtime

from core.errors import SourceError

from ..base import SourceContext

log = logging.getLogger("collector.flickr")
API = "https://api.flickr.com/services/rest/"


@dataclass(frozen=True)
class Options:
    api_key: str
    tags: tuple[str, ...]
    tag_mode: str = "any"
    base_url: str = API
    per_page: int = 250
    interval: float = 60.0
    overlap: int = 900
    budget_per_hour: int = 3600
    rescan_seconds: float = 3600.0
    since: int = 0  # the event window starts here (epoch): a day before the event's first day
    request_timeout: float = 30.0  # seconds before a silent (stalled) request is given up


# what an entry may set: every option but the key itself, which comes from key_env
FLICKR_OPTIONS = (set(Options.__dataclass_fields__) - {"api_key"}) | {"key_env", "hashtags"}


def options(ctx: SourceContext) -> Options:
    c = ctx.config
    ctx.warn_unknown_options(FLICKR_OPTIONS, log)
    key_env = str(c.get("key_env") or "AFA_FLICKR_KEY")
    api_key = ctx.secrets(key_env)
    if not api_key:
        raise SourceError(ctx.key, key_env, "no Flickr API key: set the environment variable")
    tags = tuple(str(t).lstrip("#") for t in (c.get("tags") or c.get("hashtags") or []))
    if not tags:
        tags = tuple(sorted(ctx.hashtags))
    if not tags:
        raise SourceError(ctx.key, "event.yaml", "a Flickr source needs tags")
    start = datetime.combine(ctx.event.start, dtime.min, tzinfo=ctx.event.tz) - timedelta(days=1)
    return Options(
        api_key=api_key, tags=tags, tag_mode=str(c.get("tag_mode", "any")),
        base_url=str(c.get("base_url", API)), per_page=min(int(c.get("per_page", 250)), 500),
        interval=float(c.get("interval", 60)), overlap=int(c.get("overlap", 900)),
        budget_per_hour=int(c.get("budget_per_hour", 3600)),
        rescan_seconds=float(c.get("rescan_seconds", 3600)),
        since=int(c.get("since", start.timestamp())),
        request_timeout=float(c.get("request_timeout", 30)),
    )  # fmt: skip
