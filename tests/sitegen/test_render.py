"""sitegen/render.py: http_url's shortcut for plain host names gives what urlsplit gives."""

from urllib.parse import urlsplit

import pytest

from sitegen.render import http_url


def by_urlsplit(value):
    """http_url as it was written first: every value through urlsplit."""
    if not value or any(ord(c) <= 0x20 for c in value):
        return ""
    try:
        parts = urlsplit(value)
    except ValueError:
        return ""
    return value if parts.scheme.lower() in ("http", "https") and parts.hostname else ""


URLS = [
    "https://img.example/1.jpg", "http://a.example", "http://a.example?x=1", "https://a.example#f",
    "HTTPS://A.EXAMPLE/x", "https://", "https:///path", "https://:80/", "https://user@/x",
    "https://user@host.example/x", "https://host.example:8080/x", "https://[::1]/x", "https://[::1/x",
    "https://exa mple.com/", "https://example.com/\tx", "javascript:alert(1)", "ftp://a.example/",
    "//a.example/x", "https://a.example\\@evil.example/", "https://bücher.example/", "https://-/",
    "https://./", "https://a..b/", "https://a.example/ünïcode path?q=ü", "", None, "https://a.example\n",
    "http://a.example/\x00", "https://a_b.example/", "https:a.example", "https:/a.example/",
]  # fmt: skip


@pytest.mark.parametrize("url", URLS)
def test_http_url_agrees_with_urlsplit(url):
    assert http_url(url) == by_urlsplit(url)
