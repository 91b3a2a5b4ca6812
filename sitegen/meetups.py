"""The meet-ups board in the archive: `EVENT/meetups/` (every day) and `EVENT/meetups/DATE/`
(one board day, 06:00 to 06:00, so tonight stays with its day). The same board, live, is on the
live page and the wall (static/board.js). See core/meetups.py for what a meet-up is.
"""

from __future__ import annotations

from typing import Any

from core.events import Site

from .pages import EventData, Page
from .room import board_entry, meetup_days, meetups_key, meetups_of


def meetup_pages(site: Site, data: EventData) -> list[Page]:
    """The index of every day with meet-ups, and one page per such day."""
    event = data.event
    days = meetup_days(event, meetups_of(event, data.room))
    if not days and not event.meetup_hashtag:
        return []
    titles = {d.date.isoformat(): d.title for d in event.days}

    def index() -> dict[str, Any]:
        return {"site": site, "event": event, "titles": titles,
                "days": {day: [board_entry(m) for m in found] for day, found in days.items()}}  # fmt: skip

    pages = [Page(f"{event.slug}/meetups/index.html", "meetups.html", index,
                  ("meetups", [(d, meetups_key(m)) for d, m in days.items()]))]  # fmt: skip
    for day, found in days.items():

        def context(day=day, found=found) -> dict[str, Any]:
            return {"site": site, "event": event, "day": day, "title": titles.get(day),
                    "entries": [board_entry(m) for m in found]}  # fmt: skip

        key = ("meetups-day", day, meetups_key(found))
        pages.append(
            Page(f"{event.slug}/meetups/{day}/index.html", "meetups_day.html", context, key)
        )
    return pages
