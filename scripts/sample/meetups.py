"""Attendees' meet-up proposals (posts with the event's meetup_hashtag), with replies and boosts.

The meet-ups board counts who replies to a proposal or boosts it as going. Each proposal here
is a Mastodon status from an author on a listened instance; replies come through the same
instance (so their in_reply_to_id resolves), some with the meet-up tag (a reply is going, never a
proposal of its own), one by the proposer (who is not counted twice); boosts are reblog wrappers.
Uses its own random stream, after everything else, so the rest of the recording is unchanged.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from core.events import Event

from .draft import Draft
from .mastodon import MastodonWorld, StatusRecord, reblog_wrapper
from .plan import Moment
from .world import Author


@dataclass(frozen=True)
class Proposal:
    day: int  # 0 for the event's first day
    posted: time  # local time of the post
    text: str
    replies: tuple[tuple[int, str], ...]  # (minutes after, text); text "" is the proposer's
    boosts: tuple[int, ...]  # minutes after


PROPOSALS = (
    Proposal(0, time(12, 20), "Anyone up for rijsttafel tonight? Dinner at 19:00 at Sampurna, "
             "Singel 498. I'll book for whoever says yes by 17:00.",
             ((3, "Count me in!"), (9, "Yes please, vegetarian here"), (21, "I'm in, +1 🍛"),
              (40, ""), (55, "Going! Where do we meet?")), (6, 30)),
    Proposal(0, time(16, 5), "Board games in the foyer after the last talk, 17:40. "
             "Bring your favourite, I have Codenames.",
             ((4, "Bringing Azul"), (17, "I'll be there")), (12,)),
    Proposal(1, time(8, 10), "Coffee walk along the Amstel at 8.45am, meet at the main entrance",
             ((6, "Good morning, joining!"),), ()),
    Proposal(1, time(13, 5), "Hack session on the SQLite at the Edge demo, 17:50 in the "
             "Garden Room foyer. Laptops out!",
             ((2, "Oh nice, I'll join"), (14, "Count me in"), (31, "See you there")), (8, 19)),
)  # fmt: skip


def add_meetups(
    rng: random.Random, event: Event, world: MastodonWorld, authors: list[Author], rec
) -> None:
    """The proposals, replies and boosts, added to the recording `rec` (make_sample.Recording)."""
    tag = event.meetup_hashtag
    if not tag:
        return
    people = [a for a in authors if a.listened_home and not a.hostile and not a.bot]
    for proposal in PROPOSALS:
        proposer, *others = rng.sample(people, 1 + len(proposal.replies) + len(proposal.boosts))
        day = event.start + timedelta(days=proposal.day)
        when = datetime.combine(day, proposal.posted, tzinfo=event.tz)
        tags = [tag, event.hashtags[0]]
        record = _post(world, proposer, when, proposal.text, tags)
        first = _deliver(rng, world, record, proposer.home)
        rec.add(first.at, "mastodon", first.origin, "update", first.payload)
        rec.stats["meetups"] += 1
        for (minutes, text), author in zip(proposal.replies, others, strict=False):
            who = proposer if not text else author
            words = text or "Booked a table for 8, see you all at 19:00!"
            reply_tags = rng.choice(([tag], [event.hashtags[0]], [tag, event.hashtags[0]]))
            reply = _post(world, who, when + timedelta(minutes=minutes, seconds=rng.randint(0, 59)),
                          words, reply_tags)  # fmt: skip
            reply.reply_to = record
            reply.draft.segments[:0] = [("mention", proposer), ("text", " ")]
            delivery = _deliver(rng, world, reply, proposer.home)
            rec.add(delivery.at, "mastodon", delivery.origin, "update", delivery.payload)
            rec.stats["meetup_replies"] += 1
        boosters = others[len(proposal.replies) :]
        for minutes, booster in zip(proposal.boosts, boosters, strict=True):
            at = when + timedelta(minutes=minutes, milliseconds=rng.randint(0, 999))
            wrapper = reblog_wrapper(world, first, booster, at)
            rec.add(at, "mastodon", first.origin, "update", wrapper)
            rec.stats["meetup_boosts"] += 1


def _post(world: MastodonWorld, author: Author, when: datetime, text: str, tags) -> StatusRecord:
    created = when.astimezone(UTC)
    draft = Draft(author=author, created=created, moment=Moment(created, "evening"), lang="en")
    draft.tags = list(tags)
    draft.segments = [("text", text), ("para",)]
    for i, name in enumerate(draft.tags):
        draft.segments += [("text", " ")] if i else []
        draft.segments.append(("tag", name))
    sid = world.snowflake(author.home, created)
    return StatusRecord(
        draft=draft,
        home=author.home,
        uri=f"https://{author.home}/users/{author.username}/statuses/{sid}",
        url=f"https://{author.home}/@{author.username}/{sid}",
    )


def _deliver(rng: random.Random, world: MastodonWorld, record: StatusRecord, origin: str):
    """The status as `origin` serves it: at once and with its own id at home; a few seconds
    later (federation) and with a local copy's id elsewhere."""
    if record.home == origin:
        return world.deliver(record, origin, record.draft.created, record.uri.rsplit("/", 1)[-1])
    at = record.draft.created + timedelta(milliseconds=rng.randint(1_500, 25_000))
    return world.deliver(record, origin, at)
