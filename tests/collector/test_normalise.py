"""collector/normalise.py: the one-pass readers must agree with the parser they replace."""

from __future__ import annotations

import json
import random

import pytest

from collector.normalise import (
    _tags_from_text_slow,
    html_to_text,
    links_in_html,
    links_in_post,
    tags_from_text,
    text_of_clean_html,
)
from collector.sanitise import sanitise_html
from tests.collector.conftest import DATA

HOSTILE = [
    "<p>a &amp; b&nbsp;c<br>d</p><ul><li>x</li><li>y</li></ul>",
    '<p><a href="http://x.example/?a>b" class="u">l</a></p>',
    "<a href='http://q.example/' >q</a> <A HREF=\"http://upper.example/\">U</A>",
    '<a href="http://a.example/?x=1&amp;y=2">amp</a> <a href=http://bare.example/>bare</a>',
    '<script><a href="http://s.example/"></script><style>a{}</style><p>after</p>',
    '<!-- <a href="http://c.example/"> --><p>x</p>',
    "plain &lt;b&gt; text", "<pre>a\n\n\n\nb</pre>", "", "<br/><br />",
    '<p><a href="https://m.example/tags/t" class="mention hashtag" rel="tag">#<span>t</span></a>'
    ' <a href="https://m.example/@u" class="u-url mention">@u</a> <a href="https://l.example/">l</a></p>',
    '<a href="javascript:alert(1)">x</a><a href="https://ok.example/" rel="tag">t</a>',
]  # fmt: skip


def corpus() -> list[str]:
    found = list(HOSTILE)

    def walk(value) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                if key in ("content", "_content") and isinstance(inner, str):
                    found.append(inner)
                walk(inner)
        elif isinstance(value, list):
            for inner in value:
                walk(inner)

    for path in sorted(DATA.glob("*/*.json")):
        walk(json.loads(path.read_text()))
    return found


@pytest.mark.parametrize("html", corpus())
def test_text_of_clean_html_is_html_to_text(html):
    clean = sanitise_html(html)
    assert text_of_clean_html(clean) == html_to_text(clean)


@pytest.mark.parametrize("html", corpus())
def test_links_in_post_are_links_in_html(html):
    assert links_in_post(html, sanitise_html(html)) == links_in_html(html)


def test_an_anchor_inside_a_dropped_element_is_not_a_link():
    html = '<iframe><a href="http://evil.example/">e</a></iframe><a href="http://ok.example/">o</a>'
    assert links_in_html(html) == ["http://evil.example/", "http://ok.example/"]
    assert links_in_post(html, sanitise_html(html)) == ["http://ok.example/"]


def test_tags_pattern_agrees_with_the_character_walk():
    alphabet = ["#", "＃", " ", "\n", "\t", "a", "B", "1", "\u200b", "\u00ad", "\u2060", ".",
                "!", "é", "\u3000", "\x1c", "\x85", "\xa0", "\ufe0f", "_", "-"]  # fmt: skip
    rng = random.Random(3)
    texts = ["#a#b c", "x #northwind26! #2026 #_ok", "#" + "a" * 70, "＃全角 #tag\u200bnext"]
    texts += [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14))) for _ in range(20_000)
    ]
    for text in texts:
        assert tags_from_text(text) == _tags_from_text_slow(text), repr(text)
