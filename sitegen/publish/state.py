"""What a target holds, as far as this machine knows: var/publish/<target>.json.

    {"profile": "...", "objects": {"key": "sha256 of its source" | null}}

A key is marked null (held, content unknown) before its upload starts, and gets its sha once
the upload has finished, so a publish killed at any point leaves a journal that is never wrong
about what might be at the target: the next run uploads every null or stale key and deletes
every key the build no longer has. The journal is replaced atomically, every CHECKPOINT
seconds while a publish runs and at its end. A journal of another profile (target, compression,
header rules) is not trusted: the target is then listed and everything uploaded again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

CHECKPOINT = 2.0  # seconds between journal writes while uploading


def state_path(var_dir: Path, target: str) -> Path:
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", target).strip("_")[:60]
    tag = hashlib.sha256(target.encode()).hexdigest()[:10]
    return Path(var_dir) / "publish" / f"{readable}-{tag}.json"


@dataclass
class State:
    path: Path
    profile: str
    objects: dict[str, str | None] = field(default_factory=dict)
    saved_at: float = 0.0

    @classmethod
    def load(cls, path: Path, profile: str) -> State | None:
        """The journal, or None when there is none (or it belongs to another profile)."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("profile") != profile:
            return None
        objects = data.get("objects")
        return cls(Path(path), profile, dict(objects)) if isinstance(objects, dict) else None

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"profile": self.profile, "objects": self.objects}, sort_keys=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self.saved_at = time.monotonic()

    def checkpoint(self) -> None:
        if time.monotonic() - self.saved_at >= CHECKPOINT:
            self.save()
