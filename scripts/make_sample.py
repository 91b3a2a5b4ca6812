"""Generate the sample recording the demo replays: an event's conversation as its sources sent it.

    python scripts/make_sample.py --content content/northwind-2026 \\
        --out var/recordings/northwind-2026.jsonl [--seed 2026] [--posts 5200]

The output is JSON Lines (format afa-recording/1): a header line, then one line per source
delivery sorted by `at` (when the source published it):
    {"at": "...Z", "source": "mastodon"|"bluesky"|"flickr", "origin": host|"jetstream"|"flickr",
     "type": "update"|"status.update"|"delete"|"jetstream"|"photo", "payload": <source data>}
Payloads have the real sources' shapes (see tests/fixtures/shared). The same seed always gives
the same bytes. Hostile posts carry the text XSS-PROBE so tests can find them.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

from sample import enrich, hostile  # noqa: E402
from sample.bluesky import delete_event, make_jetstream  # noqa: E402
from sample.draft import Draft, compose  # noqa: E402
from sample.flickr import make_photo, talks_before, upload_windows  # noqa: E402
from sample.ids import iso_ms  # noqa: E402
from sample.mastodon import (  # noqa: E402
    BRIDGY,
    MastodonWorld,
    StatusRecord,
    edited,
    reblog_wrapper,
)
from sample.meetups import add_meetups  # noqa: E402
from sample.plan import Timeline  # noqa: E402
from sample.world import LISTENED, Author, build_authors  # noqa: E402

from core.events import Event, load_event  # noqa: E402

FORMAT = "afa-recording/1"
SHARES = {"bluesky": 0.12, "flickr": 0.03}
DUP_RATE = 0.045
REPLY_RATE = 0.12
APPS = (
    {"name": "Web", "website": None},
    {"name": "Ivory for iOS", "website": "https://tapbots.com"},
    {"name": "Tusky", "website": "https://tusky.app"},
    None,
)


@dataclass
class Line:
    at: datetime
    order: int
    source: str
    origin: str
    type: str
    payload: object
    request: dict | None = None  # what an enrichment answer was asked

    def json(self) -> str:
        line = {"at": iso_ms(self.at), "source": self.source, "origin": self.origin,
                "type": self.type}  # fmt: skip
        line |= {"request": self.request} if self.request is not None else {}
        return json.dumps(line | {"payload": self.payload}, ensure_ascii=False,
                          separators=(",", ":"))  # fmt: skip


class Recording:
    def __init__(self) -> None:
        self.lines: list[Line] = []
        self.stats: Counter[str] = Counter()

    def add(self, at: datetime, source: str, origin: str, type_: str, payload: object,
            request: dict | None = None) -> None:  # fmt: skip
        self.lines.append(Line(at, len(self.lines), source, origin, type_, payload, request))

    def write(self, path: Path, header: dict) -> int:
        path.parent.mkdir(parents=True, exist_ok=True)
        ordered = sorted(self.lines, key=lambda line: (iso_ms(line.at), line.order))
        with path.open("w", encoding="utf-8", newline="\n") as out:
            out.write(json.dumps(header, separators=(",", ":")) + "\n")
            for line in ordered:
                out.write(line.json() + "\n")
        return len(ordered) + 1


def assign_authors(rng: random.Random, authors: list[Author], n: int) -> list[Author]:
    """n post slots: everyone posts at least once (if n allows), the rest by Zipf-like weight."""
    picks = list(authors[:n]) + rng.choices(
        authors, [a.weight for a in authors], k=max(0, n - len(authors))
    )
    rng.shuffle(picks)
    return picks


def hostile_slots(rng: random.Random, kinds: list[str], n: int) -> dict[int, str]:
    return dict(zip(rng.sample(range(n), len(kinds)), kinds, strict=True))


def delay(rng: random.Random) -> timedelta:
    """Federation delay of a remote copy: seconds usually, minutes sometimes."""
    if rng.random() < 0.85:
        return timedelta(milliseconds=rng.randint(1_500, 25_000))
    return timedelta(seconds=rng.randint(60, 420))


# Mastodon ---------------------------------------------------------------------------------------


def make_mastodon(
    rng: random.Random,
    event: Event,
    timeline: Timeline,
    world: MastodonWorld,
    authors: list[Author],
    n: int,
    rec: Recording,
) -> list[StatusRecord]:
    kinds = [*hostile.MASTODON_HTML, *hostile.MASTODON_OTHER] * 2
    slots = hostile_slots(rng, kinds, n)
    records: list[StatusRecord] = []
    seen: dict[str, list] = {origin: [] for origin in LISTENED}
    for i, (when, author) in enumerate(
        zip(timeline.sample(n), assign_authors(rng, authors, n), strict=True)
    ):
        moment = timeline.moment(when)
        draft = compose(rng, event, author, moment, authors, slots.get(i))
        origin = author.home if author.listened_home else rng.choice(LISTENED[:4])
        record = new_record(rng, world, draft)
        parent = pick_parent(rng, seen[origin], draft)
        if parent:
            record.reply_to = parent
            draft.segments[:0] = [("mention", parent.draft.author), ("text", " ")]
        at = when if author.home == origin else when + delay(rng)
        home_id = record.uri.rsplit("/", 1)[-1] if author.home == origin else ""
        first = world.deliver(record, origin, at, home_id)
        seen[origin].append((first, record))
        rec.add(at, "mastodon", origin, "update", first.payload)
        if not parent and rng.random() < DUP_RATE:
            other = rng.choice([o for o in LISTENED if o != origin])
            dup = world.deliver(
                record, other, max(at, when + delay(rng)) + timedelta(milliseconds=5)
            )
            seen[other].append((dup, record))
            rec.add(dup.at, "mastodon", other, "update", dup.payload)
        rec.stats["mastodon"] += 1
        records.append(record)
    return records


def new_record(rng: random.Random, world: MastodonWorld, draft: Draft) -> StatusRecord:
    author = draft.author
    home_id = world.snowflake(author.home, draft.created)
    record = StatusRecord(
        draft=draft,
        home=author.home,
        uri=f"https://{author.home}/users/{author.username}/statuses/{home_id}",
        url=f"https://{author.home}/@{author.username}/{home_id}",
        application=rng.choice(APPS),
    )
    hot = 3 if draft.moment.talk and draft.moment.talk.kind == "keynote" else 1
    record.counts = (
        int(rng.paretovariate(2.0)) - 1,
        (int(rng.paretovariate(1.4)) - 1) * hot,
        (int(rng.paretovariate(1.1)) - 1) * hot,
    )
    if draft.hostile == "card_script" and not draft.link:
        draft.link = "https://evil.example/northwind-recap"
        draft.segments += [("text", " "), ("link", draft.link)]
    if draft.hostile == "card_script":
        record.card = world.card(draft.link, iframe=False, hostile_html=True)
    elif draft.link and rng.random() < 0.4:
        record.card = world.card(draft.link, iframe=rng.random() < 0.1)
    return record


def pick_parent(rng: random.Random, seen: list, draft: Draft) -> StatusRecord | None:
    if rng.random() >= REPLY_RATE:
        return None
    limit = draft.created - timedelta(seconds=5)
    recent = [r for d, r in seen[-80:] if d.at < limit and r.draft.author is not draft.author]
    return rng.choice(recent) if recent else None


def add_followups(
    rng: random.Random,
    world: MastodonWorld,
    records: list[StatusRecord],
    authors: list[Author],
    rec: Recording,
) -> None:
    """A handful of edits, deletes and boosts (reblog wrappers) of earlier statuses."""
    plain = [r for r in records if not r.draft.hostile and not r.reply_to]
    chosen = rng.sample(plain, 20)
    for record in chosen[:8]:
        when = record.draft.created + timedelta(
            minutes=rng.randint(3, 40), seconds=rng.random() * 59
        )
        note = rng.choice(
            ("edit: fixed the speaker's name, sorry!", "edit: typo", "edit: added the slides link")
        )
        for d in list(record.deliveries):
            at = max(when, d.at + timedelta(seconds=1)) + (
                timedelta(0) if d.origin == record.home else delay(rng)
            )
            rec.add(at, "mastodon", d.origin, "status.update", edited(d, when, note))
        rec.stats["edits"] += 1
    for record in chosen[8:14]:
        when = record.draft.created + timedelta(minutes=rng.randint(5, 120))
        record.deleted_at = when
        for d in record.deliveries:
            rec.add(
                max(when, d.at) + timedelta(seconds=rng.randint(0, 30)),
                "mastodon",
                d.origin,
                "delete",
                d.local_id,
            )
        rec.stats["deletes"] += 1
    for record in chosen[14:20]:
        inner = record.deliveries[0]
        locals_ = [a for a in authors if a.home == inner.origin and a is not record.draft.author]
        booster = rng.choice(locals_ or authors)
        at = inner.at + timedelta(minutes=rng.randint(1, 60), milliseconds=rng.randint(0, 999))
        rec.add(at, "mastodon", inner.origin, "update", reblog_wrapper(world, inner, booster, at))
        rec.stats["boosts"] += 1


# Bluesky ----------------------------------------------------------------------------------------


def make_bluesky(
    rng: random.Random,
    event: Event,
    timeline: Timeline,
    authors: list[Author],
    n: int,
    rec: Recording,
    commits: dict[str, tuple[dict, datetime | None]],
) -> list[tuple[Draft, str, datetime]]:
    """Jetstream commits carrying only the author's DID (names come from the getProfiles answers
    of sample/enrich.py); `commits` gets each post's event and when it was deleted, if it was."""
    kinds = list(hostile.BLUESKY_TEXT) * 2
    slots = hostile_slots(rng, kinds, n)
    posts = []
    for i, (when, author) in enumerate(
        zip(timeline.sample(n), assign_authors(rng, authors, n), strict=True)
    ):
        draft = compose(rng, event, author, timeline.moment(when), authors, slots.get(i))
        event_json, at_uri, emitted = make_jetstream(rng, draft, rng.randrange(1024))
        rec.add(emitted, "bluesky", "jetstream", "jetstream", event_json)
        posts.append((draft, at_uri, emitted))
        commits[at_uri] = (event_json, None)
        rec.stats["bluesky"] += 1
    plain = [p for p in posts if not p[0].hostile]
    for draft, at_uri, emitted in rng.sample(plain, 3):
        when = emitted + timedelta(minutes=rng.randint(10, 90))
        rec.add(
            when,
            "bluesky",
            "jetstream",
            "jetstream",
            delete_event(draft.author.did, at_uri.rsplit("/", 1)[-1], when, rng.randrange(1024)),
        )
        commits[at_uri] = (commits[at_uri][0], when)
        rec.stats["bluesky_deletes"] += 1
    return posts


def add_bridgy_mirrors(
    rng: random.Random, world: MastodonWorld, posts: list, rec: Recording
) -> None:
    """Bridgy Fed copies of Bluesky posts, as mastodon.social sees them."""
    candidates = [
        p for p in posts if not p[0].hostile and all(s[0] != "mention" for s in p[0].segments)
    ]
    for draft, at_uri, emitted in rng.sample(candidates, 10):
        did, rkey = at_uri.split("/")[2], at_uri.rsplit("/", 1)[-1]
        record = StatusRecord(
            draft=draft,
            home=BRIDGY,
            uri=f"https://{BRIDGY}/convert/ap/{at_uri}",
            url=f"https://{BRIDGY}/r/https://bsky.app/profile/{did}/post/{rkey}",
            bridged_from=at_uri,
        )
        at = emitted + timedelta(seconds=rng.randint(15, 240))
        delivery = world.deliver(record, "mastodon.social", at)
        rec.add(at, "mastodon", "mastodon.social", "update", delivery.payload)
        rec.stats["bridgy"] += 1


# Flickr -----------------------------------------------------------------------------------------


def make_flickr(
    rng: random.Random, event: Event, owners: list[Author], n: int, rec: Recording
) -> list[tuple[dict, datetime]]:
    owners[0].display_name = hostile.AWKWARD_OWNER
    slots = hostile_slots(rng, list(hostile.FLICKR) * 2, n)
    windows = upload_windows(event)
    queue = list(owners)
    rng.shuffle(queue)
    made, photos = 0, []
    while made < n:
        owner = queue.pop() if queue else rng.choice(owners)
        start, end = rng.choice(windows)
        at = start + (end - start) * rng.random() * 0.8
        at = at.replace(microsecond=0)
        talks = talks_before(event, at) or event.presentations
        for _ in range(min(n - made, rng.randint(5, 14))):
            at += timedelta(seconds=rng.randint(2, 25))
            photo = make_photo(rng, event, owner, at, rng.choice(talks), made, slots.get(made))
            rec.add(at, "flickr", "flickr", "photo", photo)
            photos.append((photo, at))
            made += 1
    rec.stats["flickr"] = made
    return photos


# Enrichment -------------------------------------------------------------------------------------


def add_enrichment(
    rng: random.Random, event: Event, rec: Recording, records: list[StatusRecord],
    bsky_posts: list, commits: dict[str, tuple[dict, datetime | None]],
    photos: list[tuple[dict, datetime]],
) -> None:  # fmt: skip
    """What the collector's enrichment asked and was told (sample/enrich.py): profiles, count
    refreshes, Flickr deletions found by them, and a few frames that break the lexicon."""
    world = enrich.World()
    firsts: dict[str, tuple[Author, datetime]] = {}
    for draft, _uri, emitted in sorted(bsky_posts, key=lambda p: p[2]):
        firsts.setdefault(draft.author.did, (draft.author, emitted))
    quiet = [a for a, _ in firsts.values() if not any(p[0].hostile for p in bsky_posts
                                                       if p[0].author is a)]  # fmt: skip
    opted_out = quiet[-1]
    enrich.add_profiles(rng, rec.add, world, list(firsts.values()), opted_out)
    talker = max(quiet[:-1], key=lambda a: sum(p[0].author is a for p in bsky_posts))
    moved = sorted(p[2] for p in bsky_posts if p[0].author is talker)
    enrich.add_handle_change(
        rng, rec.add, world, talker, moved[len(moved) // 2] + timedelta(seconds=1)
    )
    last_start = max(s.start for s in event.sessions)
    world.posts += _mastodon_counted(records) + _flickr_counted(rng, photos, last_start)
    world.posts += _bluesky_counted(rng, world, bsky_posts, commits, opted_out)
    rec.stats.update(enrich.add_refreshes(rng, rec.add, event, world))
    good = [commits[uri][0] for _d, uri, _e in bsky_posts if commits[uri][1] is None]
    for _why, frame in enrich.bad_frames(rng, good):
        frame["time_us"] += 1
        rec.add(datetime.fromtimestamp(frame["time_us"] / 1e6, UTC), "bluesky", "jetstream",
                "jetstream", frame)  # fmt: skip
        rec.stats["malformed"] += 1
    rec.stats["profiles"] = len(firsts) + 1
    rec.stats["flickr_gone"] = sum(1 for p in world.posts if p.gone_at is not None)


def _mastodon_counted(records: list[StatusRecord]) -> list[enrich.Counted]:
    counted = []
    for record in records:
        if record.deleted_at is not None:
            continue  # its delete event retracted it: a refresh never asks about it
        first = record.deliveries[0]
        replies, reblogs, favs = record.counts
        counted.append(enrich.Counted(
            "mastodon", record.draft.created, (reblogs, favs, replies),
            enrich.status_answer(first.payload, first.origin == record.home),
            origin=first.origin, key=first.local_id, arrived=first.at))  # fmt: skip
    return counted


def _bluesky_counted(rng, world, bsky_posts, commits, opted_out: Author) -> list[enrich.Counted]:
    counted = []
    for draft, uri, emitted in bsky_posts:
        event_json, deleted = commits[uri]
        if deleted is not None or draft.author is opted_out:
            continue  # retracted, or never shown: a refresh asks only about visible posts
        hot = 3 if draft.moment.talk and draft.moment.talk.kind == "keynote" else 1
        answer = enrich.post_view_answer(world, event_json, uri, emitted)
        counted.append(enrich.Counted("bluesky", draft.created, enrich.reaction_counts(rng, hot),
                                      answer, origin="appview", key=uri, arrived=emitted))  # fmt: skip
    return counted


def _flickr_counted(
    rng: random.Random, photos: list[tuple[dict, datetime]], before: datetime
) -> list[enrich.Counted]:
    counted = []
    early = [n for n, (_p, at) in enumerate(photos) if at < before - timedelta(minutes=90)]
    gone = set(rng.sample(early, 4))  # deleted or made private, without notice, before the end
    for n, (photo, at) in enumerate(photos):
        _boosts, faves, comments = enrich.reaction_counts(rng)
        later = at + timedelta(minutes=rng.randint(10, 90)) if n in gone else None
        counted.append(enrich.Counted("flickr", at, (0, faves, comments),
                                      enrich.photo_answer(photo), origin="flickr", key=photo["id"],
                                      gone_at=later, arrived=at))  # fmt: skip
    return counted


# main -------------------------------------------------------------------------------------------


def generate(content: Path, seed: int, posts: int) -> tuple[Event, Recording, list[Author]]:
    rng = random.Random(seed)
    event = load_event(content)
    authors = build_authors(rng)
    by_source = {
        s: [a for a in authors if a.source == s] for s in ("mastodon", "bluesky", "flickr")
    }
    mallory = next(a for a in by_source["mastodon"] if a.home == "hachyderm.io")
    mallory.display_name, mallory.hostile, mallory.weight = hostile.HOSTILE_DISPLAY_NAME, True, 0.03
    timeline = Timeline(event, rng)
    n_bsky, n_flickr = round(posts * SHARES["bluesky"]), round(posts * SHARES["flickr"])
    rec = Recording()
    world = MastodonWorld(rng)
    records = make_mastodon(
        rng, event, timeline, world, by_source["mastodon"], posts - n_bsky - n_flickr, rec
    )
    add_followups(rng, world, records, by_source["mastodon"], rec)
    commits: dict[str, tuple[dict, datetime | None]] = {}
    bsky_posts = make_bluesky(rng, event, timeline, by_source["bluesky"], n_bsky, rec, commits)
    add_bridgy_mirrors(rng, world, bsky_posts, rec)
    photos = make_flickr(rng, event, by_source["flickr"], n_flickr, rec)
    add_meetups(random.Random(f"{seed}-meetups"), event, world, by_source["mastodon"], rec)
    add_enrichment(rng, event, rec, records, bsky_posts, commits, photos)
    rec.stats["two_origin_uris"] = sum(len({d.origin for d in r.deliveries}) > 1 for r in records)
    rec.stats["hostile"] = (
        sum(1 for r in records if r.draft.hostile)
        + sum(1 for d, _, _ in bsky_posts if d.hostile)
        + 2 * len(hostile.FLICKR)
    )
    rec.stats["authors"] = len(
        {r.draft.author.key for r in records}
        | {d.author.key for d, _, _ in bsky_posts}
        | {a.key for a in by_source["flickr"]}
    )
    return event, rec, authors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--content", type=Path, required=True, help="the event folder, e.g. content/northwind-2026"
    )
    parser.add_argument("--out", type=Path, required=True, help="the .jsonl file to write")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--posts", type=int, default=5200, help="distinct posts across all sources")
    args = parser.parse_args(argv)
    event, rec, _ = generate(args.content, args.seed, args.posts)
    header = {
        "format": FORMAT,
        "event": event.slug,
        "seed": args.seed,
        "generated_by": "scripts/make_sample.py",
    }
    count = rec.write(args.out, header)
    s = rec.stats
    print(
        f"{args.out}: {count} lines; posts mastodon={s['mastodon']} bluesky={s['bluesky']} "
        f"flickr={s['flickr']} (total {s['mastodon'] + s['bluesky'] + s['flickr']}); "
        f"authors={s['authors']}; two-origin uris={s['two_origin_uris']}; hostile={s['hostile']}; "
        f"edits={s['edits']} deletes={s['deletes'] + s['bluesky_deletes']} boosts={s['boosts']} "
        f"bridgy={s['bridgy']} meetups={s['meetups']} ({s['meetup_replies']} replies, "
        f"{s['meetup_boosts']} boosts); profiles={s['profiles']} refreshes={s['refreshes']} "
        f"count answers={s['answers']} flickr gone unannounced={s['flickr_gone']} "
        f"malformed={s['malformed']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
