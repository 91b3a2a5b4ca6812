"""The build cache: what the last build rendered, so the next one renders only what changed.

It lives in output/.build-cache/ beside the files it describes (delete output/ and the cache goes
with it) and is never listed in the manifest. For each file: the digest of its inputs, the sha256
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

from .writer import CACHE_DIR, _replace

FORMAT = 1
SITEGEN = Path(__file__).parent


def code_digest() -> str:
    """Changes with any of sitegen's code, templates or static files: the template version."""
    h = hashlib.sha256()
    for path in sorted(SITEGEN.rglob("*")):
        if path.is_file() and path.suffix in (".py", ".html", ".css", ".js", ".xml"):
            h.update(path.relative_to(SITEGEN).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def digest(*parts: Any) -> str:
    return hashlib.sha256(repr(parts).encode("utf-8")).hexdigest()


@dataclass
class BuildCache:
    site: str = ""  # digest of code, settings, content and the build's notion of "now"
    states: dict[str, str] = field(default_factory=dict)  # event slug -> archive_state
    files: dict[str, list] = field(default_factory=dict)  # path -> [digest, sha256, size, mtime]

    @classmethod
    def load(cls, output: Path) -> BuildCache:
        try:
            data = json.loads((output / CACHE_DIR / "pages.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls()
        if data.get("format") != FORMAT:
            return cls()
        return cls(data["site"], data["states"], data["files"])

    def save(self, output: Path) -> None:
        data = {"format": FORMAT, "site": self.site, "states": self.states, "files": self.files}
        _replace(output / CACHE_DIR / "pages.json", json.dumps(data, sort_keys=True).encode())
