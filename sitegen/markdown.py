"""The one Markdown renderer for organizer text (event descriptions, abstracts).

Organizers are trusted-ish, not trusted: raw HTML in their Markdown is shown as text, not passed
through, and links or images whose URL is not http(s), mailto or relative lose the URL.
"""

from __future__ import annotations

import functools
from urllib.parse import urlsplit
from xml.etree.ElementTree import Element

import markdown as markdown_lib
from markdown.treeprocessors import Treeprocessor

SAFE_SCHEMES = {"", "http", "https", "mailto"}
URL_ATTRIBUTES = {"a": "href", "img": "src"}


def safe_link(url: str) -> bool:
    if any(ord(c) < 0x20 for c in url):
        return False
    try:
        return urlsplit(url.strip()).scheme.lower() in SAFE_SCHEMES
    except ValueError:
        return False


class _LinkFilter(Treeprocessor):
    """Drop javascript:, data: and other unsafe URLs from links and images."""

    def run(self, root: Element) -> None:
        for element in root.iter():
            attribute = URL_ATTRIBUTES.get(element.tag)
            if attribute and not safe_link(element.get(attribute, "")):
                element.attrib.pop(attribute, None)
            if element.tag == "a" and urlsplit(element.get("href", "")).scheme in ("http", "https"):
                element.set("rel", "noopener")


def _renderer() -> markdown_lib.Markdown:
    md = markdown_lib.Markdown(extensions=["sane_lists", "smarty"], output_format="html")
    md.preprocessors.deregister("html_block")  # raw HTML blocks become escaped text
    md.inlinePatterns.deregister("html")  # and so do inline tags
    md.treeprocessors.register(_LinkFilter(md), "afa_link_filter", 0)
    return md


@functools.lru_cache(maxsize=4096)
def render_markdown(text: str) -> str:
    """Organizer Markdown → HTML; the caller marks it safe with the `trusted_html` filter."""
    if not text:
        return ""
    md = _renderer()
    return md.convert(text)
