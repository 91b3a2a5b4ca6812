"""A misspelt option in a source's event.yaml entry is named in a warning, not ignored in
silence; the sample event's own entries raise none."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from collector.collect import source_key
from collector.sources.base import SourceContext
from collector.sources.bluesky.live import source_config
from collector.sources.feeds import live as feeds
from collector.sources.flickr.options import options as flickr_options
from collector.sources.mastodon.instance import Options as MastodonOptions
from core.errors import SourceError
from core.events import Event, load_events
from core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def context(config: dict, event: Event | None = None) -> SourceContext:
    today = datetime.now(UTC).date()
    event = event or Event("ev", "Ev", today, today, "UTC", "", ("tag",), (), ())
    return SourceContext(
        event=event, key=source_key(config, event), config=config,
        settings=Settings(archive_path=Path("unused.db")), hashtags={"tag"}, cursor=None,
        save=None, http=httpx.AsyncClient(), secrets={"AFA_FLICKR_KEY": "k"}.get,
    )  # fmt: skip


def read_options(config: dict, event: Event | None = None) -> None:
    ctx = context(config, event)
    kind = config["type"]
    if kind == "mastodon":
        MastodonOptions.from_context(ctx)
    elif kind == "flickr":
        flickr_options(ctx)
    elif kind == "bluesky":
        source_config(config)
    elif kind == "feed":
        with pytest.raises(SourceError):  # the warning comes first, then the missing url stops it
            asyncio.run(feeds.run(ctx))
    asyncio.run(ctx.http.aclose())


@pytest.mark.parametrize(
    "config",
    [
        {"type": "mastodon", "instance": "https://m.example", "pol_seconds": 5},
        {"type": "flickr", "tags": ["tag"], "pol_seconds": 5},
        {"type": "bluesky", "pol_seconds": 5},
        {"type": "feed", "pol_seconds": 5},
    ],
    ids=lambda c: c["type"],
)
def test_an_unknown_option_is_named(config, caplog):
    with caplog.at_level(logging.WARNING):
        read_options(config)
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("pol_seconds" in m and "ignored" in m for m in warned), warned


def test_the_sample_events_sources_raise_no_warning(caplog):
    event = load_events(ROOT / "content")[0]
    assert event.sources
    with caplog.at_level(logging.WARNING):
        for config in event.sources:
            read_options(dict(config), event)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
