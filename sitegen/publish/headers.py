"""What each published file is served with: its Content-Type, a Cache-Control that fits how it
changes, and whether a gzip-compressed copy is worth storing in its place.

    page       HTML and feeds: rewritten after every session and moderation decision, so a
               minute, then served stale for up to ten while the CDN fetches the new one
    immutable  files whose name carries a hash of their bytes (Pagefind's chunks): a year
    search     the rest of a Pagefind index (its entry, loader and wasm), the static/ files
               (versioned by ?v=HASH in every page, which not every CDN keys its cache on) and
               the downloads: ten minutes, an hour stale
"""

from __future__ import annotations

import mimetypes
import re
from pathlib import PurePosixPath

PAGE = "public, max-age=60, stale-while-revalidate=600"
IMMUTABLE = "public, max-age=31536000, immutable"
SEARCH = "public, max-age=600, stale-while-revalidate=3600"

TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".jsonl": "application/jsonl; charset=utf-8",
    ".atom": "application/atom+xml; charset=utf-8",
    ".xml": "application/xml; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
    ".gz": "application/gzip",
    ".wasm": "application/wasm",
    # Pagefind's own files are gzip-framed binaries it decodes itself: no Content-Encoding
    ".pagefind": "application/octet-stream",
    ".pf_fragment": "application/octet-stream",
    ".pf_index": "application/octet-stream",
    ".pf_meta": "application/octet-stream",
    ".pf_filter": "application/octet-stream",
}
COMPRESSIBLE = {".html", ".css", ".js", ".json", ".jsonl", ".atom", ".xml", ".txt", ".svg"}
PAGES = {".html", ".atom", ".xml"}  # files whose links the publish order follows
HASHED = re.compile(r"(?:^|[._-])[0-9a-f]{7,}\.(?:pf_[a-z]+)$")  # en_3a5b7c9.pf_fragment


def content_type(key: str) -> str:
    suffix = PurePosixPath(key).suffix.lower()
    found = TYPES.get(suffix) or mimetypes.guess_type(key)[0]
    return found or "application/octet-stream"


def cache_control(key: str) -> str:
    name = PurePosixPath(key).name
    suffix = PurePosixPath(key).suffix.lower()
    if HASHED.search(name):
        return IMMUTABLE
    if suffix in PAGES:
        return PAGE
    return SEARCH


def is_page(key: str) -> bool:
    return PurePosixPath(key).suffix.lower() in PAGES


def is_hashed(key: str) -> bool:
    return cache_control(key) == IMMUTABLE


def compressible(key: str) -> bool:
    return PurePosixPath(key).suffix.lower() in COMPRESSIBLE
