"""Mastodon Status payloads in the real API shape, as each listening instance would deliver them."""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import quote

from . import hostile
from .draft import Draft, Image
from .ids import Snowflakes, blurhash, hexstr, iso_ms
from .world import Author

BRIDGY = "bsky.brid.gy"


def escape(text: str) -> str:
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#39;")
    )


def files_host(host: str) -> str:
    return f"https://files.{host}" if host == "mastodon.social" else f"https://{host}/system"


def id_path(value: str) -> str:
    digits = value.zfill(max(9, -(-len(value) // 3) * 3))
    return "/".join(digits[i : i + 3] for i in range(0, len(digits), 3))


def link_html(url: str) -> str:
    """Mastodon's shortened link: scheme and overflow hidden in `invisible` spans."""
    scheme, _, rest = url.partition("://")
    prefix = scheme + "://"
    if rest.startswith("www."):
        prefix, rest = prefix + "www.", rest[4:]
    shown, hidden = rest[:30], rest[30:]
    cls = "ellipsis" if hidden else ""
    return (
        f'<a href="{escape(url)}" target="_blank" rel="nofollow noopener" translate="no">'
        f'<span class="invisible">{escape(prefix)}</span><span class="{cls}">{escape(shown)}'
        f'</span><span class="invisible">{escape(hidden)}</span></a>'
    )


@dataclass
class Delivery:
    """One status as one origin instance delivered it."""

    origin: str
    local_id: str
    at: datetime
    payload: dict


@dataclass
class StatusRecord:
    draft: Draft
    uri: str
    url: str
    home: str
    deliveries: list[Delivery] = field(default_factory=list)
    reply_to: StatusRecord | None = None
    counts: tuple[int, int, int] = (0, 0, 0)  # replies, reblogs, favourites: the final ones
    card: dict | None = None
    application: dict | None = None
    bridged_from: str = ""  # the at-uri a Bridgy Fed mirror stands for
    deleted_at: datetime | None = None  # its author deleted it (a delete event follows)


class MastodonWorld:
    """Per-instance id spaces and the account records each instance keeps."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.flakes: dict[str, Snowflakes] = {}

    def snowflake(self, instance: str, moment: datetime) -> str:
        if instance not in self.flakes:
            self.flakes[instance] = Snowflakes(self.rng)
        return self.flakes[instance].at(moment)

    def account_id(self, author: Author, instance: str) -> str:
        if instance not in author.local_ids:
            if author.home == instance:
                seen = author.created_at
            else:
                seen = author.created_at + timedelta(days=self.rng.randint(30, 900))
            author.local_ids[instance] = self.snowflake(instance, seen)
        return author.local_ids[instance]

    # accounts ---------------------------------------------------------------------------------

    def account(self, author: Author, origin: str) -> dict:
        aid = self.account_id(author, origin)
        local = author.home == origin
        bridged = author.source == "bluesky"
        if bridged:
            username, home_url = (
                author.handle,
                f"https://{BRIDGY}/r/https://bsky.app/profile/{author.handle}",
            )
            acct, uri = f"{author.handle}@{BRIDGY}", f"https://{BRIDGY}/ap/{author.did}"
        else:
            username, home_url = author.username, f"https://{author.home}/@{author.username}"
            acct = author.username if local else f"{author.username}@{author.home}"
            uri = f"https://{author.home}/users/{author.username}"
        media = files_host(origin) + ("" if local else "/cache")
        avatar = f"{media}/accounts/avatars/{id_path(aid)}/original/{author.avatar}.png"
        header = f"{media}/accounts/headers/{id_path(aid)}/original/{author.header}.jpg"
        note = author.note
        if bridged:
            note = (
                f'🌉 <a href="https://fed.brid.gy/bsky/{author.handle}" rel="nofollow noopener" '
                f'target="_blank">bridged</a> from 🦋 <a href="https://bsky.app/profile/'
                f'{author.handle}" rel="nofollow noopener" target="_blank">{author.handle}</a>'
            )
        elif author.hostile:
            note = hostile.HOSTILE_NOTE
        return {
            "id": aid,
            "username": username,
            "acct": acct,
            "display_name": author.display_name,
            "locked": False,
            "bot": author.bot,
            "discoverable": author.discoverable,
            "indexable": author.discoverable is True,
            "group": False,
            "created_at": iso_ms(author.created_at),
            "note": note,
            "url": home_url,
            "uri": uri,
            "avatar": avatar,
            "avatar_static": avatar,
            "avatar_description": "",
            "header": header,
            "header_static": header,
            "header_description": "",
            "followers_count": author.followers,
            "following_count": author.following,
            "statuses_count": author.statuses,
            "last_status_at": "2026-10-24",
            "hide_collections": False,
            "noindex": author.noindex,
            "emojis": [self.emoji(code, origin) for code in author.emojis],
            "roles": [],
            "fields": []
            if not author.note
            else [
                {
                    "name": "Web",
                    "value": link_html(f"https://{author.username}.example.dev/"),
                    "verified_at": None,
                }
            ],
        }

    def emoji(self, code: str, origin: str) -> dict:
        stem = sum(map(ord, code)) * 7919 % 999_999
        base = f"{files_host(origin)}/custom_emojis/images/000/{stem // 1000:03d}/{stem % 1000:03d}"
        return {
            "shortcode": code,
            "url": f"{base}/original/{code}.png",
            "static_url": f"{base}/static/{code}.png",
            "visible_in_picker": True,
        }

    # content ----------------------------------------------------------------------------------

    def render(
        self, draft: Draft, home: str, origin: str, tag_base: str = ""
    ) -> tuple[str, list, list, list]:
        """content HTML, mentions[], tags[], emojis[] for a draft written on `home`."""
        paragraphs: list[list[str]] = [[]]
        mentions, tags, emojis = [], [], []
        tag_base = tag_base or f"https://{home}/tags/"
        for seg in draft.segments:
            kind = seg[0]
            if kind == "text":
                paragraphs[-1].append(escape(seg[1]))
            elif kind == "para":
                paragraphs.append([])
            elif kind == "tag":
                name = seg[1]
                paragraphs[-1].append(
                    f'<a href="{tag_base}{quote(name)}" class="mention hashtag" '
                    f'rel="tag">#<span>{escape(name)}</span></a>'
                )
                if all(t["name"] != name.lower() for t in tags):
                    tags.append(
                        {"name": name.lower(), "url": f"https://{origin}/tags/{name.lower()}"}
                    )
            elif kind == "link":
                paragraphs[-1].append(link_html(seg[1]))
            elif kind == "mention":
                who: Author = seg[1]
                paragraphs[-1].append(
                    f'<span class="h-card" translate="no"><a href="https://{who.home}/@{who.username}" '
                    f'class="u-url mention">@<span>{escape(who.username)}</span></a></span>'
                )
                mentions.append(
                    {
                        "id": self.account_id(who, origin),
                        "username": who.username,
                        "url": f"https://{who.home}/@{who.username}",
                        "acct": who.username
                        if who.home == origin
                        else f"{who.username}@{who.home}",
                    }
                )
            elif kind == "emoji":
                paragraphs[-1].append(f":{seg[1]}:")
                emojis.append(self.emoji(seg[1], origin))
            elif kind == "raw":
                paragraphs[-1].append(seg[1])
        content = "".join(f"<p>{''.join(p).strip()}</p>" for p in paragraphs if p)
        return content, mentions, tags, emojis

    def media(self, image: Image, home: str, origin: str, created: datetime) -> dict:
        mid = self.snowflake(origin, created)
        local = home == origin
        base = files_host(origin) + ("" if local else "/cache")
        path = f"{base}/media_attachments/files/{id_path(mid)}"
        small_w = 640 if image.width >= image.height else int(640 * image.width / image.height)
        small_h = int(small_w * image.height / image.width)
        return {
            "id": mid,
            "type": "image",
            "url": f"{path}/original/{image.name}.jpg",
            "preview_url": f"{path}/small/{image.name}.jpg",
            "remote_url": None
            if local
            else f"{files_host(home)}/media_attachments/files/original/{image.name}.jpg",
            "preview_remote_url": None,
            "text_url": None,
            "meta": {
                "original": {
                    "width": image.width,
                    "height": image.height,
                    "size": f"{image.width}x{image.height}",
                    "aspect": image.width / image.height,
                },
                "small": {
                    "width": small_w,
                    "height": small_h,
                    "size": f"{small_w}x{small_h}",
                    "aspect": small_w / small_h,
                },
            },
            "description": image.alt,
            "blurhash": image.blurhash,
        }

    def card(self, url: str, iframe: bool, hostile_html: bool = False) -> dict:
        video = iframe or "youtube.com" in url
        html = ""
        if hostile_html:
            html = hostile.HOSTILE_CARD_HTML
        elif video:
            code = url.rsplit("=", 1)[-1] if "watch?v=" in url else hexstr(self.rng, 11)
            html = (
                f'<iframe width="560" height="315" src="https://www.youtube.com/embed/{code}'
                f'?feature=oembed" frameborder="0" allowfullscreen="" '
                f'title="Northwind Conf 2026"></iframe>'
            )
        return {
            "url": url,
            "title": "Northwind Conf 2026 · " + url.rstrip("/").rsplit("/", 1)[-1][:40],
            "description": "Notes, slides and code from Northwind Conf 2026 in Amsterdam.",
            "language": "en",
            "type": "video" if html else "link",
            "author_name": "",
            "author_url": "",
            "provider_name": "YouTube" if video else "",
            "provider_url": "",
            "html": html,
            "width": 560 if html else 400,
            "height": 315 if html else 200,
            "image": None
            if html
            else f"https://files.mastodon.social/cache/preview_cards/images/{hexstr(self.rng, 16)}.png",
            "image_description": "",
            "embed_url": "",
            "blurhash": blurhash(self.rng),
            "published_at": None,
            "authors": [],
        }

    # statuses ---------------------------------------------------------------------------------

    def deliver(self, record: StatusRecord, origin: str, at: datetime, sid: str = "") -> Delivery:
        """The Status as `origin` serves it; remote copies get a backdated local id."""
        draft = record.draft
        local = record.home == origin
        sid = sid or self.snowflake(origin, draft.created)
        tag_base = "https://bsky.app/search?q=%23" if record.bridged_from else ""
        content, mentions, tags, emojis = self.render(draft, record.home, origin, tag_base)
        reply_id = reply_account = None
        if record.reply_to:
            parent = next(d for d in record.reply_to.deliveries if d.origin == origin)
            reply_id, reply_account = parent.local_id, parent.payload["account"]["id"]
        replies = reblogs = favs = 0  # counts start at zero: refreshes tell them (enrich.py)
        payload = {
            "id": sid,
            "created_at": iso_ms(draft.created),
            "in_reply_to_id": reply_id,
            "in_reply_to_account_id": reply_account,
            "sensitive": draft.sensitive,
            "spoiler_text": draft.spoiler,
            "visibility": "public",
            "language": draft.lang,
            "uri": record.uri,
            "url": record.url,
            "replies_count": replies,
            "reblogs_count": reblogs,
            "favourites_count": favs,
            "quotes_count": 0,
            "edited_at": None,
            "favourited": False,
            "reblogged": False,
            "muted": False,
            "bookmarked": False,
            "content": content,
            "filtered": [],
            "reblog": None,
            **({"application": record.application} if local and record.application else {}),
            "account": self.account(draft.author, origin),
            "media_attachments": [
                self.media(i, record.home, origin, draft.created) for i in draft.images
            ],
            "mentions": mentions,
            "tags": tags,
            "emojis": emojis,
            "quote": None,
            "card": record.card,
            "poll": None,
        }
        delivery = Delivery(origin, sid, at, payload)
        record.deliveries.append(delivery)
        return delivery


def edited(delivery: Delivery, at: datetime, note: str) -> dict:
    """A status.update payload: same id and uri, changed content, edited_at set."""
    payload = copy.deepcopy(delivery.payload)
    payload["content"] = payload["content"] + f"<p>{escape(note)}</p>"
    payload["edited_at"] = iso_ms(at)
    return payload


def reblog_wrapper(world: MastodonWorld, inner: Delivery, booster: Author, at: datetime) -> dict:
    """What a home/user stream shows for a boost: an empty status wrapping the original."""
    origin = inner.origin
    sid = world.snowflake(origin, at)
    account = world.account(booster, origin)
    home_sid = sid if booster.home == origin else world.snowflake(booster.home, at)
    base = f"https://{booster.home}/users/{booster.username}/statuses/{home_sid}"
    wrapped = copy.deepcopy(inner.payload)
    wrapped["reblogs_count"] += 1
    return {
        "id": sid,
        "created_at": iso_ms(at),
        "in_reply_to_id": None,
        "in_reply_to_account_id": None,
        "sensitive": False,
        "spoiler_text": "",
        "visibility": "public",
        "language": None,
        "uri": f"{base}/activity",
        "url": f"{base}/activity",
        "replies_count": 0,
        "reblogs_count": 0,
        "favourites_count": 0,
        "quotes_count": 0,
        "edited_at": None,
        "favourited": False,
        "reblogged": False,
        "muted": False,
        "bookmarked": False,
        "content": "",
        "filtered": [],
        "reblog": wrapped,
        "application": None,
        "account": account,
        "media_attachments": [],
        "mentions": [],
        "tags": [],
        "emojis": [],
        "quote": None,
        "card": None,
        "poll": None,
    }
