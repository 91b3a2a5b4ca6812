"""Read content/ once per change: the parsed site and events are kept in the build cache, keyed
by every content file's path, size and mtime, so a rebuild with content/ untouched skips the YAML
parser (which was most of a no-change build). Errors are never cached: a content/ with a mistake
is parsed, and reported, every time.

The cache is JSON, never pickle: reading it builds only core.events' own dataclasses and plain
values (dates, times, tuples, paths), so a file planted in the cache can at worst be ignored. A
model the codec cannot write (a type it does not know) is simply not cached.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from core import events as model
from core.events import Event, Site, load_events, load_site

from .writer import _replace

FORMAT = 2
# The content model's dataclasses: those core.events defines or takes from another core module
# (core.schedule's Room, Day, ...); nothing from outside core/ is ever built from the cache.
CLASSES = {
    name: cls
    for name, cls in vars(model).items()
    if isinstance(cls, type)
    and dataclasses.is_dataclass(cls)
    and cls.__module__.startswith("core.")
}


def content_stamp(content_dir: Path) -> list[list]:
    """[relative path, size, mtime_ns] of every file under content_dir, sorted."""
    root = Path(content_dir)
    stamps = []
    for path in sorted(root.rglob("*")):
        if path.is_file():
            st = path.stat()
            stamps.append([path.relative_to(root).as_posix(), st.st_size, st.st_mtime_ns])
    return stamps


def load_content(content_dir: Path, cache_dir: Path) -> tuple[Site, list[Event]]:
    """(site, events) as core.events reads them, from the cache when no content file changed."""
    cache = Path(cache_dir) / "content.json"
    stamp = [FORMAT, str(Path(content_dir).resolve()), content_stamp(content_dir)]
    try:
        saved = json.loads(cache.read_text(encoding="utf-8"))
        if saved["stamp"] == stamp:
            return decode(saved["site"]), decode(saved["events"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    site, events = load_site(content_dir), load_events(content_dir)
    try:
        data = {"stamp": stamp, "site": encode(site), "events": encode(events)}
        if decode(data["site"]) == site and decode(data["events"]) == events:
            _replace(cache, json.dumps(data).encode("utf-8"))
    except (TypeError, ValueError):
        pass  # a type the codec does not know: parse content/ again next time
    return site, events


def encode(value: Any) -> Any:
    """A JSON-ready form of the content model; TypeError for anything else."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, tuple):
        return {"~tuple": [encode(v) for v in value]}
    if isinstance(value, dict):
        return {"~dict": [[encode(k), encode(v)] for k, v in value.items()]}
    if isinstance(value, datetime):
        if value.tzinfo not in (None, UTC):  # an offset would come back without its zone's name
            raise TypeError(f"the content cache holds UTC times only, not {value!r}")
        return {"~datetime": value.isoformat()}
    if isinstance(value, date):
        return {"~date": value.isoformat()}
    if isinstance(value, time):
        return {"~time": value.isoformat()}
    if isinstance(value, timedelta):
        return {"~timedelta": [value.days, value.seconds, value.microseconds]}
    if isinstance(value, Path):
        return {"~path": str(value)}
    name = type(value).__name__
    if CLASSES.get(name) is type(value):
        fields = {
            f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init
        }
        return {"~class": name, "fields": fields}
    raise TypeError(f"the content cache cannot hold a {type(value).__qualname__}")


def decode(value: Any) -> Any:
    """encode()'s inverse: builds only core.events' dataclasses and plain values."""
    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "~class" in value:
        cls = CLASSES[value["~class"]]
        return cls(**{k: decode(v) for k, v in value["fields"].items()})
    [(tag, raw)] = value.items()
    if tag == "~tuple":
        return tuple(decode(v) for v in raw)
    if tag == "~dict":
        return {decode(k): decode(v) for k, v in raw}
    if tag == "~datetime":
        return datetime.fromisoformat(raw)
    if tag == "~date":
        return date.fromisoformat(raw)
    if tag == "~time":
        return time.fromisoformat(raw)
    if tag == "~timedelta":
        return timedelta(*raw)
    if tag == "~path":
        return Path(raw)
    raise ValueError(f"unknown tag {tag!r} in the content cache")
