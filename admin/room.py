"""The dashboard's part in the room: organizer notes (Markdown, previewed before posting) and
pinned posts (pin, unpin), made through collector.notes and collector.pins, the same code as
`python -m collector note` and `pin`/`unpin`.

Blocking (SQLite, Redis); the app runs these in a worker thread. Posts are shown as plain text,
never as HTML; only a note's preview is HTML, and it is what the collector's sanitiser returned.
"""

from __future__ import annotations

import json
from typing import Any

from markupsafe import Markup

from collector.notes import make_note, post_note, render_note
from collector.pins import Pinner
from core.archive import open_archive
from core.errors import AfaError
from core.pins import pins
from core.settings import Settings

from .moderate import post_from, recent_posts

NOTE_CHARS = 5_000


def view(settings: Settings, event: str) -> dict[str, Any]:
    """The pinned posts (with their status: a hidden one stays pinned but off the pages) and the
    latest posts, each with its pin state."""
    db = open_archive(settings.archive_path)
    try:
        pinned = []
        for pin in pins(db, event):
            row = db.execute(
                "SELECT data, status FROM items WHERE event = ? AND uri = ?", [event, pin.uri]
            ).fetchone()
            if row is not None:
                pinned.append(post_from(json.loads(row[0]), row[1], f"pinned by {pin.who}"))
        uris = {p.uri for p in pinned}
        recent = [p for p in recent_posts(db, event) if p.status == "visible"]
        return {"event": event, "pinned": pinned, "recent": recent, "pinned_uris": uris}
    finally:
        db.close()


def note_text(form: dict[str, str]) -> str:
    text = form.get("text", "").strip()
    if not text:
        raise AfaError("a note needs some text")
    if len(text) > NOTE_CHARS:
        raise AfaError(f"a note is at most {NOTE_CHARS} characters")
    return text


def preview(form: dict[str, str]) -> Markup:
    """The note's HTML exactly as it will be posted (rendered, then sanitised by the collector)."""
    return Markup(render_note(note_text(form)))


def post(settings: Settings, event: str, form: dict[str, str], who: str) -> str:
    author = " ".join(form.get("author", "").split())[:60] or "Organizers"
    item = make_note(event, note_text(form), author, markdown=True)
    return post_note(settings, event, item, pin=form.get("pin") == "1", who=who).summary()


def pin(settings: Settings, event: str, action: str, form: dict[str, str], who: str) -> str:
    uri = form.get("uri", "").strip()
    pinner = Pinner.open(settings)
    try:
        if action == "pin":
            return pinner.pin(event, uri, who=who, why=form.get("why", "")).summary()
        return pinner.unpin(event, uri, who=who, why=form.get("why", "")).summary()
    finally:
        pinner.close()
