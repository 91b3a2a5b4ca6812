"""The Jinja environment: autoescape always on, and exactly one way to mark HTML safe.

`|trusted_html` is for the two kinds of HTML we trust: post HTML the collector stored after its
sanitiser, and organizer Markdown rendered by sitegen/markdown.py. As defence in depth it passes
the HTML through an allowlist that is a *superset* of both (so it leaves their output unchanged)
and keeps only http(s), mailto and relative URLs: an archive written by something other than the
collector still cannot put a script on a page. It is not a second sanitiser policy; the policy
that decides what a post may contain stays in the collector.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from operator import attrgetter
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2
import nh3
from markupsafe import Markup

from core.items import format_time
from core.urls import http_url

from .listings import slugify
from .posts import Post
from .stats import anchor

_NOINDEX = attrgetter("noindex")
TEMPLATES = Path(__file__).parent / "templates"

_TAGS = {
    "p", "br", "a", "span", "strong", "em", "b", "i", "u", "s", "del", "ins", "sub", "sup",
    "code", "pre", "blockquote", "ul", "ol", "li", "dl", "dt", "dd", "hr", "img", "abbr",
    "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
_GUARD = nh3.Cleaner(
    tags=_TAGS,
    clean_content_tags={"script", "style", "iframe", "object", "embed", "template", "svg", "math"},
    attributes={
        "a": {"href", "rel", "title"},
        "img": {"src", "alt", "title"},
        "abbr": {"title"},
        "ol": {"start"},
        "th": {"align"},
        "td": {"align"},
    },
    url_schemes={"http", "https", "mailto"},
    link_rel=None,
    strip_comments=True,
)


def trusted_html(value: str | None) -> Markup:
    """Mark collector-sanitised post HTML or rendered organizer Markdown as safe."""
    return Markup(_GUARD.clean(value or ""))


def make_env(
    timezone: str = "UTC", compiled: Path | None = None, whole: Callable | None = None
) -> jinja2.Environment:
    """The environment; `compiled` keeps compiled templates between builds (keyed by source);
    `whole(post)` gives the whole Item of a Post for the `post` macro (Items are shown as they
    are)."""
    compiled_cache = None
    if compiled is not None:
        compiled.mkdir(parents=True, exist_ok=True)
        compiled_cache = jinja2.FileSystemBytecodeCache(str(compiled))
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        bytecode_cache=compiled_cache,
        autoescape=True,  # always, whatever the file extension
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["trusted_html"] = trusted_html
    env.filters["http_url"] = http_url
    env.filters["iso"] = format_time
    env.filters["local"] = local_time
    env.filters["any_noindex"] = any_noindex
    env.globals["anchor"] = anchor
    env.globals["speaker_slug"] = slugify

    def item_of(post):
        return whole(post) if whole is not None and isinstance(post, Post) else post

    env.globals["post"] = lambda item, tz: post_macro(env)(item_of(item), tz)
    env.globals["post_list"] = lambda posts, tz, key=None: post_list(
        post_macro(env)(item_of(p), tz) for p in posts
    )
    return env


def any_noindex(posts) -> bool:
    """Whether any of the posts is from an account that asked not to be indexed."""
    return any(map(_NOINDEX, posts))


def post_list(htmls) -> Markup:
    """Posts' HTML as the items of a list: what every page that lists posts shows."""
    return Markup("".join([f"<li>{html}</li>" for html in htmls]))


def post_macro(env: jinja2.Environment):
    """The `post` macro of _post.html, callable from Python: one post's HTML as Markup."""
    return env.get_template("_post.html").module.post


def local_time(value: datetime, tz: str, fmt: str = "%H:%M") -> str:
    return value.astimezone(ZoneInfo(tz)).strftime(fmt)
