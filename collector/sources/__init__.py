"""Sources: each module parses one source's payloads into Items (pure `parse_*` functions).

Fetching live sources (Mastodon streaming + min_id backfill, Jetstream, searchPosts, Flickr
polling) is not written yet; `replay` feeds recorded payloads through these same parsers.
"""

from . import bluesky, flickr, mastodon

SOURCES = {"mastodon": mastodon, "bluesky": bluesky, "flickr": flickr}
