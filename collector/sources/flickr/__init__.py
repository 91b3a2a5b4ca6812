"""Flickr: flickr.photos.search polled by tag and upload date.

The pure parsing API is re-exported here; the source's `run(ctx)` is `.live.run`.
"""

from .parse import EXTRAS, SOURCE, parse_page, parse_photo, photo_page

__all__ = ["EXTRAS", "SOURCE", "parse_page", "parse_photo", "photo_page"]
