"""The one HTML sanitiser policy (Ammonia, through nh3), the http(s)-only URL filter, and the
plain text → HTML conversion for sources whose posts are text (Bluesky, Flickr titles).

Everything a source sends is hostile. Whatever this module returns is what sitegen marks safe
and what the live page inserts, so the policy is deliberately small: text formatting, lists,
quotes, code, and links to http(s) URLs only.
"""

from __future__ import annotations

import functools
import html as htmllib
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

import nh3

LINK_REL = "nofollow ugc noopener"
ALLOWED_TAGS = {
    "p", "br", "a", "span", "strong", "em", "b", "i", "u",
    "code", "pre", "blockquote", "ul", "ol", "li",
}  # fmt: skip
# Elements whose *content* goes too: a script's text is not prose.
DROPPED_WITH_CONTENT = {
    "script",
    "style",
    "iframe",
    "object",
    "embed",
    "noscript",
    "template",
    "svg",
    "textarea",
    "select",
    "title",
}
SCHEMES = {"http", "https"}

# Ammonia keeps an <a> whose href it removed; nothing can follow it, so unwrap it to its text.
# Ammonia's serialiser output is regular (and anchors never nest in parsed HTML), so a
# pattern over *its* output is exact here.
_DEAD_ANCHOR = re.compile(rf'<a rel="{LINK_REL}">(.*?)</a>', re.DOTALL)


# control characters (C0, DEL, C1), any whitespace, and what text cleaning would take out of the
# URL after this check (bidi controls and marks, noncharacters, lone surrogates): a URL holding
# one is hostile, and cleaning it later could leave a different URL, or none
_BAD = r"\x00-\x20\x7f-\x9f\s\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069\ufffe\uffff\ud800-\udfff"
_BAD_URL_CHAR = re.compile(f"[{_BAD}]")


# The common shape, decided without urlsplit: http(s)://, an ASCII host name (and port), then
# anything without whitespace or control characters. Everything this accepts, _safe_url accepts
# (tests/collector/test_sanitise.py checks the two agree); everything else goes to _safe_url.
_PLAIN_URL = re.compile(
    rf"[hH][tT][tT][pP][sS]?://[A-Za-z0-9.\-]+(?::[0-9]*)?(?:[/?#][^{_BAD}]*)?\Z"
)


def safe_url(url: str | None) -> str | None:
    """The URL when it is an absolute http(s) URL with a host, else None."""
    if not url or not isinstance(url, str):
        return None
    if _PLAIN_URL.match(url):
        return url
    return _safe_url(url)


@functools.lru_cache(maxsize=8192)  # tag, profile and avatar URLs repeat in every post
def _safe_url(url: str) -> str | None:
    """safe_url by urlsplit: the reference for every URL."""
    if _BAD_URL_CHAR.search(url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in SCHEMES or not parts.hostname:
        return None
    return url


def _filter_attribute(tag: str, name: str, value: str) -> str | None:
    if tag == "a" and name == "href":
        return safe_url(value)
    return value


_CLEANER = nh3.Cleaner(
    tags=ALLOWED_TAGS,
    clean_content_tags=DROPPED_WITH_CONTENT,
    attributes={"a": {"href"}},
    attribute_filter=_filter_attribute,
    url_schemes=SCHEMES,
    url_relative="deny",
    link_rel=LINK_REL,
    strip_comments=True,
)


# The same policy without the Python callback per href, for the common case where every link
# is a safe one: its output is checked, and anything else is cleaned again with the callback.
_FAST_CLEANER = nh3.Cleaner(
    tags=ALLOWED_TAGS,
    clean_content_tags=DROPPED_WITH_CONTENT,
    attributes={"a": {"href"}},
    url_schemes=SCHEMES,
    url_relative="deny",
    link_rel=LINK_REL,
    strip_comments=True,
)
_HREF = re.compile(r' href="([^"]*)"')


def sanitise_html(html: str | None) -> str:
    """Clean untrusted HTML to our policy. Safe to insert into a page as is."""
    if not html:
        return ""
    cleaned = _FAST_CLEANER.clean(html)
    if " href=" in cleaned and not all(
        safe_url(htmllib.unescape(href)) for href in _HREF.findall(cleaned)
    ):
        cleaned = _CLEANER.clean(html)
    if "<a rel=" in cleaned:
        cleaned = _DEAD_ANCHOR.sub(r"\1", cleaned)
    return cleaned.strip()


def text_to_html(text: str | None, facets: Iterable[dict] | None = None) -> str:
    """Plain text → escaped HTML paragraphs, with links from Bluesky-style facets.

    Facet offsets count UTF-8 bytes, not characters, so the text is sliced as bytes.
    """
    if not text:
        return ""
    data = text.encode("utf-8", "surrogatepass")  # a lone surrogate (hostile JSON) decodes as �
    out: list[str] = []
    pos = 0
    for start, end, href in facet_links(facets or (), len(data)):
        if start < pos:
            continue  # overlapping facets: keep the first
        out.append(_escape(data[pos:start]))
        out.append(f'<a href="{htmllib.escape(href)}">{_escape(data[start:end])}</a>')
        pos = end
    out.append(_escape(data[pos:]))
    body = "".join(out)
    paragraphs = [p for p in re.split(r"\n\s*\n", body) if p.strip()]
    return sanitise_html(
        "".join(f"<p>{p.strip().replace(chr(10), '<br>')}</p>" for p in paragraphs)
    )


def _escape(chunk: bytes) -> str:
    return htmllib.escape(chunk.decode("utf-8", errors="replace"), quote=False)


def facet_links(facets: Iterable[dict], size: int) -> list[tuple[int, int, str]]:
    """(byteStart, byteEnd, href) for every facet that makes a valid link, in order."""
    links = []
    for facet in facets:  # any field of a facet may be broken: that facet is no link, no more
        if not isinstance(facet, dict) or not isinstance(facet.get("index"), dict):
            continue
        start, end = facet["index"].get("byteStart"), facet["index"].get("byteEnd")
        if not (type(start) is int and type(end) is int and 0 <= start < end <= size):
            continue
        features = facet.get("features")
        href = _facet_href(features) if isinstance(features, list) else None
        if href:
            links.append((start, end, href))
    return sorted(links)


def _facet_href(features: list) -> str | None:
    for feature in features:
        if not isinstance(feature, dict):
            continue
        kind = feature.get("$type")
        kind = kind if isinstance(kind, str) else ""
        if kind.endswith("#link"):
            return safe_url(feature.get("uri"))
        if kind.endswith("#tag") and isinstance(feature.get("tag"), str) and feature["tag"]:
            return "https://bsky.app/hashtag/" + _quote(feature["tag"])
        if kind.endswith("#mention") and str(feature.get("did", "")).startswith("did:"):
            return "https://bsky.app/profile/" + _quote(feature["did"])
    return None


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(str(value), safe=":", errors="replace")
