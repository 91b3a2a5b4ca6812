"""Organizer notes: an announcement posted into an event's stream like any other post.

A note's text is plain (paragraphs kept) or, with `markdown=True`, Markdown: rendered by the
Markdown library and then passed through the collector's one sanitiser, so a note can hold no
more than a post can (a heading keeps its text, an image or a script goes). A `#` before a
word is a hashtag, never a heading. `post_note` is what the CLI (`collector note`) and the
dashboard call: the note is archived, published, and pinned when asked.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import markdown as markdown_lib

from core.items import Author, Item
from core.moderation.pins import Pinner
from core.settings import Settings

from .normalise import clean_item, normalise_tags, tags_from_text, text_of_clean_html
from .pipeline import Pipeline
from .sanitise import sanitise_html, text_to_html

SOURCE = "note"
_HASHTAG_AT_LINE_START = re.compile(r"^(\s*)#(?=[^\s#])", re.MULTILINE)


def make_note(event: str, text: str, author: str = "Organizers", now: datetime | None = None,
              note_id: str | None = None, markdown: bool = False) -> Item:  # fmt: skip
    """An Item for an organizer's announcement (plain text escaped, or Markdown sanitised)."""
    text = text.strip()
    if not text:
        raise ValueError("a note needs some text")
    note_id = note_id or str(uuid.uuid4())
    author = author.strip() or "Organizers"
    html = render_note(text) if markdown else text_to_html(text)
    plain = text_of_clean_html(html) if markdown else text
    return clean_item(Item(  # pasted text may carry what a feed cannot: cleaned as a post's
        uri=f"urn:afa:note:{event}:{note_id}", source=SOURCE, origin="organizer",
        local_id=note_id, url="", created_at=now or datetime.now(UTC),
        author=Author(id=f"urn:afa:organizer:{event}:{author}", name=author),
        html=html, text=plain, tags=normalise_tags(tags_from_text(plain)),
    ))  # fmt: skip


def render_note(text: str) -> str:
    """Markdown → the HTML a note shows (the dashboard's preview is exactly this)."""
    source = _HASHTAG_AT_LINE_START.sub(r"\1\\#", text)  # "#northwind26 …" is no heading
    return sanitise_html(markdown_lib.markdown(source, extensions=["sane_lists"]))


@dataclass
class Posted:
    item: Item
    seq: int | None
    published: bool
    redis_error: str = ""
    pinned: str = ""  # the pin's summary, when asked to pin it

    def summary(self) -> str:
        text = f"note {self.item.uri} (seq {self.seq if self.seq else '-'})"
        if self.redis_error:
            text += f"; archived, not yet live (Redis: {self.redis_error}), the collector will re-seed it"
        if self.pinned:
            text += f"; {self.pinned}"
        return text


def post_note(settings: Settings, event: str, item: Item, *, pin: bool = False,
              who: str = "organizer") -> Posted:  # fmt: skip
    """Archive the note and publish it (when Redis is set) through the pipeline every
    collector uses, and pin it when asked."""
    pipeline = Pipeline.open(settings)
    try:
        committed = pipeline.commit(event, "note", [item], None).changes
        posted = Posted(item, committed[0].seq if committed else None, False)
        if pipeline.redis is not None:
            posted.redis_error = pipeline.redis_errors.get(event, "")
            posted.published = bool(committed) and not posted.redis_error
        if pin and committed:
            with pipeline.lock:
                pinner = Pinner(pipeline.db, pipeline.redis, tail_length=settings.tail_length)
                posted.pinned = pinner.pin(
                    event, item.uri, who=who, why="pinned as it was posted"
                ).summary()
    finally:
        pipeline.close()
    return posted
