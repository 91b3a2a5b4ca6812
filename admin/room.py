"""The dashboard's part in the room: organizer notes (Markdown, previewed before posting) and
pinned posts (pin, unpin).

Pins are made by core.moderation.pins, as the command line's `pin`/`unpin` make them. A note is
the collector's to make (its sanitiser, its save path), and the dashboard imports only core: so
it runs the organizer's own command, `python -m collector note --markdown` (with `--preview` for
the preview), with the dashboard's environment. Blocking; the app runs these in a worker thread.
Posts are shown as plain text, never as HTML; only a note's preview is HTML, and it is what the
collector's sanitiser returned.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from markupsafe import Markup

from core.archive import open_archive
from core.errors import AfaError
from core.moderation.pins import Pinner, pins
from core.settings import Settings

from .moderate import post_from, recent_posts

NOTE_CHARS = 5_000


def view(settings: Settings, event: str) -> dict[str, Any]:
    """The pinned posts (with their status: a hidden one stays pinned but off the pages) and the
    latest visible posts."""
    db = open_archive(settings.archive_path)
    try:
        pinned = []
        for pin in pins(db, event):
            row = db.execute(
                "SELECT data, status FROM items WHERE event = ? AND uri = ?", [event, pin.uri]
            ).fetchone()
            if row is not None:
                pinned.append(post_from(json.loads(row[0]), row[1], f"pinned by {pin.who}"))
        recent = [p for p in recent_posts(db, event) if p.status == "visible"]
        return {"event": event, "pinned": pinned, "recent": recent,
                "pinned_uris": {p.uri for p in pinned}}  # fmt: skip
    finally:
        db.close()


def note_text(form: dict[str, str]) -> str:
    text = form.get("text", "").strip()
    if not text:
        raise AfaError("a note needs some text")
    if len(text) > NOTE_CHARS:
        raise AfaError(f"a note is at most {NOTE_CHARS} characters")
    return text


def preview(event: str, form: dict[str, str]) -> Markup:
    """The note's HTML exactly as it will be posted (rendered, then sanitised by the collector)."""
    return Markup(_note(event, form, "--preview"))


def post(event: str, form: dict[str, str], who: str) -> str:
    pin = ["--pin"] if form.get("pin") == "1" else []
    return " ".join(_note(event, form, "--by", who, *pin).split())


def _note(event: str, form: dict[str, str], *extra: str) -> str:
    author = " ".join(form.get("author", "").split())[:60] or "Organizers"
    args = [sys.executable, "-m", "collector", "note", event, note_text(form), "--markdown",
            "--author", author, *extra]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
        raise AfaError(lines[-1].removeprefix("Error: ") if lines else "the note command failed")
    return done.stdout.strip()


def pin(settings: Settings, event: str, action: str, form: dict[str, str], who: str) -> str:
    uri = form.get("uri", "").strip()
    pinner = Pinner.open(settings)
    try:
        if action == "pin":
            return pinner.pin(event, uri, who=who, why=form.get("why", "")).summary()
        return pinner.unpin(event, uri, who=who, why=form.get("why", "")).summary()
    finally:
        pinner.close()
