"""The contract shared by collector, sitegen and live. Imports none of them."""

from .archive import open_archive
from .errors import AfaError, ContentError, ContentErrors
from .events import Event, load_events, load_site
from .items import Author, Item, Media
from .settings import Settings, load_settings

__all__ = [
    "AfaError",
    "Author",
    "ContentError",
    "ContentErrors",
    "Event",
    "Item",
    "Media",
    "Settings",
    "load_events",
    "load_settings",
    "load_site",
    "open_archive",
]
