"""Flickr: the photos of a flickr.photos.search response (with extras) → Items. Pure."""

from __future__ import annotations

import json
import logging
from typing import Any

from core.errors import ParseError
from core.items import Author, Item, Media

from ...normalise import links_in_html, normalise_tags, parse_source_time
from ...sanitise import safe_url, sanitise_html, text_to_html
from ...store import Malformed

log = logging.getLogger("collector.flickr")
SOURCE = "flickr"
EXTRAS = "description,license,date_upload,date_taken,owner_name,tags,url_l,url_m"
STATIC = "https://live.staticflickr.com"


def photo_page(owner: str, photo_id: str) -> str:
    return f"https://www.flickr.com/photos/{owner}/{photo_id}"


def parse_photo(photo: dict) -> Item:
    """A search result photo. Its identity is the photo page (Flickr's guidelines link there).

    text is the title; html is the sanitised description (falling back to the title, so every
    photo has a caption); the title is also the image's alt text, the best Flickr offers.
    """
    if not isinstance(photo, dict):
        raise ParseError("photo is not an object")
    photo_id, owner = str(photo.get("id") or ""), str(photo.get("owner") or "")
    if not photo_id.isdigit() or not owner:
        raise ParseError("photo has no id or owner")
    title = str(photo.get("title") or "")
    description = _description(photo.get("description"))
    uri = photo_page(owner, photo_id)
    return Item(
        uri=uri, source=SOURCE, origin="flickr", local_id=photo_id, url=uri + "/",
        created_at=parse_source_time(photo.get("dateupload"), "dateupload"),
        author=_owner(photo, owner),
        html=sanitise_html(description.replace("\n", "<br>")) or text_to_html(title),
        text=title,
        tags=normalise_tags(str(photo.get("tags") or "").split()),
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
    return Author(id=owner, handle=str(photo.get("pathalias") or owner),
                  name=str(photo.get("ownername") or ""), url=page)  # fmt: skip


def _image(photo: dict, title: str) -> Media:
    """url_l when Flickr gave it, else the 1024 px URL built from server/id/secret."""
    built = f"{STATIC}/{photo.get('server')}/{photo['id']}_{photo.get('secret')}"
    url = safe_url(photo.get("url_l"))
    width, height = _int(photo.get("width_l")), _int(photo.get("height_l"))
    if not url:
        if not (photo.get("server") and photo.get("secret")):
            raise ParseError("photo has neither url_l nor server and secret")
        url, width, height = f"{built}_b.jpg", None, None
    preview = safe_url(photo.get("url_m")) or f"{built}_m.jpg"
    return Media("image", url, preview, title, width, height)


def _extra(photo: dict) -> dict:
    extra = {"owner": photo.get("owner"), "license": photo.get("license"),
             "title": photo.get("title"), "datetaken": photo.get("datetaken")}  # fmt: skip
    return {k: v for k, v in extra.items() if v not in (None, "")}


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def parse_page(photos: list, seen: dict[str, list]) -> tuple[list[Item], list[Malformed], int]:
    """Photos not seen before (or updated since) → items; broken ones → Malformed, once each.
    Returns the newest upload time among them too. Updates `seen`."""
    items, malformed, newest = [], [], 0
    for photo in photos:
        pid = str(photo.get("id", "")) if isinstance(photo, dict) else ""
        uploaded = _int_or_zero(photo.get("dateupload")) if isinstance(photo, dict) else 0
        marker = [uploaded, str(photo.get("lastupdate", ""))] if isinstance(photo, dict) else []
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


def _int_or_zero(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
