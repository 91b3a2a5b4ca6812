"""Source fields → Item fields, the rules every source shares: plain text from HTML, hashtags
from text, lenient timestamps in UTC, clean text, and the change objects parsers hand to the
store."""

from __future__ import annotations

import dataclasses
import functools
import html.parser
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from html import unescape
from html.parser import HTMLParser

from core.errors import ParseError
from core.events import Event
from core.items import Author, Item, format_time

from .sanitise import safe_url


@dataclass(frozen=True)
class Delete:
    """A retraction: by canonical uri (Bluesky), or by an instance-local id (Mastodon)."""

    origin: str
    uri: str | None = None
    local_id: str | None = None


@dataclass(frozen=True)
class AuthorUpdate:
    """What enrichment learned about an author (a profile, its labels): every archived post
    by `author.id` takes it, an `edit` for the live pages, a `retract` when the author asks
    not to be shown (Bluesky's `!no-unauthenticated`)."""

    author: Author


@dataclass(frozen=True)
class Counts:
    """A post's reaction counts as its source tells them now. Not content: the archive and
    the pages take them, the live stream does not."""

    uri: str
    boosts: int
    likes: int
    replies: int


@dataclass(frozen=True)
class Refreshed:
    """A count refresh of `scope` (a session's slug, or "event") finished at `at` (source
    time: the replay's clock in a replay): what the pages' "counts as of" says."""

    scope: str
    at: datetime
    posts: int


@dataclass(frozen=True)
class ProfileHint:
    """A source says an author's profile changed (a Jetstream identity or account event):
    enrichment looks it up again. Never saved."""

    source: str
    author_id: str


# what a parser or enrichment hands to collector.store.save_batch
Change = Item | Delete | AuthorUpdate | Counts | Refreshed | ProfileHint


# -- clean text ---------------------------------------------------------------------------

# What no field of an item may hold: C0 controls but tab and newline (a carriage return becomes a
# newline first), DEL and the C1 controls, the bidi embeddings, overrides and isolates (they
# reorder what follows them: a name or a link can be spoofed right-to-left), and U+FFFE/U+FFFF.
# All of these are invalid in XML 1.0 or unsafe on a page. A lone surrogate (hostile JSON can
# escape one) cannot even be stored as UTF-8: it becomes U+FFFD.
_UNSAFE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ufffe\uffff]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_UNSAFE_OR_CR = re.compile(_UNSAFE.pattern[:-1] + r"\r\ud800-\udfff]")
# Names and handles lose the bidi marks as well (LRM, RLM, ALM): in text they place punctuation,
# in a name they can turn the direction of what is shown around it.
_MARKS = re.compile(r"[\u200e\u200f\u061c]")


def clean_text(text: str) -> str:
    """`text` without the characters no page, feed or export may hold (see _UNSAFE)."""
    if not _UNSAFE_OR_CR.search(text):
        return text  # the common case: one scan
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _SURROGATE.sub("\ufffd", _UNSAFE.sub("", text))


def clean_name(text: str) -> str:
    """clean_text, and no bidi marks: for names and handles."""
    text = clean_text(text)
    return _MARKS.sub("", text) if _MARKS.search(text) else text


def clean_change(change):
    """A change with every text it carries cleaned: an Item field by field (clean_item), any
    other change (a Delete, what enrichment learns) in its text and Author fields; anything
    that is not a change is returned as it is (a parser's own result types hold changes that
    a parser made, clean already)."""
    if isinstance(change, Item):
        return clean_item(change)
    if not isinstance(change, Delete | AuthorUpdate | Counts | Refreshed | ProfileHint):
        return change
    values = {}
    for f in dataclasses.fields(change):
        value = getattr(change, f.name)
        if isinstance(value, str) and _UNSAFE_OR_CR.search(value):
            values[f.name] = clean_text(value)
        elif isinstance(value, Author):
            values[f.name] = clean_author(value)
    return dataclasses.replace(change, **values) if values else change


def clean_item(item: Item) -> Item:
    """The item with clean_text in every field (clean_name in the author's name and handle)."""
    if not _needs_cleaning(item):
        return item  # the common case: a scan of each field, no copy
    media = tuple(
        dataclasses.replace(m, kind=clean_text(m.kind), url=clean_text(m.url),
                            preview_url=clean_text(m.preview_url), alt=clean_text(m.alt))
        for m in item.media
    )  # fmt: skip
    return dataclasses.replace(
        item, uri=clean_text(item.uri), origin=clean_text(item.origin),
        local_id=clean_text(item.local_id), url=clean_text(item.url),
        author=clean_author(item.author), html=clean_text(item.html), text=clean_text(item.text),
        spoiler=clean_text(item.spoiler), lang=_clean_optional(item.lang),
        tags=tuple(clean_text(t) for t in item.tags), media=media,
        links=tuple(clean_text(u) for u in item.links),
        reply_to=_clean_optional(item.reply_to), quote_of=_clean_optional(item.quote_of),
        extra=_clean_value(item.extra),
    )  # fmt: skip


def clean_author(a: Author) -> Author:
    return dataclasses.replace(
        a, id=clean_text(a.id), handle=clean_name(a.handle), name=clean_name(a.name),
        url=clean_text(a.url), avatar=clean_text(a.avatar),
    )  # fmt: skip


def _needs_cleaning(item: Item) -> bool:
    """One scan of every text the item holds, joined (a post is saved far more often than it
    needs cleaning: this is the save path's cost)."""
    a = item.author
    if _MARKS.search(a.name) or _MARKS.search(a.handle):
        return True
    texts = [item.uri, item.origin, item.local_id, item.url, item.html, item.text, item.spoiler,
             item.lang or "", item.reply_to or "", item.quote_of or "", a.id, a.handle, a.name,
             a.url, a.avatar, *item.tags, *item.links, *_strings_in(item.extra)]  # fmt: skip
    for m in item.media:
        texts += (m.kind, m.url, m.preview_url, m.alt)
    try:
        return _UNSAFE_OR_CR.search("\n".join(texts)) is not None
    except TypeError:  # a field that is not text: let the copy sort it out
        return True


def _strings_in(value) -> list[str]:
    """Every string in a JSON-like value, keys included."""
    found, todo = [], [value]
    while todo:
        node = todo.pop()
        if isinstance(node, str):
            found.append(node)
        elif isinstance(node, dict):
            todo += [str(k) for k in node]
            todo += node.values()
        elif isinstance(node, list | tuple):
            todo += node
    return found


def _clean_optional(value: str | None) -> str | None:
    return clean_text(value) if isinstance(value, str) else value


def _clean_value(value):
    """Every string in a JSON-like value cleaned (extra: titles, ids, a bridged uri)."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(k)): _clean_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean_value(v) for v in value]
    return value


# -- text ---------------------------------------------------------------------------------

_BLOCKS = {"p", "li", "blockquote", "pre", "ul", "ol", "div", "h1", "h2", "h3", "h4", "h5", "h6"}


class _TextAndLinks(HTMLParser):
    """Collects the plain text of HTML, and the hrefs of anchors that are not mentions or tags."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")
        elif tag in _BLOCKS:
            self.parts.append("\n\n")
        elif tag == "a":
            self._anchor(dict(attrs))

    def handle_endtag(self, tag: str) -> None:
        if tag in _BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def _anchor(self, attrs: dict[str, str | None]) -> None:
        url = _anchor_link(attrs)
        if url and url not in self.links:
            self.links.append(url)


def _read(html: str) -> _TextAndLinks:
    parser = _TextAndLinks()
    parser.feed(html or "")
    parser.close()
    return parser


def html_to_text(html: str) -> str:
    """Plain text of HTML: paragraphs apart by a blank line, <br> as a newline."""
    return _tidy("".join(_read(html).parts))


def _tidy(text: str) -> str:
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", text).strip()


_BLANK_LINES = re.compile(r"\n{3,}")
# A tag as the sanitiser writes it: lowercase name, attributes always double-quoted with `"`
# escaped, so a `>` can only end the tag outside quotes.
_CLEAN_TAG = re.compile(r'<(/?)([a-z][a-z0-9]*)(?:\s+[^\s=>/"]+(?:="[^"]*")?)*\s*/?>')
_CLEAN_HREF = re.compile(r'<a\s[^>]*?href="([^"]*)"')


def text_of_clean_html(html: str) -> str:
    """html_to_text for what sanitise_html returns, in one regex pass instead of a parser.

    The sanitiser's serialiser writes regular HTML (no comments, no CDATA, quoted attributes),
    so splitting it at tags is exact; the result is the same as html_to_text's."""
    if "<" not in html:
        return _tidy(unescape(html))
    text = _CLEAN_TAG.sub(_tag_text, html)
    return _tidy(unescape(text) if "&" in html else text)


def _tag_text(match: re.Match) -> str:
    """What a tag stands for in plain text: a newline for <br>, a blank line around blocks."""
    known = _TAG_TEXT.get(match[0])
    if known is not None:
        return known
    tag = match[2]
    if tag == "br":
        return "" if match[1] else "\n"
    return "\n\n" if tag in _BLOCKS else ""


# The tags as the sanitiser writes them, looked up whole (anything else takes _tag_text's path).
_TAG_TEXT = {"<br>": "\n"} | {
    f"<{slash}{tag}>": "\n\n" if tag in _BLOCKS else ""
    for tag in ("p", "li", "blockquote", "pre", "ul", "ol", "span", "strong", "em", "b", "i",
                "u", "code", "a")
    for slash in ("", "/")
}  # fmt: skip


def links_in_html(html: str) -> list[str]:
    """http(s) links a post points at, without its mention and hashtag links."""
    return _read(html).links


# A start tag of an anchor in untrusted HTML: quoted values may hold `>`. Its attributes are
# read with HTMLParser's own patterns, so links_in_post agrees with links_in_html.
_TAGFIND = html.parser.tagfind_tolerant
_ATTRFIND = html.parser.attrfind_tolerant
_RAW_ANCHOR = re.compile(r"""<a\s(?:[^>"']|"[^"]*"|'[^']*')*>""", re.IGNORECASE)


def links_in_post(raw: str, clean: str) -> list[str]:
    """links_in_html(raw), reading only the anchors, and keeping only links the sanitised
    HTML still shows (an anchor inside a dropped <iframe> or comment is not the post's)."""
    if "<a " not in clean:
        return []
    shown = {unescape(href) for href in _CLEAN_HREF.findall(clean)}
    links: list[str] = []
    for tag in _RAW_ANCHOR.findall(raw):
        url = _raw_anchor_link(tag)
        if url and url in shown and url not in links:
            links.append(url)
    return links


@functools.lru_cache(maxsize=16384)  # hashtag and mention anchors repeat across posts
def _raw_anchor_link(tag: str) -> str | None:
    attrs = _start_tag_attrs(tag)
    return _anchor_link(attrs) if attrs is not None else None


def _start_tag_attrs(tag: str) -> dict[str, str | None] | None:
    """The attributes of one start tag, read as HTMLParser.parse_starttag reads them (with
    its own patterns); None when it would not take the text as a tag."""
    match = _TAGFIND.match(tag, 1)
    if match is None:
        return None
    attrs: list[tuple[str, str | None]] = []
    k, end = match.end(), len(tag) - 1
    while k < end:
        m = _ATTRFIND.match(tag, k, end)
        if not m:
            break
        name, rest, value = m.group(1, 2, 3)
        if not rest:
            value = None
        elif value[:1] == "'" == value[-1:] or value[:1] == '"' == value[-1:]:
            value = value[1:-1]
        if value:
            value = unescape(value)
        attrs.append((name.lower(), value))
        k = m.end()
    if tag[k:].strip() not in (">", "/>"):
        return None
    return dict(attrs)


def _anchor_link(attrs: dict[str, str | None]) -> str | None:
    classes = (attrs.get("class") or "").split()
    rels = (attrs.get("rel") or "").split()
    if "mention" in classes or "hashtag" in classes or "tag" in rels:
        return None
    return safe_url(attrs.get("href"))


# -- hashtags -----------------------------------------------------------------------------

_INVISIBLE = {"\u00ad", "\u2060", "\u200a", "\u200b", "\u200c", "\u200d", "\u20e2"}
MAX_TAG = 64


def _tag_char(c: str) -> bool:
    return not c.isspace() and c not in _INVISIBLE


def _punct(c: str) -> bool:
    return unicodedata.category(c).startswith("P")


# A '#' at the start or after whitespace, and the run of tag characters after it (re's \s is
# str.isspace for str patterns).
_TAG_RUN = re.compile("(?<!\\S)[#＃]([^\\s" + "".join(sorted(_INVISIBLE)) + "]*)")


def tags_from_text(text: str) -> list[str]:
    """Hashtags in plain text, lowercased, following Bluesky's RichText rules: a tag starts
    after whitespace, trailing punctuation is not part of it, all-digit tags don't count, and
    tags over 64 characters are not tags."""
    tags: list[str] = []
    if "#" not in text and "＃" not in text:
        return tags
    for match in _TAG_RUN.finditer(text):
        tag = _clean_tag(match.group(1))
        if tag and tag not in tags:
            tags.append(tag)
    return tags


def _tags_from_text_slow(text: str) -> list[str]:
    """The character-by-character reading tags_from_text's pattern must agree with (tests)."""
    tags: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c in "#＃" and (i == 0 or text[i - 1].isspace()):
            j = i + 1
            while j < len(text) and _tag_char(text[j]):
                j += 1
            tag = _clean_tag(text[i + 1 : j])
            if tag and tag not in tags:
                tags.append(tag)
            i = j
        else:
            i += 1
    return tags


@functools.lru_cache(maxsize=8192)  # the event's hashtags recur in nearly every post
def _clean_tag(run: str) -> str | None:
    if not run or run[0] == "\ufe0f":
        return None
    while run and _punct(run[-1]):
        run = run[:-1]
    if not any(not (c.isdigit() or _punct(c)) for c in run) or len(run) > MAX_TAG:
        return None
    return run.casefold()


def event_hashtags(event: Event) -> set[str]:
    """Every hashtag that makes a post the event's: the event's, the rooms' and the talks'."""
    tags = set(event.hashtags) | {r.hashtag for r in event.rooms if r.hashtag}
    tags |= {p.hashtag for p in event.presentations if p.hashtag}
    return {t.lstrip("#").casefold() for t in tags}


def normalise_tags(*groups) -> tuple[str, ...]:
    """Lowercased tags without '#', first occurrence kept, in order."""
    seen: list[str] = []
    for group in groups:
        for tag in group or ():
            tag = str(tag).strip().lstrip("#＃").casefold()
            if tag and tag not in seen:
                seen.append(tag)
    return tuple(seen)


# -- time ---------------------------------------------------------------------------------


# A source time outside these years is a broken field, not a post from then: refusing it here
# keeps year-9999 arithmetic (and OverflowError) out of every later step.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)


def parse_source_time(value, what: str = "time") -> datetime:
    """A source timestamp as aware UTC. Accepts Z, +00:00, no zone (taken as UTC), epoch seconds.
    Raises ParseError for anything else, including times outside 1970..3000."""
    if isinstance(value, str):
        parsed = _parse_time_text(value, what)  # a replay reads each line's time more than once
    elif isinstance(value, int | float) and not isinstance(value, bool):
        parsed = _from_epoch(value, what)
    else:
        raise ParseError(f"missing {what}")
    if not EARLIEST <= parsed < LATEST:
        raise ParseError(f"{what} out of range: {format_time(parsed)}")
    return parsed


def _from_epoch(value: int | float | str, what: str) -> datetime:
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (ValueError, OverflowError, OSError):
        raise ParseError(f"bad {what} {str(value)[:40]!r}") from None


@functools.lru_cache(maxsize=4096)
def _parse_time_text(value: str, what: str) -> datetime:
    if value.isdigit():
        return _from_epoch(value, what)
    if not value.strip():
        raise ParseError(f"missing {what}")
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ParseError(f"bad {what} {value[:40]!r}") from None


def as_list(value) -> list:
    """A payload's list, or [] when the field holds anything else (a shape nobody promised)."""
    return value if isinstance(value, list) else []


def as_dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def as_text(value) -> str:
    """A payload's string, or "" when the field holds anything else."""
    return value if isinstance(value, str) else ""


MAX_COUNT = 2**53  # a count, width or height past this is a broken field (and no SQLite int)


def as_count(value) -> int:
    """A non-negative integer field (a count, a size); 0 when it is anything else."""
    return value if type(value) is int and 0 < value < MAX_COUNT else 0


def clamp(value: datetime, latest: datetime) -> datetime:
    """A claimed time no later than when the source saw it (clients' clocks lie)."""
    return min(value, latest)


def first(*values):
    """The first value that is not None or empty."""
    return next((v for v in values if v), None)


class SkipItem(Exception):
    """A well-formed payload we deliberately do not archive (a private status, a post without
    the event's hashtags). Counted, never logged as malformed."""
