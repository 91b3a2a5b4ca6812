"""flickr.photos.search photo objects (extras: description, license, date_upload, date_taken,
owner_name, tags, url_l), uploaded in batches by a few photographers."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from core.events import Event, Presentation

from . import hostile
from .ids import hexstr
from .world import Author

TITLES = (
    "{speaker} at {event}",
    "{title}",
    "Main Hall, {event}",
    "IMG_{n:04d}",
    "DSC0{n:04d}",
    "{speaker} on stage",
    "Audience during “{title}”",
    "Coffee break",
    "",
)
DESCRIPTIONS = (
    "",
    "{speaker} presenting “{title}” at #northwind26.",
    "Photo by me, CC BY. <b>Feel free to reuse</b> with credit.",
    'More photos in the <a href="https://www.flickr.com/photos/northwind/albums" rel="nofollow">'
    "Northwind 2026 album</a>.",
    "Zuiderkerk, Amsterdam.\n\nShot on a Fuji X-T5, 35mm.",
)


def photo_tags(rng: random.Random, event: Event, talk: Presentation) -> str:
    tags = [rng.choice(event.hashtags)]
    room_tag = event.room(talk.room).hashtag
    if room_tag and rng.random() < 0.5:
        tags.append(room_tag)
    if talk.hashtag and rng.random() < 0.4:
        tags.append(talk.hashtag)
    tags += rng.sample(
        [
            "amsterdam",
            "conference",
            "zuiderkerk",
            "tech",
            "speaker",
            "fujifilm",
            "opensource",
            "stage",
        ],
        rng.randint(1, 4),
    )
    return " ".join(tags)


def make_photo(
    rng: random.Random,
    event: Event,
    owner: Author,
    uploaded: datetime,
    talk: Presentation,
    n: int,
    hostile_kind: str | None = None,
) -> dict:
    taken = talk.start + (talk.end - talk.start) * rng.random()
    speaker = rng.choice(talk.speakers)
    words = {"speaker": speaker, "event": event.name, "title": talk.title, "n": n}
    photo_id = str(54_000_000_000 + rng.randrange(900_000_000))
    secret, server = hexstr(rng, 10), str(rng.choice((65535, 65535, 65534, 65533)))
    title = rng.choice(TITLES).format(**words)
    description = rng.choice(DESCRIPTIONS).format(**words)
    ownername = owner.display_name
    if hostile_kind:
        title = f"{title} {hostile.MARKER}".strip()
        if hostile_kind == "flickr_description":
            description = f"{hostile.MARKER} {hostile.FLICKR[hostile_kind]}"
        elif hostile_kind == "flickr_ownername":
            ownername = hostile.FLICKR[hostile_kind] + ownername
        elif hostile_kind == "flickr_title":
            title = f"{hostile.MARKER} {hostile.FLICKR[hostile_kind]}"
    photo = {
        "id": photo_id,
        "owner": owner.nsid,
        "secret": secret,
        "server": server,
        "farm": 66,
        "title": title,
        "ispublic": 1,
        "isfriend": 0,
        "isfamily": 0,
        "license": rng.choice(("0", "4", "4", "5", "9")),
        "description": {"_content": description},
        "dateupload": str(int(uploaded.timestamp())),
        "datetaken": event.local(taken).strftime("%Y-%m-%d %H:%M:%S"),
        "datetakengranularity": "0",
        "datetakenunknown": 0,
        "ownername": ownername,
        "tags": photo_tags(rng, event, talk),
    }
    if rng.random() < 0.9:  # a real search result sometimes has no large size
        wide = rng.random() < 0.75
        photo.update(
            {
                "url_l": f"https://live.staticflickr.com/{server}/{photo_id}_{secret}_b.jpg",
                "height_l": "683" if wide else "1024",
                "width_l": "1024" if wide else "683",
            }
        )
    return photo


def upload_windows(event: Event) -> list[tuple[datetime, datetime]]:
    """When photographers upload: lunch breaks and the evening after each day's last session."""
    windows = [(b.start, b.end) for b in event.breaks if (b.end - b.start) >= timedelta(minutes=45)]
    for day in event.days:
        if day.sessions:
            last = max(s.end for s in day.sessions)
            windows += [(last + timedelta(minutes=30), last + timedelta(hours=4))] * 3
    return windows


def talks_before(event: Event, moment: datetime) -> list[Presentation]:
    day = event.local(moment).date()
    return [p for p in event.presentations if p.end <= moment and p.day == day]
