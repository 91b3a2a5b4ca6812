"""Sources: one package per source (mastodon/, bluesky/, flickr/, feeds/), each with a pure
`parse` module (payload → Items) apart from the modules that fetch, and a `live` module whose
`async def run(ctx)` follows the source (see base.py). recording.py reads and writes recordings.

LIVE maps a source `type` in event.yaml to the module that runs it. The live modules are
imported only when an event uses them, so a missing or broken module fails that source alone.
"""

from __future__ import annotations

import importlib

from core.errors import SourceError

from . import bluesky, flickr, mastodon
from .base import SourceRun

SOURCES = {"mastodon": mastodon, "bluesky": bluesky, "flickr": flickr}

LIVE = {
    "mastodon": "collector.sources.mastodon.live",
    "bluesky": "collector.sources.bluesky.live",
    "flickr": "collector.sources.flickr.live",
    "feed": "collector.sources.feeds.live",
}


def live_source(kind: str) -> SourceRun:
    """The `run(ctx)` coroutine function for a source type, or a SourceError saying why not."""
    if kind not in LIVE:
        known = ", ".join(sorted(LIVE))
        raise SourceError(kind or "?", "event.yaml", f"unknown source type (known: {known})")
    try:
        module = importlib.import_module(LIVE[kind])
    except ImportError as exc:
        raise SourceError(kind, LIVE[kind], "source module cannot be imported") from exc
    return module.run
