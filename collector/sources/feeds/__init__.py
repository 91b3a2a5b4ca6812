"""RSS and Atom feeds, polled with conditional GET.

The pure parsing API is re-exported here; the source's `run(ctx)` is `.live.run`.
"""

from .parse import SOURCE, identity, parse_entry, parse_feed, read_feed

__all__ = ["SOURCE", "identity", "parse_entry", "parse_feed", "read_feed"]
