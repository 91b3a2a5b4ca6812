"""Rebuild requests: a moderation decision that changes what pages show asks the site scheduler
to rebuild the event.

A request is `<var_dir>/rebuild/<event>.json` ({"event", "at", "reason", "last_seq"}), written
by `request_rebuild`; the site scheduler calls `take_rebuild_request` (an atomic rename, so a
request written during a build is never lost) and rebuilds when it returns a request.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .items import format_time


def rebuild_request_path(var_dir: Path, event: str) -> Path:
    return Path(var_dir) / "rebuild" / f"{event}.json"


def request_rebuild(var_dir: Path, event: str, reason: str, last_seq: int = 0) -> Path:
    """Ask the site scheduler to rebuild `event` (written atomically; a newer request replaces)."""
    path = rebuild_request_path(var_dir, event)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"event": event, "at": format_time(datetime.now(UTC)), "reason": reason,
            "last_seq": last_seq}  # fmt: skip
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(body) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def take_rebuild_request(var_dir: Path, event: str) -> dict[str, Any] | None:
    """The pending rebuild request for `event`, removed as it is taken; None when there is none."""
    path = rebuild_request_path(var_dir, event)
    taken = path.with_suffix(f".taken.{os.getpid()}")
    try:
        os.replace(path, taken)
    except FileNotFoundError:
        return None
    try:
        return json.loads(taken.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"event": event, "reason": "unreadable request"}
    finally:
        taken.unlink(missing_ok=True)
