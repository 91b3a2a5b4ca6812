"""Mastodon: one instance's hashtag statuses, streamed (SSE, with a user token) or polled, with
a REST backfill after every (re)connect.

The pure parsing API is re-exported here; the source's `run(ctx)` is `.live.run`.
"""

from .parse import (
    SOURCE,
    StreamEvent,
    canonical_uri,
    origin_host,
    parse_account,
    parse_media,
    parse_status,
    parse_stream_event,
)

__all__ = [
    "SOURCE",
    "StreamEvent",
    "canonical_uri",
    "origin_host",
    "parse_account",
    "parse_media",
    "parse_status",
    "parse_stream_event",
]
