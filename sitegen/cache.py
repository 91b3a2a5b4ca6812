"""The build cache: what the last build rendered, so the next one renders only what changed.

It lives under var/ (cache_dir), never in output/: output/ is what a server or a CDN shows and
what deploy tools write, and nothing read back into a build may come from there. A cache folder
belongs to one output folder (its name carries a digest of that path), so two builds into two
folders never share one. Deleting output/ alone is safe: a page whose file is gone is rendered. For each file: the digest of its inputs, the sha256
of its bytes and its (size, mtime) as written. A page whose input digest is unchanged and whose
file is still as written is kept without rendering. Per event it records the archive's state, so
a build with nothing new can keep every file without reading a single post.

The cache is written after the manifest; a build that dies before that leaves the previous cache,
whose stamps no longer match the files it rewrote, so nothing stale is ever kept.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.settings import Settings

from .writer import _replace

FORMAT = 1
SITEGEN = Path(__file__).parent


def code_digest() -> str:
    """Changes with any of sitegen's code, templates or static files: the template version."""
    h = hashlib.sha256()
    for path in sorted(SITEGEN.rglob("*")):
        if path.is_file() and path.suffix in (".py", ".html", ".css", ".js", ".xml"):
            h.update(path.relative_to(SITEGEN).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def cache_dir(settings: Settings) -> Path:
    """var/cache/site/<output folder's name>-<digest of its resolved path>/."""
    output = Path(settings.output_dir).resolve()
    key = hashlib.sha256(str(output).encode("utf-8")).hexdigest()[:12]
    return Path(settings.var_dir).resolve() / "cache" / "site" / f"{output.name}-{key}"


def digest(*parts: Any) -> str:
    return hashlib.sha256(repr(parts).encode("utf-8")).hexdigest()


@dataclass
class BuildCache:
    site: str = ""  # digest of code, settings, content and the build's notion of "now"
    states: dict[str, str] = field(default_factory=dict)  # event slug -> archive_state
    files: dict[str, list] = field(default_factory=dict)  # path -> [digest, sha256, size, mtime]

    @classmethod
    def load(cls, folder: Path) -> BuildCache:
        try:
            data = json.loads((folder / "pages.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls()
        if data.get("format") != FORMAT:
            return cls()
        return cls(data["site"], data["states"], data["files"])

    def save(self, folder: Path) -> None:
        data = {"format": FORMAT, "site": self.site, "states": self.states, "files": self.files}
        _replace(folder / "pages.json", json.dumps(data, sort_keys=True).encode())
