"""Organizer notes: an announcement posted into an event's stream like any other post."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from core.items import Author, Item

from .normalise import normalise_tags, tags_from_text
from .sanitise import text_to_html

SOURCE = "note"


def make_note(event: str, text: str, author: str = "Organizers", now: datetime | None = None,
              note_id: str | None = None) -> Item:  # fmt: skip
    """An Item for an organizer's plain-text announcement (escaped, paragraphs kept)."""
    text = text.strip()
    if not text:
        raise ValueError("a note needs some text")
    note_id = note_id or str(uuid.uuid4())
    author = author.strip() or "Organizers"
    return Item(
        uri=f"urn:afa:note:{event}:{note_id}", source=SOURCE, origin="organizer",
        local_id=note_id, url="", created_at=now or datetime.now(UTC),
        author=Author(id=f"urn:afa:organizer:{event}:{author}", name=author),
        html=text_to_html(text), text=text, tags=normalise_tags(tags_from_text(text)),
    )  # fmt: skip
