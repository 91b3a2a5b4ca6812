"""Full-text search with no server: Pagefind (its Python package ships the binary) indexes each
event's archive pages, and the event's search page loads Pagefind's own UI from the index.

Each post appears on exactly one archive page, inside `data-pagefind-body`; posts from `noindex`
accounts carry `data-pagefind-ignore`, so they are never in an index. Pagefind writes into a
temporary folder, and every file it made goes through the writer like any page: atomic, listed
in the manifest, and skipped when its bytes did not change. It runs only for events whose
archive pages changed in this build.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from core.errors import AfaError


class SearchError(AfaError):
    """Pagefind failed; its output is in the message."""


def index_event(output: Path, slug: str, write: Callable[[str, bytes], None]) -> int:
    """Index output/<slug>/archive/ and hand each index file to write(relpath, bytes)."""
    with tempfile.TemporaryDirectory(prefix="afa-pagefind-") as tmp:
        command = [
            sys.executable, "-m", "pagefind", "--site", str(output),
            "--glob", f"{slug}/archive/page-*/index.html", "--output-path", tmp, "--silent",
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        if done.returncode:
            raise SearchError(f"pagefind failed for {slug}: {done.stdout}{done.stderr}")
        files = sorted(p for p in Path(tmp).rglob("*") if p.is_file())
        for path in files:
            write(f"{slug}/pagefind/{path.relative_to(tmp).as_posix()}", path.read_bytes())
        return len(files)
