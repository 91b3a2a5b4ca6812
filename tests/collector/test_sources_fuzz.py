"""Every source's parsing, fed mutations of every real payload we hold (tests/data and the
shared fixtures): nothing escapes the source contract (collector/sources/base.py).

Each case ends in changes that can be stored and shown (clean text, times in range, safe URLs,
JSON that UTF-8 can hold), in kept malformed records, or in a deliberate skip; never in any
other exception, which in a live source would stop it on the same payload after every restart.

Each case is one to three edits of a payload's JSON tree (a field replaced by a hostile value,
removed, wrapped, turned into a string, a known key added) or of its bytes, drawn by a generator
that Hypothesis seeds (a batch of cases per example). `make fuzz` runs AFA_FUZZ_EXAMPLES=100000
cases per kind of payload with fresh random seeds and prints the counts; `make test`
runs 3,000 per kind (2,000 feed documents), derandomized so that a run is repeatable.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector import jsontext
from collector.normalise import EARLIEST, LATEST, MAX_COUNT, Change
from collector.sanitise import safe_url
from collector.sources.bluesky.jetstream import MAX_TIME_US, parse_frame
from collector.sources.bluesky.search import oldest_post, parse_search_page, search_page
from collector.sources.feeds import read_feed
from collector.sources.flickr.fetch import FlickrError, Transient, read_answer
from collector.sources.flickr.parse import parse_page
from collector.sources.mastodon.backfill import page_statuses
from collector.sources.mastodon.instance import seen_in
from collector.sources.mastodon.save import parse_events, parse_statuses
from collector.sources.mastodon.sse import SSEParser
from collector.sources.replayed import parse_line
from collector.store import Malformed
from core.items import Item, item_to_dict

ROOT = Path(__file__).resolve().parents[2]
DATA, SHARED = ROOT / "tests" / "data", ROOT / "tests" / "fixtures" / "shared"
EXAMPLES = int(os.environ.get("AFA_FUZZ_EXAMPLES", "0")) or None


BATCH = 25  # payloads per Hypothesis example: its own overhead (a millisecond) is paid per batch
COUNTS: dict[str, int] = {}


def fuzz(cases: int):
    """`cases` mutated payloads in `make test`, AFA_FUZZ_EXAMPLES in `make fuzz`, BATCH of them
    per Hypothesis example (each from a generator seeded by the example: a failure names the
    seed that reproduces it)."""
    return settings(
        max_examples=-(-(EXAMPLES or cases) // BATCH),
        derandomize=EXAMPLES is None,  # in `make test` the same cases every run: no flaky finds
        deadline=None,  # a loaded machine is slow, not wrong
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


HASHTAGS = {"northwind26", "pycon", "bluesky"}


@pytest.fixture(autouse=True, scope="module")
def _quiet():
    """Every malformed payload is logged as a warning: thousands of them would cost more than
    the parsing (the warnings themselves are tested with each source). At the end, the counts
    (`make fuzz` shows them)."""
    logging.disable(logging.WARNING)
    started = time.perf_counter()
    yield
    logging.disable(logging.NOTSET)
    for kind, count in COUNTS.items():
        print(f"fuzzed {kind}: {count:,} payloads")  # noqa: T201 - make fuzz's report
    print(f"fuzzing took {time.perf_counter() - started:.0f} s")  # noqa: T201


def batch(seed: int, kind: str):
    """BATCH generators for one Hypothesis example, each one case."""
    base = random.Random(seed)
    for _ in range(BATCH):
        COUNTS[kind] = COUNTS.get(kind, 0) + 1
        yield random.Random(base.getrandbits(64))


# -- the real payloads ------------------------------------------------------------------------


def _json_files() -> list[Path]:
    files = sorted(SHARED.rglob("*.json")) + sorted(DATA.rglob("*.json"))
    return [f for f in files if not f.name.endswith(".expected.json")]


def _documents() -> list:
    documents = [json.loads(path.read_text(encoding="utf-8")) for path in _json_files()]
    for path in sorted(SHARED.rglob("*.jsonl")) + sorted(DATA.rglob("*.jsonl")):
        lines = path.read_text(encoding="utf-8").splitlines()
        documents += [json.loads(line) for line in lines if line.strip()]
    return documents


DOCUMENTS = _documents()


def _objects(value):
    """Every object inside a document, the document included."""
    todo = [value]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            yield node
            todo.extend(node.values())
        elif isinstance(node, list):
            todo.extend(node)


def _corpus(looks_like) -> list[dict]:
    found = {}
    for document in DOCUMENTS:
        for node in _objects(document):
            if looks_like(node):
                found.setdefault(json.dumps(node, sort_keys=True), node)
    assert found, "no real payload of this kind: the fixtures moved?"
    return list(found.values())


STATUSES = _corpus(lambda o: "uri" in o and "account" in o and "content" in o)
FRAMES = _corpus(lambda o: "did" in o and "kind" in o and "time_us" in o)
POST_VIEWS = _corpus(lambda o: "uri" in o and "record" in o and "author" in o)
PHOTOS = _corpus(lambda o: "id" in o and "owner" in o and "secret" in o)
SEARCH_ANSWERS = [{"posts": POST_VIEWS[i : i + 2], "cursor": "100"}
                  for i in range(0, len(POST_VIEWS), 2)]  # fmt: skip
FLICKR_ANSWERS = [{"photos": {"page": 1, "pages": "3", "perpage": 2, "total": "6",
                              "photo": PHOTOS[i : i + 2]}, "stat": "ok"}
                  for i in range(0, len(PHOTOS), 2)]  # fmt: skip
FLICKR_ANSWERS.append(json.loads((SHARED / "flickr-error-method-not-found.json").read_text()))
STREAMS = [p.read_bytes() for p in sorted(SHARED.glob("mastodon-stream-*.txt"))]
FEEDS = [p.read_bytes() for p in sorted(SHARED.rglob("*.xml")) + sorted(SHARED.rglob("*.rss"))]
FEEDS = list(
    dict.fromkeys(FEEDS + [p.read_bytes() for p in sorted((DATA / "feeds").glob("*.xml"))])
)
KEYS = sorted({k for c in (STATUSES, FRAMES, POST_VIEWS, PHOTOS) for o in c for n in _objects(o)
               for k in n})  # fmt: skip

# -- hostile values and mutations --------------------------------------------------------------
# Hypothesis draws only small choices (which payload, which node, which edit, which hostile
# value from a pool built once): a case costs about a millisecond, so `make fuzz` can run a
# hundred thousand per source.

NASTY = ("\x00\x01\x08\x0b\x0c\r\x1b\x7f\x85\x9f\u200e\u200f\u061c\u202a\u202b\u202c\u202d"
         "\u202e\u2066\u2067\u2068\u2069\ufeff\ufffe\uffff\ud800\udfff<>&\"'#@/:%\\ \n\t")  # fmt: skip


def _hostile_pool(size: int = 400) -> list:
    rng = random.Random(9)  # the same pool every run; the draws from it are Hypothesis's
    texts = ["", "9" * 400, "1e400", "-1", "NaN", "2026-13-45T99:99:99Z",
             "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-05:00", "2026-07-04T14:38:02",
             "javascript:alert(1)", "http://[::1", "https://example.com/\u202egnp.exe",
             "at://did:plc:x/app.bsky.feed.post/3k", "#northwind26 #NorthWind26", "did:plc:x",
             "did:plc:\u202eevil", "app.bsky.richtext.facet#link", "app.bsky.richtext.facet#tag",
             "app.bsky.embed.images", "app.bsky.embed.recordWithMedia", "update", "delete",
             "commit", "identity", "create", "app.bsky.feed.post", "public", "direct", "0",
             "<script>alert(1)</script>", "&amp;&lt;&#0;&#x202e;", "x" * 5000]  # fmt: skip
    texts += ["".join(rng.choice(NASTY + "abc€😀") for _ in range(rng.randint(1, 12)))
              for _ in range(60)]  # fmt: skip
    numbers = [0, 1, -1, 2**31, 2**53, 2**63, 10**30, -(10**30), 1.5, -0.0, float("nan"),
               float("inf"), float("-inf"), 1785592800, 1785592800000000, True, False]  # fmt: skip
    scalars = [None, *texts, *numbers]
    pool = list(scalars)
    while len(pool) < size:
        shape = rng.choice(["list", "dict", "deep"])
        if shape == "list":
            pool.append(rng.sample(scalars, rng.randint(0, 3)))
        elif shape == "dict":
            pool.append({rng.choice(KEYS + texts): rng.choice(scalars) for _ in range(3)})
        else:
            pool.append(json.loads("[" * 99 + "1" + "]" * 99))  # deep, just within jsontext's limit
    return pool


HOSTILE = _hostile_pool()
OPS = ("replace", "replace", "replace", "delete", "wrap", "stringify", "add key")


class Seed:
    """One real payload, as text (parsed afresh for each case) with its tree's paths."""

    def __init__(self, value) -> None:
        self.text = json.dumps(value)
        self.paths = list(_paths(value))


def _paths(value, path=()):
    yield path
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*path, index))


def _edit(root, path, op, hostile, key):
    """`root` with one edit at `path` (skipped when an earlier edit removed the node)."""
    parent, node = None, root
    for step in path:
        if isinstance(node, dict) and step in node or isinstance(node, list) and (
                isinstance(step, int) and step < len(node)):  # fmt: skip
            parent, node = node, node[step]
        else:
            return root
    if op == "replace":
        new = hostile
    elif op == "wrap":
        new = (
            [node] if key.startswith(("a", "b", "c", "d", "e", "f", "g", "h", "i")) else {key: node}
        )
    elif op == "stringify":
        new = json.dumps(node)
    elif op == "add key":
        new = {**node, key: hostile} if isinstance(node, dict) else node
    else:  # delete
        if parent is None:
            return None
        if isinstance(parent, dict):
            parent.pop(path[-1])
        else:
            del parent[path[-1]]
        return root
    if parent is None:
        return new
    parent[path[-1]] = new
    return root


def seeds(values) -> list[Seed]:
    return [Seed(v) for v in values]


def mutated(rng: random.Random, corpus: list[Seed]):
    """A payload of `corpus` with one to three edits."""
    seed = rng.choice(corpus)
    value = json.loads(seed.text)
    for _ in range(rng.randint(1, 3)):
        path, op = rng.choice(seed.paths), rng.choice(OPS)
        value = _edit(value, path, op, rng.choice(HOSTILE), rng.choice(KEYS))
    return value


SEEDS = st.integers(0, 2**64 - 1)


CHUNKS = [b"\xff\xfe", b"\xc0\x80", b"\xed\xa0\x80", b"<![CDATA[", b"&#0;", b"&#x202e;", b"\x00",
          b"<script>", b"]]>", b"\r\n\r\n", b"\x1b[31m", "\u202e".encode(), b"<", b">", b"&",
          b"\"", b"data: ", b"event: update\n", b":thump\n", b"\n\n"] + [
          t.encode("utf-8", "surrogatepass") for t in HOSTILE if isinstance(t, str)][:80]  # fmt: skip


def mutated_bytes(rng: random.Random, corpus: list[bytes]) -> bytes:
    """A document of `corpus` with one to four byte edits (insert, delete, replace, cut)."""
    body = bytearray(rng.choice(corpus))
    for _ in range(rng.randint(1, 4)):
        at, op = (
            rng.randint(0, len(body)),
            rng.choice(["insert", "insert", "delete", "replace", "cut"]),
        )
        if op == "cut":
            del body[at:]
        elif op == "delete":
            del body[at : at + rng.randint(1, 64)]
        else:
            chunk = rng.choice(CHUNKS)
            body[at : at + (len(chunk) if op == "replace" else 0)] = chunk
    return bytes(body)


PAGE_SEEDS = seeds([STATUSES[i : i + 2] for i in range(0, len(STATUSES), 2)])
STATUS_SEEDS, FRAME_SEEDS = seeds(STATUSES), seeds(FRAMES)
SEARCH_SEEDS, FLICKR_SEEDS = seeds(SEARCH_ANSWERS), seeds(FLICKR_ANSWERS)


# -- what must hold of every outcome ------------------------------------------------------------

UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ufffe\uffff"
                    r"\ud800-\udfff]")  # fmt: skip
MARKS = re.compile(r"[\u200e\u200f\u061c]")


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, child in value.items():
            yield from _strings(key)
            yield from _strings(child)
    elif isinstance(value, list | tuple):
        for child in value:
            yield from _strings(child)


def check_change(change) -> None:
    assert isinstance(change, Change), change
    if not isinstance(change, Item):  # a Delete, or what a source says of an author
        texts = [v for v in vars(change).values() if isinstance(v, str)]
        assert not any(UNSAFE.search(t) for t in texts), change
        return
    data = item_to_dict(change)
    jsontext.dumps(data).encode("utf-8")  # storable, publishable
    bad = [s for s in _strings(data) if UNSAFE.search(s)]
    assert not bad, bad
    assert not MARKS.search(change.author.name + change.author.handle)
    assert EARLIEST <= change.created_at < LATEST
    assert change.edited_at is None or EARLIEST <= change.edited_at < LATEST
    urls = [change.url, change.author.url, change.author.avatar, *change.links]
    urls += [u for m in change.media for u in (m.url, m.preview_url)]
    assert all(u == "" or safe_url(u) == u for u in urls), urls
    for n in (change.boosts, change.likes, change.replies):
        assert type(n) is int and 0 <= n < MAX_COUNT
    for m in change.media:
        assert all(v is None or (type(v) is int and 0 < v < MAX_COUNT) for v in (m.width, m.height))


def check_malformed(bad) -> None:
    assert isinstance(bad, Malformed)
    for text in (bad.identity, bad.reason, bad.raw):
        assert isinstance(text, str)
        text.encode("utf-8")


# -- one test per kind of payload --------------------------------------------------------------


@fuzz(3000)
@given(SEEDS)
def test_mastodon_timeline_pages(seed):
    for rng in batch(seed, "Mastodon timeline pages"):
        mastodon_page(mutated(rng, PAGE_SEEDS))


def mastodon_page(page) -> None:
    statuses = page_statuses(page)
    items, bad, _kept = parse_statuses(statuses, "mastodon.social")
    for change in items:
        check_change(change)
    for one in bad:
        check_malformed(one)
    for local_id, created in seen_in(statuses).ids:  # what the cursor may take
        assert re.fullmatch(r"[0-9A-Za-z_-]{1,64}", local_id)
        assert created is None or EARLIEST <= created < LATEST


def _stream(status) -> bytes:
    text = json.dumps(status, ensure_ascii=False)
    return f"event: update\ndata: {text}\n\nevent: delete\ndata: 1234\n\n".encode(
        "utf-8", "surrogatepass")  # fmt: skip


STREAM_BYTES = STREAMS + [_stream(s) for s in STATUSES[:6]]


@fuzz(3000)
@given(SEEDS)
def test_mastodon_stream_events(seed):
    for rng in batch(seed, "Mastodon stream events"):
        mastodon_stream(rng)


def mastodon_stream(rng: random.Random) -> None:
    if rng.random() < 0.5:  # a mutated status in a well-formed stream, or mutated stream bytes
        body = _stream(mutated(rng, STATUS_SEEDS))
    else:
        body = mutated_bytes(rng, STREAM_BYTES)
    parser, events = SSEParser(), []
    cuts = sorted(rng.randint(0, len(body)) for _ in range(rng.randint(0, 4)))  # read chunks
    for start, end in zip([0, *cuts], [*cuts, len(body)], strict=True):
        events += parser.feed(body[start:end])
    changes, bad, seen = parse_events(events, "mastodon.social")
    for change in changes:
        check_change(change)
    for one in bad:
        check_malformed(one)


@fuzz(3000)
@given(SEEDS)
def test_jetstream_frames(seed):
    for rng in batch(seed, "Jetstream frames"):
        jetstream_frame(rng)


def jetstream_frame(rng: random.Random) -> None:
    frame, how = mutated(rng, FRAME_SEEDS), rng.randint(0, 3)
    raw = json.dumps(frame, ensure_ascii=bool(how & 1))
    if how & 2:  # the frame's bytes too
        raw = mutated_bytes(rng, [raw.encode("utf-8", "surrogatepass")]).decode("utf-8", "replace")
    handles: dict[str, str] = {}
    change, bad, time_us = parse_frame(raw, HASHTAGS | {"northwind26"}, handles)
    if change is not None:
        check_change(change)
    if bad is not None:
        check_malformed(bad)
    assert time_us is None or 0 < time_us < MAX_TIME_US


@fuzz(3000)
@given(SEEDS)
def test_bluesky_search_answers(seed):
    for rng in batch(seed, "Bluesky searchPosts answers"):
        search_answer(mutated(rng, SEARCH_SEEDS))


def search_answer(answer) -> None:
    posts, cursor = search_page(answer)
    items, bad = parse_search_page(posts, HASHTAGS)
    for change in items:
        check_change(change)
    for one in bad:
        check_malformed(one)
    oldest = oldest_post(posts)
    assert oldest is None or EARLIEST <= oldest < LATEST
    assert cursor is None or cursor.isprintable()


@fuzz(3000)
@given(SEEDS)
def test_flickr_search_answers(seed):
    for rng in batch(seed, "Flickr search answers"):
        flickr_answer(mutated(rng, FLICKR_SEEDS))


def flickr_answer(answer) -> None:
    try:
        photos, pages = read_answer(answer)
    except (FlickrError, Transient) as exc:  # the poll backs off, or the source stops (error 100)
        str(exc).encode("utf-8", "backslashreplace")
        return
    seen: dict[str, list] = {}
    items, bad, newest = parse_page(photos, seen, now=datetime(2026, 8, 1, tzinfo=UTC).timestamp())
    for change in items:
        check_change(change)
    for one in bad:
        check_malformed(one)
    assert type(pages) is int and 0 <= newest < LATEST.timestamp()
    jsontext.dumps(seen).encode("utf-8")  # the cursor


@fuzz(2000)  # feedparser is the slow one
@given(SEEDS)
def test_feed_documents(seed):
    for rng in batch(seed, "RSS/Atom documents"):
        feed_document(mutated_bytes(rng, FEEDS))


def feed_document(body: bytes) -> None:
    items, bad, _bozo = read_feed(body, "https://feeds.example/tag.rss",
                                  now=datetime(2026, 8, 1, tzinfo=UTC))  # fmt: skip
    for change in items:
        check_change(change)
    for one in bad:
        check_malformed(one)


DELIVERIES = (
    [{"at": "2026-07-04T14:38:02Z", "source": "mastodon", "origin": "mastodon.social",
      "type": "update", "payload": s} for s in STATUSES]
    + [{"at": "2026-07-04T14:38:02Z", "source": "mastodon", "origin": "mastodon.social",
        "type": "delete", "payload": "109876543210"}]
    + [{"at": "2026-07-04T14:38:02Z", "source": "bluesky", "origin": "jetstream",
        "type": "jetstream", "payload": f} for f in FRAMES]
    + [{"at": "2026-07-04T14:38:02Z", "source": "flickr", "origin": "flickr", "type": "photo",
        "payload": p} for p in PHOTOS]
    + [{"format": "afa-recording/1", "event": "northwind-2026"}]
)  # fmt: skip


DELIVERY_SEEDS = seeds(DELIVERIES)


@fuzz(3000)
@given(SEEDS)
def test_recording_lines(seed):
    for rng in batch(seed, "recording lines (replay)"):
        recording_line(rng)


def recording_line(rng: random.Random) -> None:
    line, how = mutated(rng, DELIVERY_SEEDS), rng.randint(0, 3)
    text = json.dumps(line, ensure_ascii=bool(how & 1))
    if how & 2:  # the line's bytes too
        text = mutated_bytes(rng, [text.encode("utf-8", "surrogatepass")]).decode(
            "utf-8", "replace"
        )
    outcome = parse_line(7, text, HASHTAGS, {})
    kind = outcome[0]
    assert kind in ("bad", "header", "ok", "skip", "error"), outcome
    if kind == "ok":
        for change in outcome[3]:
            check_change(change)
    elif kind == "error":
        payload, reason = outcome[3]
        Malformed("replay:line 7", reason, jsontext.dumps(payload))  # what the replay keeps
    elif kind == "bad":
        Malformed("replay:line 7", outcome[3], outcome[2])


def test_every_fixture_kind_is_fuzzed():
    """A payload kind that the corpus lost (a fixture renamed) would be fuzzed on nothing."""
    assert min(len(STATUSES), len(FRAMES), len(POST_VIEWS), len(PHOTOS)) >= 5
    assert len(STREAMS) == 2 and len(FEEDS) >= 15
