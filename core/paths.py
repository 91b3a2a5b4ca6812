"""Private places on disk: var/ holds the archive (held and hidden posts, the audit log), logs,
recordings and the dashboard's signed-out sessions, so it is the service user's alone."""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_dir(path: str | Path) -> Path:
    """Create `path` and any missing parents readable by us alone (0700); an existing `path`
    that is ours loses its group and other bits. Parents that already exist are left alone."""
    path = Path(path)
    missing = [p for p in [path, *path.parents] if not p.exists()]
    for folder in reversed(missing):
        try:
            os.mkdir(folder, PRIVATE_DIR)
        except FileExistsError:  # made meanwhile by another process
            pass
    tighten(path, PRIVATE_DIR)
    return path


def private_file(path: str | Path) -> Path:
    """Create `path` empty if it is missing, 0600; an existing one of ours is tightened to it."""
    path = Path(path)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    except FileExistsError:
        tighten(path, PRIVATE_FILE)
    return path


def tighten(path: Path, mode: int) -> None:
    """Drop the bits of `path`'s mode that `mode` does not allow, if the file is ours."""
    info = path.stat()
    if info.st_uid == os.geteuid() and info.st_mode & 0o777 & ~mode:
        path.chmod(info.st_mode & 0o777 & mode)
