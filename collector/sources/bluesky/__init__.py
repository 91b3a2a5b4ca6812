"""Bluesky: Jetstream for the live stream, authenticated searchPosts for the gaps it cannot
replay.

The pure parsing API is re-exported here; the source's `run(ctx)` is `.live.run`.
"""

from .parse import (
    HIDE_LABEL,
    POST,
    SOURCE,
    at_uri,
    parse_jetstream,
    parse_post_view,
    parse_record,
    record_tags,
    web_url,
)

__all__ = [
    "HIDE_LABEL",
    "POST",
    "SOURCE",
    "at_uri",
    "parse_jetstream",
    "parse_post_view",
    "parse_record",
    "record_tags",
    "web_url",
]
