"""When people post, and what about: a per-minute intensity drawn from the schedule.

Talks burst in proportion to their popularity (keynotes hottest) and climb to a climax near their
end, spilling over into the grace minutes after it; breaks are a calmer murmur, mornings and
evenings quieter still, and the night almost silent.
"""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from core.events import Break, Event, Presentation

POPULARITY = {"keynote": 4.0, "lightning": 1.8, "panel": 1.4}
BREAK_RATE = 0.3
HALLWAY_RATE = 0.35
DURING_TALK_RATE = 0.06
EVENT_TAG_VARIANTS = {
    0: ("northwind26",) * 6 + ("NorthWind26", "Northwind26", "NORTHWIND26"),
    1: ("nwconf",) * 3 + ("NWConf", "NwConf"),
}


@dataclass(frozen=True)
class Moment:
    at: datetime  # UTC, when the post was written
    kind: str  # talk, break, hallway, morning, evening, night
    talk: Presentation | None = None
    brk: Break | None = None
    parallel: bool = False  # another talk was running (or in grace) at the same time


class Timeline:
    def __init__(self, event: Event, rng: random.Random) -> None:
        self.event = event
        self.rng = rng
        tz = event.tz
        self.start = datetime.combine(event.start, time(0), tzinfo=tz).astimezone(UTC)
        self.end = datetime.combine(event.end + timedelta(days=1), time(0), tzinfo=tz).astimezone(
            UTC
        )
        self.popularity = {
            p.slug: POPULARITY.get(p.kind, 0.0) or round(rng.uniform(0.6, 1.5), 2)
            for p in event.presentations
        }
        days = {d.date: d for d in event.days}
        self.day_span = {
            d: (min(s.start for s in day.sessions), max(s.end for s in day.sessions))
            for d, day in days.items()
            if day.sessions
        }
        self.minutes: list[datetime] = []
        weights: list[float] = []
        moment = self.start
        while moment < self.end:
            self.minutes.append(moment)
            weights.append(self.base_rate(moment)[1] + sum(w for _, w in self.talk_rates(moment)))
            moment += timedelta(minutes=1)
        self.cumulative = []
        total = 0.0
        for w in weights:
            total += w
            self.cumulative.append(total)

    # rates ------------------------------------------------------------------------------------

    def talk_rates(self, t: datetime) -> list[tuple[Presentation, float]]:
        rates = []
        grace = self.event.grace
        for p in self.event.presentations:
            pop = self.popularity[p.slug]
            if p.start <= t < p.end:
                f = (t - p.start) / (p.end - p.start)
                rates.append((p, pop * (0.5 + 0.9 * f * f + (1.0 if f > 0.88 else 0.0))))
            elif p.end <= t < p.end + grace:
                g = (t - p.end) / grace
                rates.append((p, pop * 0.8 * (1.0 - g) ** 1.5))
        return rates

    def base_rate(self, t: datetime) -> tuple[str, float, Break | None]:
        local = self.event.local(t)
        for b in self.event.breaks:
            if b.start <= t < b.end:
                return "break", BREAK_RATE, b
        span = self.day_span.get(local.date())
        if span and span[0] <= t < span[1]:
            running = any(p.start <= t < p.end for p in self.event.presentations)
            return "hallway", DURING_TALK_RATE if running else HALLWAY_RATE, None
        hour = local.hour + local.minute / 60
        if span and t < span[0]:
            if hour < 6:
                return ("evening", 0.06, None) if hour < 1 else ("night", 0.008, None)
            first = span[0].astimezone(self.event.tz)
            ramp = (hour - 6) / max(first.hour + first.minute / 60 - 6, 1)
            return "morning", 0.05 + 0.35 * ramp, None
        if span:
            after = (t - span[1]).total_seconds() / 3600
            return ("evening" if after < 5 else "night"), 0.02 + 0.4 * math.exp(-after / 1.8), None
        return "night", 0.008, None

    # sampling ---------------------------------------------------------------------------------

    def sample(self, n: int) -> list[datetime]:
        """n moments drawn from the intensity, sorted, with millisecond precision."""
        total = self.cumulative[-1]
        out = []
        for _ in range(n):
            i = bisect.bisect_right(self.cumulative, self.rng.random() * total)
            i = min(i, len(self.minutes) - 1)
            out.append(self.minutes[i] + timedelta(milliseconds=self.rng.randrange(60_000)))
        out.sort()
        return out

    def moment(self, t: datetime) -> Moment:
        kind, base, brk = self.base_rate(t)
        talks = self.talk_rates(t)
        parallel = len(talks) > 1
        options: list[tuple[Presentation | None, float]] = [(None, base), *talks]
        pick = self.rng.choices(options, [w for _, w in options])[0][0]
        if pick is None:
            return Moment(t, kind, brk=brk, parallel=parallel)
        return Moment(t, "talk", talk=pick, brk=brk, parallel=parallel)

    def is_daytime(self, t: datetime) -> bool:
        span = self.day_span.get(self.event.local(t).date())
        return bool(span and span[0] <= t < span[1])


def choose_tags(rng: random.Random, event: Event, moment: Moment) -> list[str]:
    """The hashtags as the author typed them: an event tag always, often the room or talk tag."""
    which = 0 if rng.random() < 0.78 else 1
    variants = EVENT_TAG_VARIANTS[which] if which < len(event.hashtags) else (event.hashtags[0],)
    tags = [rng.choice(variants)]
    talk = moment.talk
    if talk is None:
        return tags
    room_tag = event.room(talk.room).hashtag
    roll = rng.random()
    if roll < 0.38 and room_tag:
        tags.append(rng.choice((room_tag, room_tag, room_tag.upper(), room_tag.title())))
    elif roll < 0.62 and talk.hashtag:
        tags.append(talk.hashtag)
    elif roll < 0.70 and talk.hashtag and room_tag:
        tags += [room_tag, talk.hashtag]
    elif roll < 0.70 and room_tag:
        tags.append(room_tag)
    # otherwise neither: placed only if this talk was the only one running
    return tags
