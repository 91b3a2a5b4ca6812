"""Flickr: the photos of a flickr.photos.search response (with extras) → Items. Pure."""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any

from core.errors import ParseError
from core.items import Author, Item, Media

from ...normalise import as_count, as_text, links_in_html, normalise_tags, parse_source_time
from ...sanitise import safe_url, sanitise_html, text_to_html
from ...store import Malformed
from ..base import parser

log = logging.getLogger("collector.flickr")
SOURCE = "flickr"
NSID = re.compile(r"[A-Za-z0-9@_.-]{1,64}")  # an owner id or path alias
URL_PART = re.compile(r"[A-Za-z0-9]{1,64}")
UPLOAD_SKEW = 86_400  # an upload time further ahead of our clock than this is not one
EXTRAS = "description,license,date_upload,date_taken,owner_name,tags,url_l,url_m"
STATIC = "https://live.staticflickr.com"


def photo_page(owner: str, photo_id: str) -> str:
    return f"https://www.flickr.com/photos/{owner}/{photo_id}"


@parser
def parse_photo(photo: dict) -> Item:
    """A search result photo. Its identity is the photo page (Flickr's guidelines link there).

    text is the title; html is the sanitised description (falling back to the title, so every
    photo has a caption); the title is also the image's alt text, the best Flickr offers.
    """
    if not isinstance(photo, dict):
        raise ParseError("photo is not an object")
    photo_id, owner = _photo_id(photo.get("id")), as_text(photo.get("owner"))
    if not photo_id or not NSID.fullmatch(owner):  # both go into the photo page's URL
        raise ParseError("photo has no id or owner")
    title = as_text(photo.get("title"))
    description = _description(photo.get("description"))
    uri = photo_page(owner, photo_id)
    return Item(
        uri=uri, source=SOURCE, origin="flickr", local_id=photo_id, url=uri + "/",
        created_at=parse_source_time(photo.get("dateupload"), "dateupload"),
        author=_owner(photo, owner),
        html=sanitise_html(description.replace("\n", "<br>")) or text_to_html(title),
        text=title,
        tags=normalise_tags(as_text(photo.get("tags")).split()),
        media=(_image(photo, title),),
        links=tuple(links_in_html(description)),
        extra=_extra(photo),
    )  # fmt: skip


def _description(value) -> str:
    if isinstance(value, dict):
        value = value.get("_content")
    return value if isinstance(value, str) else ""


def _owner(photo: dict, owner: str) -> Author:
    page = f"https://www.flickr.com/photos/{owner}/"
    return Author(id=owner, handle=as_text(photo.get("pathalias")) or owner,
                  name=as_text(photo.get("ownername")), url=page)  # fmt: skip


def _image(photo: dict, title: str) -> Media:
    """url_l when Flickr gave it, else the 1024 px URL built from server/id/secret."""
    server, secret = _url_part(photo.get("server")), _url_part(photo.get("secret"))
    built = f"{STATIC}/{server}/{_photo_id(photo.get('id'))}_{secret}"
    url = safe_url(photo.get("url_l"))
    width, height = _int(photo.get("width_l")), _int(photo.get("height_l"))
    if not url:
        if not (server and secret):
            raise ParseError("photo has neither url_l nor server and secret")
        url, width, height = f"{built}_b.jpg", None, None
    preview = safe_url(photo.get("url_m")) or f"{built}_m.jpg"
    return Media("image", url, preview, title, width, height)


def _extra(photo: dict) -> dict:
    extra = {"owner": photo.get("owner"), "license": photo.get("license"),
             "title": photo.get("title"), "datetaken": photo.get("datetaken")}  # fmt: skip
    return {k: v for k, v in extra.items() if v not in (None, "")}


def _int(value) -> int | None:
    """A size Flickr sends as a string or a number; None when it is not a plausible one."""
    return as_count(_int_or_zero(value)) or None


def _url_part(value) -> str:
    """A server or secret as it goes into an image URL (word characters), else ""."""
    text = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""
    return text if URL_PART.fullmatch(text) else ""


def parse_page(
    photos: list, seen: dict[str, list], now: float | None = None
) -> tuple[list[Item], list[Malformed], int]:
    """Photos not seen before (or updated since) → items; broken ones → Malformed, once each.
    Returns the newest upload time among them too (the next poll's watermark: a time later
    than `now` is a broken field, which must not move it). Updates `seen`."""
    items, malformed, newest = [], [], 0
    latest = int((time.time() if now is None else now) + UPLOAD_SKEW)
    for photo in photos:
        photo = photo if isinstance(photo, dict) else {"not a photo": photo}
        pid = _photo_id(photo.get("id"))
        uploaded = _int_or_zero(photo.get("dateupload"))
        uploaded = uploaded if uploaded <= latest else 0
        marker = [uploaded, str(photo.get("lastupdate", ""))[:40]]
        newest = max(newest, uploaded)
        if pid and seen.get(pid) == marker:
            continue
        try:
            items.append(parse_photo(photo))
        except ParseError as exc:
            log.warning("Could not process flickr:%s: %s", pid or "?", exc)
            malformed.append(Malformed(f"flickr:{pid or '?'}", str(exc), json.dumps(photo)))
        if pid:
            seen[pid] = marker
    return items, malformed, newest


def _photo_id(value: Any) -> str:
    """A photo id as Flickr writes them (digits), else "" (the photo is malformed)."""
    text = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""
    return text if text.isascii() and text.isdigit() and len(text) <= 32 else ""


def _int_or_zero(value: Any) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        return 0
    return number if number > 0 else 0
