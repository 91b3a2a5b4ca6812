"""Publish to an ordinary web server's folder with rsync: a local path, `host:path` over SSH, or
`rsync://host/module/path` (an rsync daemon; its password from RSYNC_PASSWORD).

rsync finds what changed itself (size and modification time, which the build keeps on the files
it did not rewrite), and one run keeps the publish order: `--delay-updates` puts every new and
changed file in place together at the end of the transfer, and `--delete-delay` deletes the
files the build dropped after that. A run killed midway leaves its partial files in
`.~tmp~/` folders, which the next run finishes and removes. The manifest and the build cache
stay home.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from core.redisconn import redact

from .plan import MANIFEST, PublishError

EXCLUDES = [f"/{MANIFEST}", "/.build-cache/", ".*.tmp"]


@dataclass
class RsyncResult:
    files: int
    bytes: int
    deleted: int


def rsync_command(output: Path, destination: str) -> list[str]:
    binary = shutil.which("rsync")
    if binary is None:
        raise PublishError("rsync is not installed (Debian: apt-get install rsync)")
    excludes = [f"--exclude={pattern}" for pattern in EXCLUDES]
    return [binary, "--recursive", "--links", "--times", "--perms", "--chmod=D755,F644",
            "--delay-updates", "--delete-delay", *excludes, "--stats",
            f"{output}/", destination]  # fmt: skip


def run_rsync(output: Path, destination: str, timeout: float = 3600) -> RsyncResult:
    command = rsync_command(Path(output), destination)
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if done.returncode:
        message = " ".join((done.stderr or done.stdout).split())[:400]
        raise PublishError(f"rsync to {redact(destination)} failed ({done.returncode}): {message}")
    return RsyncResult(
        _stat(done.stdout, "Number of regular files transferred"),
        _stat(done.stdout, "Total bytes sent"),
        _stat(done.stdout, "Number of deleted files"),
    )


def _stat(text: str, name: str) -> int:
    found = re.search(rf"^{re.escape(name)}: ([\d,.]+)", text, re.M)
    return int(found.group(1).replace(",", "").replace(".", "")) if found else 0
