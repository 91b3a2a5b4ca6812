"""What a post says, independent of the source that carries it.

A Draft holds its text as segments, rendered later into Mastodon HTML or Bluesky text + facets:
("text", s), ("tag", as_typed), ("link", url), ("mention", Author), ("emoji", shortcode),
("raw", html: a hostile probe), ("para",).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime

from core.events import Event

from . import hostile
from .ids import blurhash
from .plan import Moment, choose_tags
from .world import (
    BREAK_LINES,
    CUSTOM_EMOJI,
    EMOJI_TAILS,
    EVENING_LINES,
    FOREIGN_LINES,
    MORNING_LINES,
    POINTS,
    QUOTES,
    TALK_LINES,
    Author,
)

ALT_TEXTS = (
    "A speaker on a stage in front of a large slide reading “{title}”.",
    "The Main Hall of the Zuiderkerk, wooden beams and rows of people with laptops.",
    "A slide with a bar chart; most bars are small and one is very tall.",
    "Coffee cups and stroopwafels on a long table during the break.",
    "{first} pointing at a diagram of boxes and arrows.",
    "Selfie of three attendees with conference badges, smiling.",
    "会場の様子。たくさんの人がスライドを見ている。",
    "Зал с людьми, на экране слайд доклада.",
)
SIZES = ((1280, 720), (1024, 768), (1600, 1200), (1080, 1350), (2048, 1536), (960, 1280))
CW_TEXTS = (
    "food pic",
    "spoilers for the keynote ending",
    "long thread",
    "eye contact",
    "🍺 alcohol",
)


@dataclass
class Image:
    alt: str | None
    width: int
    height: int
    name: str  # file stem
    blurhash: str


@dataclass
class Draft:
    author: Author
    created: datetime
    moment: Moment
    segments: list[tuple] = field(default_factory=list)
    lang: str | None = "en"
    tags: list[str] = field(default_factory=list)  # as typed
    spoiler: str = ""
    sensitive: bool = False
    images: list[Image] = field(default_factory=list)
    hostile: str | None = None
    link: str | None = None

    def plain(self) -> str:
        return "".join(s[1] for s in self.segments if s[0] == "text")


def talk_words(rng: random.Random, event: Event, moment: Moment) -> dict[str, str]:
    talk = moment.talk or rng.choice(event.presentations)
    speaker = rng.choice(talk.speakers)
    return {
        "title": talk.title,
        "first": speaker.split()[0],
        "quote": rng.choice(QUOTES),
        "point": rng.choice(POINTS),
        "room": event.room(talk.room).name,
        "event": event.name,
    }


def link_for(rng: random.Random, moment: Moment, author: Author) -> str:
    slug = moment.talk.slug if moment.talk else "hallway-notes"
    speaker = moment.talk.speakers[0].lower().replace(" ", "") if moment.talk else author.username
    return rng.choice(
        (
            f"https://speakerdeck.com/{speaker}/{slug}",
            f"https://github.com/northwind-conf/{slug}-demo",
            f"https://github.com/{author.username}/notes/blob/main/northwind26/{slug}.md",
            f"https://{author.username}.example.dev/blog/2026/10/northwind-{slug}/",
            f"https://northwind.example.org/2026/talks/{slug}?utm_source=mastodon&ref=live",
            f"https://www.youtube.com/watch?v={''.join(rng.choice('abcdefXYZ0123_-') for _ in range(11))}",
        )
    )


def compose(
    rng: random.Random,
    event: Event,
    author: Author,
    moment: Moment,
    mention_pool: list[Author],
    hostile_kind: str | None = None,
) -> Draft:
    draft = Draft(author=author, created=moment.at, moment=moment, lang=author.lang)
    words = talk_words(rng, event, moment)
    if author.lang in FOREIGN_LINES and rng.random() < 0.85:
        line = rng.choice(FOREIGN_LINES[author.lang])
    else:
        draft.lang = "en"
        bank = {
            "talk": TALK_LINES,
            "break": BREAK_LINES,
            "hallway": BREAK_LINES,
            "morning": MORNING_LINES,
        }
        line = rng.choice(bank.get(moment.kind, EVENING_LINES))
    seg = draft.segments
    if mention_pool and rng.random() < 0.1:
        seg += [("mention", rng.choice(mention_pool)), ("text", " ")]
    seg.append(("text", line.format(**words) + rng.choice(EMOJI_TAILS)))
    if author.source == "mastodon" and rng.random() < 0.05:
        seg += [("text", " "), ("emoji", rng.choice(CUSTOM_EMOJI))]
    if rng.random() < 0.18:
        draft.link = link_for(rng, moment, author)
        seg += [
            ("para",),
            ("text", rng.choice(("Slides: ", "Code: ", "My notes: ", ""))),
            ("link", draft.link),
        ]
    draft.tags = choose_tags(rng, event, moment)
    if author.hostile and hostile_kind is None:
        hostile_kind = "display_name"
    if hostile_kind:
        add_hostile(draft, hostile_kind)
    _add_tags(rng, draft)
    _add_images(rng, draft, words)
    if rng.random() < 0.02:
        draft.spoiler = rng.choice(CW_TEXTS)
        draft.sensitive = True
    if draft.lang and rng.random() < 0.03:
        draft.lang = None  # clients do not always say
    return draft


def add_hostile(draft: Draft, kind: str) -> None:
    draft.hostile = kind
    seg = draft.segments
    seg.append(("text", f" {hostile.MARKER} "))
    if kind in hostile.MASTODON_HTML:
        seg.append(("raw", hostile.MASTODON_HTML[kind]))
    elif kind in hostile.BLUESKY_TEXT and hostile.BLUESKY_TEXT[kind]:
        seg.append(("raw", hostile.BLUESKY_TEXT[kind]))
    elif kind == "bluesky_js_link":
        seg += [("text", "slides here: "), ("link", hostile.BLUESKY_JS_URI)]
    elif kind == "spoiler":
        draft.spoiler = hostile.HOSTILE_SPOILER
        draft.sensitive = True


def _add_tags(rng: random.Random, draft: Draft) -> None:
    tags = [("tag", t) for t in draft.tags]
    spaced = [part for t in tags for part in (("text", " "), t)]
    if rng.random() < 0.7:
        draft.segments += [("para",), *spaced[1:]]
    else:
        draft.segments += spaced


def _add_images(rng: random.Random, draft: Draft, words: dict[str, str]) -> None:
    chance = 0.12 if draft.author.source == "bluesky" else 0.08
    if rng.random() >= chance:
        return
    for _ in range(rng.choice((1, 1, 1, 2, 3, 4))):
        width, height = rng.choice(SIZES)
        alt = rng.choice(ALT_TEXTS).format(**words) if rng.random() < 0.8 else None
        name = "".join(rng.choice("0123456789abcdef") for _ in range(16))
        draft.images.append(Image(alt, width, height, name, blurhash(rng)))
    if rng.random() < 0.08:
        draft.sensitive = True
