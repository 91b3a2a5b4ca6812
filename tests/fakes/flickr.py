"""A fake Flickr REST endpoint: `flickr.photos.search` over `/services/rest/`.

    with FlickrFake(api_keys={KEY}) as f:
        f.load_fixture()                               # the 20 real photos, their own dateupload
        f.publish(photo_dict)                          # dateupload = now unless given
        httpx.get(f.url + "/services/rest/", params={"method": "flickr.photos.search", ...})

What it reproduces (SOURCES.md §4, fixtures/flickr-*): `{"photos":{page,pages,perpage,total
(a string),photo:[…]},"stat":"ok"}`, errors as `stat: fail` with HTTP 200 (code 100 invalid key,
3 parameterless search, 112 unknown method: the fixture), JSONP `jsonFlickrApi(…)` without
`nojsoncallback=1`, `tags` (comma list, `-tag` excludes, `tag_mode` any/all, matched on
normalised tags), `min_/max_upload_date` (unix or MySQL datetime), `sort` date-posted-asc/desc
(default desc), `per_page` (default 100, max 500), `page`, the first-4,000-results cap, and
`extras`: a photo shows only the base fields and the extras asked for. No rate-limit headers
(Flickr sends none); `faults.rate_limit` answers a plain 429 with Retry-After.
`flickr.photos.getInfo` (`photo_id`) answers `{"photo": {id, secret, server, owner{nsid,
username, realname, path_alias}, title{_content}, description{_content}, dates{posted,
lastupdate}, views, comments{_content}, urls{url[{type: photopage}]}, …}, "stat": "ok"}`, and
error 1 `Photo "ID" not found (invalid ID)` once a photo is deleted or private.
**UNCERTAIN**: the `count_faves` and `count_comments` extras are not in the reflection fixture
(flickr.reflection lists the documented ones); they are widely used and answered as strings.
**UNCERTAIN** (not in any capture): whether Flickr escapes `/` as `\\/`; set `escape_slashes`.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import time
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .base import FIXTURES, FakeServer

DEFAULT_KEY = "0123456789abcdef0123456789abcdef"
BASE_FIELDS = {
    "id",
    "owner",
    "secret",
    "server",
    "farm",
    "title",
    "ispublic",
    "isfriend",
    "isfamily",
}
EXTRAS = {
    "description": ["description"],
    "license": ["license"],
    "date_upload": ["dateupload"],
    "date_taken": ["datetaken", "datetakengranularity", "datetakenunknown"],
    "owner_name": ["ownername"],
    "icon_server": ["iconserver", "iconfarm"],
    "original_format": ["originalsecret", "originalformat"],
    "last_update": ["lastupdate"],
    "geo": ["latitude", "longitude", "accuracy", "context", "place_id", "woeid", "geo_is_public"],
    "tags": ["tags"],
    "machine_tags": ["machine_tags"],
    "o_dims": ["o_width", "o_height"],
    "views": ["views"],
    "media": ["media", "media_status"],
    "path_alias": ["pathalias"],
    "count_faves": ["count_faves"],
    "count_comments": ["count_comments"],
}
for _s in ("sq", "t", "s", "q", "m", "n", "z", "c", "l", "o"):
    EXTRAS[f"url_{_s}"] = [f"url_{_s}", f"height_{_s}", f"width_{_s}"]
KNOWN_FIELDS = BASE_FIELDS | {f for fields in EXTRAS.values() for f in fields}


def normalise_tag(tag: str) -> str:
    return re.sub(r"[^\w]", "", tag.lower())


def _date(value: str) -> float | None:
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


class FlickrFake(FakeServer):
    name = "flickr"

    def __init__(
        self, *, api_keys: set[str] | None = None, escape_slashes: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.api_keys = {DEFAULT_KEY} if api_keys is None else set(api_keys)
        self.escape_slashes = escape_slashes
        self._photos: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(54000000000)

    def publish(self, photo: dict[str, Any], *, uploaded: float | None = None) -> dict[str, Any]:
        """Add a photo (a search-result dict with any extras). `dateupload` is now unless given."""
        photo = copy.deepcopy(photo)
        photo.setdefault("id", str(next(self._ids)))
        if uploaded is not None or "dateupload" not in photo:
            photo["dateupload"] = str(int(uploaded if uploaded is not None else time.time()))
        with self.lock:
            self._photos[photo["id"]] = photo
        return copy.deepcopy(photo)

    def delete(self, photo_id: str) -> None:
        """Deleted or made private: it just disappears from results."""
        with self.lock:
            self._photos.pop(photo_id, None)

    def set_counts(self, photo_id: str, *, faves: int = 0, comments: int = 0) -> None:
        with self.lock:
            self._photos[photo_id].update(count_faves=str(faves), count_comments=str(comments))

    def load_fixture(self) -> list[dict[str, Any]]:
        data = json.loads((FIXTURES / "flickr-photos-search.json").read_text("utf-8"))
        return [self.publish(p) for p in data["photos"]["photo"]]

    def build_app(self) -> Starlette:
        return Starlette(
            routes=[Route("/services/rest/", self.rest), Route("/services/rest", self.rest)]
        )

    def _answer(self, request: Request, obj: dict[str, Any]) -> Response:
        text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
        if self.escape_slashes:
            text = text.replace("/", "\\/")
        if request.query_params.get("nojsoncallback") == "1":
            return Response(
                text.encode(), headers={"content-type": "application/json; charset=utf-8"}
            )
        callback = request.query_params.get("jsoncallback") or "jsonFlickrApi"
        return Response(
            f"{callback}({text})".encode(),
            headers={"content-type": "text/javascript; charset=utf-8"},
        )

    def _fail(self, request: Request, code: int, message: str) -> Response:
        return self._answer(request, {"stat": "fail", "code": code, "message": message})

    async def rest(self, request: Request) -> Response:
        q = request.query_params
        if q.get("format") != "json":
            # Flickr's default is XML; the fake only speaks JSON.
            body = b'<?xml version="1.0" encoding="utf-8" ?>\n<rsp stat="fail">\n\t<err code="111" msg="Format not supported by the fake" />\n</rsp>\n'
            return Response(body, headers={"content-type": "text/xml; charset=utf-8"})
        key = q.get("api_key", "")
        if not re.fullmatch(r"[0-9a-f]{32}", key):
            return self._fail(request, 100, "Invalid API Key (Key has invalid format)")
        if key not in self.api_keys:
            return self._fail(request, 100, "Invalid API Key (Key not found)")
        method = q.get("method", "")
        if method == "flickr.photos.getInfo":
            return self._info(request, q.get("photo_id", ""))
        if method != "flickr.photos.search":
            if method == "flickr.photos.doesNotExist":
                fixture = json.loads(
                    (FIXTURES / "flickr-error-method-not-found.json").read_text("utf-8")
                )
                return self._answer(request, fixture)
            return self._fail(request, 112, f'Method "{method}" not found')
        return self._search(request)

    def _info(self, request: Request, photo_id: str) -> Response:
        with self.lock:
            p = copy.deepcopy(self._photos.get(photo_id))
        if p is None:
            return self._fail(request, 1, f'Photo "{photo_id}" not found (invalid ID)')
        page = f"https://www.flickr.com/photos/{p.get('pathalias') or p['owner']}/{p['id']}/"
        photo = {
            "id": p["id"], "secret": p.get("secret", ""), "server": p.get("server", ""),
            "farm": p.get("farm", 0), "dateuploaded": p["dateupload"], "isfavorite": 0,
            "license": p.get("license", "0"), "safety_level": "0", "rotation": 0,
            "owner": {"nsid": p["owner"], "username": p.get("ownername", ""), "realname": "",
                      "location": "", "iconserver": "0", "iconfarm": 0,
                      "path_alias": p.get("pathalias")},
            "title": {"_content": p.get("title", "")},
            "description": p.get("description") or {"_content": ""},
            "visibility": {"ispublic": 1, "isfriend": 0, "isfamily": 0},
            "dates": {"posted": p["dateupload"], "taken": p.get("datetaken", ""),
                      "takengranularity": 0, "takenunknown": "0",
                      "lastupdate": p.get("lastupdate", p["dateupload"])},
            "views": p.get("views", "0"), "comments": {"_content": p.get("count_comments", "0")},
            "notes": {"note": []}, "people": {"haspeople": 0},
            "urls": {"url": [{"type": "photopage", "_content": page}]}, "media": "photo",
        }  # fmt: skip
        return self._answer(request, {"photo": photo, "stat": "ok"})

    def _search(self, request: Request) -> Response:
        q = request.query_params
        tags_arg = q.get("tags", "")
        criteria = (
            "tags",
            "text",
            "user_id",
            "min_upload_date",
            "max_upload_date",
            "min_taken_date",
        )
        if not any(q.get(k) for k in criteria):
            return self._fail(
                request,
                3,
                "Parameterless searches have been disabled. Please use flickr.photos.getRecent instead.",
            )
        wanted = [
            normalise_tag(t)
            for t in tags_arg.split(",")
            if t.strip() and not t.strip().startswith("-")
        ]
        excluded = [
            normalise_tag(t[1:])
            for t in (s.strip() for s in tags_arg.split(","))
            if t.startswith("-")
        ]
        mode_all = q.get("tag_mode") == "all"
        low, high = _date(q.get("min_upload_date", "")), _date(q.get("max_upload_date", ""))
        text = q.get("text", "").lower()
        extras = {e.strip() for e in q.get("extras", "").split(",") if e.strip()}
        shown = set(BASE_FIELDS)
        for e in extras:
            shown.update(EXTRAS.get(e, []))
        with self.lock:
            photos = list(self._photos.values())
        hits = []
        for p in photos:
            ptags = set((p.get("tags") or "").split())
            if wanted and not (
                all(t in ptags for t in wanted) if mode_all else any(t in ptags for t in wanted)
            ):
                continue
            if any(t in ptags for t in excluded):
                continue
            up = int(p["dateupload"])
            if (low is not None and up < low) or (high is not None and up > high):
                continue
            if (
                text
                and text
                not in (p.get("title", "") + " " + json.dumps(p.get("description", ""))).lower()
            ):
                continue
            hits.append(p)
        reverse = q.get("sort", "date-posted-desc") != "date-posted-asc"
        hits.sort(key=lambda p: (int(p["dateupload"]), p["id"]), reverse=reverse)
        total = len(hits)
        hits = hits[:4000]
        try:
            per_page = min(max(int(q.get("per_page", 100)), 1), 500)
        except ValueError:
            per_page = 100
        try:
            page = max(int(q.get("page", 1)), 1)
        except ValueError:
            page = 1
        pages = max(1, -(-len(hits) // per_page)) if hits else 0
        chunk = hits[(page - 1) * per_page : page * per_page]
        shaped = [
            {k: v for k, v in p.items() if k in shown or k not in KNOWN_FIELDS} for p in chunk
        ]
        return self._answer(
            request,
            {
                "photos": {
                    "page": page,
                    "pages": pages,
                    "perpage": per_page,
                    "total": str(total),
                    "photo": shaped,
                },
                "stat": "ok",
            },
        )
