"""Pre-compressed copies for a web server: KEY.gz beside each compressible file, which nginx's
`gzip_static on` (and Caddy's `precompressed gzip`, Apache with a rewrite) sends to browsers that
accept gzip, with no compression work per request.

They are kept in a mirror folder under var/publish/ (output/ holds only what the build wrote)
and rsync sends the mirror together with output/: each copy is made again only when the
manifest's sha256 of its file changed, carries its file's modification time, and goes away with
its file.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

from .headers import compressible

SHAS = ".shas.json"


def refresh_mirror(output: Path, files: dict[str, str], mirror: Path) -> int:
    """Bring mirror/ to one KEY.gz per compressible file of the build; returns copies made."""
    mirror.mkdir(parents=True, exist_ok=True)
    try:
        known = json.loads((mirror / SHAS).read_text())
    except (OSError, ValueError):
        known = {}
    wanted = {key: sha for key, sha in files.items() if compressible(key)}
    made = 0
    for key, sha in wanted.items():
        target = mirror / f"{key}.gz"
        if known.get(key) == sha and target.exists():
            continue
        source = output / key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(gzip.compress(source.read_bytes(), compresslevel=6, mtime=0))
        stat = source.stat()
        os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        known[key] = sha
        made += 1
    for key in set(known) - set(wanted):
        (mirror / f"{key}.gz").unlink(missing_ok=True)
        del known[key]
    (mirror / SHAS).write_text(json.dumps(known))
    return made
