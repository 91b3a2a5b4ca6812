"""Read content/ once per change: the parsed site and events are kept in the build cache, keyed
by every content file's path, size and mtime, so a rebuild with content/ untouched skips the YAML
parser (which was most of a no-change build). Errors are never cached: a content/ with a mistake
is parsed, and reported, every time.
"""

from __future__ import annotations

import pickle
from pathlib import Path

from core.events import Event, Site, load_events, load_site

from .writer import CACHE_DIR, _replace

FORMAT = 1


def content_stamp(content_dir: Path) -> list[tuple[str, int, int]]:
    """(relative path, size, mtime_ns) of every file under content_dir, sorted."""
    root = Path(content_dir)
    stamps = []
    for path in sorted(root.rglob("*")):
        if path.is_file():
            st = path.stat()
            stamps.append((path.relative_to(root).as_posix(), st.st_size, st.st_mtime_ns))
    return stamps


def load_content(content_dir: Path, output: Path) -> tuple[Site, list[Event]]:
    """(site, events) as core.events reads them, from the cache when no content file changed."""
    cache = Path(output) / CACHE_DIR / "content.pickle"
    stamp = (FORMAT, str(Path(content_dir).resolve()), content_stamp(content_dir))
    try:
        saved = pickle.loads(cache.read_bytes())
        if saved[0] == stamp:
            return saved[1], saved[2]
    except (OSError, pickle.UnpicklingError, EOFError, IndexError, TypeError, AttributeError):
        pass
    site, events = load_site(content_dir), load_events(content_dir)
    _replace(cache, pickle.dumps((stamp, site, events), protocol=pickle.HIGHEST_PROTOCOL))
    return site, events
