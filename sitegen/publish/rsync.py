"""Publish to an ordinary web server's folder with rsync: a local path, `host:path` over SSH, or
`rsync://host/module/path` (an rsync daemon; its password from RSYNC_PASSWORD).

rsync finds what changed itself (size and modification time to the nanosecond, which the build
keeps on the files it did not rewrite), and one run keeps the publish order: `--delay-updates` puts every new and
changed file in place together at the end of the transfer, and `--delete-delay` deletes the
files the build dropped after that. A run killed midway leaves its partial files in
`.~tmp~/` folders, which the next run finishes and removes. The manifest and the build cache
stay home. With AFA_PUBLISH_GZIP on, a KEY.gz copy of each compressible file goes beside it,
for the web server's `gzip_static` (gzipped.py).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from core.redisconn import redact

from .plan import MANIFEST, PublishError

STATS = [  # from --stats, in RsyncResult's order (3.2 writes 1,234; some locales 1.234)
    r"^Number of regular files transferred: ([\d,.]+)",
    r"^Total bytes sent: ([\d,.]+)",
    r"^Number of deleted files: ([\d,.]+)",
    r"^Number of files: [\d,.]+ \(reg: ([\d,.]+)",
]
EXCLUDES = [f"/{MANIFEST}", "/.build-cache/", ".*.tmp", "/.shas.json"]


@dataclass
class RsyncResult:
    files: int  # regular files sent
    bytes: int
    deleted: int
    total: int  # regular files in the sources


def rsync_command(output: Path, destination: str, mirror: Path | None = None) -> list[str]:
    """One run for output/ and, when given, the mirror of its .gz copies (gzipped.py)."""
    binary = shutil.which("rsync")
    if binary is None:
        raise PublishError("rsync is not installed (Debian: apt-get install rsync)")
    excludes = [f"--exclude={pattern}" for pattern in EXCLUDES]
    # --modify-window=-1: compare modification times to the nanosecond. At rsync's default
    # (whole seconds) a file rewritten within the second it was last published, at the same
    # size (Pagefind's entry file, rebuilt a moment later), looked unchanged and stayed stale.
    return [binary, "--recursive", "--links", "--times", "--modify-window=-1", "--perms",
            "--chmod=D755,F644",
            "--delay-updates", "--delete-delay", *excludes, "--stats",
            f"{output}/", *([f"{mirror}/"] if mirror else []), destination]  # fmt: skip


def run_rsync(
    output: Path, destination: str, mirror: Path | None = None, timeout: float = 3600
) -> RsyncResult:
    command = rsync_command(Path(output), destination, mirror)
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if done.returncode:
        message = " ".join((done.stderr or done.stdout).split())[:400]
        raise PublishError(f"rsync to {redact(destination)} failed ({done.returncode}): {message}")
    return RsyncResult(*(_stat(done.stdout, pattern) for pattern in STATS))


def _stat(text: str, pattern: str) -> int:
    found = re.search(pattern, text, re.M)
    return int(re.sub(r"[,.]", "", found.group(1))) if found else 0
