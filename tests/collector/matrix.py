"""The acceptance fault matrix: `python -m collector run` as a real process against the fakes.

A test builds one `Adapter` per source (each wraps a fake and knows how to publish a good post,
a poison post the parser must reject, an edit or a delete, and how to inject each fault), writes
a tmp content folder whose event.yaml points the sources at the fakes with short timeouts, and
hands them to `run_matrix`, which publishes over time while injecting faults at seeded random
steps and SIGKILLing the collector twice, then checks the archive and the Redis stream.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import redis as redis_lib

from core.tail import decode_entry, seq_of, stream_key
from tests.fakes.base import FakeServer
from tests.fakes.feeds import FeedsFake
from tests.fakes.flickr import DEFAULT_KEY, FlickrFake
from tests.fakes.jetstream import JetstreamFake, post_event
from tests.fakes.mastodon import DEFAULT_TOKEN, MastodonFake, new_status

ROOT = Path(__file__).resolve().parents[2]
EVENT = "matrix-2026"
TAG = "northwind26"
FAST = {"backoff_seconds": [0.05, 0.3]}


def iso(when: datetime | None = None) -> str:
    return (when or datetime.now(UTC)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- sources ---------------------------------------------------------------------------------


@dataclass
class Adapter:
    """One source under test: its fake, what it published, and what the archive must end with."""

    fake: FakeServer
    expected: dict[str, str] = field(default_factory=dict)  # uri -> "visible" | "deleted"
    edited: set[str] = field(default_factory=set)
    poison: set[str] = field(default_factory=set)  # malformed identities, never archived
    published: int = 0  # posts published, poison included
    mutations: int = 0
    deferred: int = 0  # mutations that had to wait for a connected, settled collector
    changed_while_down: int = 0
    stalled_at: float = 0.0
    cuts: int = 0
    can_mutate_when_down = False  # edits and deletes reach us however long we were away

    name = "?"
    stall_seconds = 2.0  # past the source's watchdog / request timeout

    def config(self) -> dict: ...
    def publish(self, k: int) -> None: ...
    def publish_poison(self, k: int) -> None: ...
    def mutate(self, rng: random.Random) -> str | None:
        return None

    def cut(self) -> None:
        self.fake.faults.cut(1)
        self.cuts += 1

    def stall(self) -> None:
        self.stalled_at = time.time()
        self.fake.faults.stall(self.stall_seconds)

    def woke_from_stall(self) -> bool:
        """A request (a reconnect, a retried poll) came while the fake was silent: the
        watchdog or the request timeout gave up on the silent connection."""
        start, end = self.stalled_at + 0.5, self.stalled_at + self.stall_seconds
        return any(start < r.at < end for r in self.fake.requests)

    def rate_limit(self) -> None:
        self.fake.faults.rate_limit(count=2, reset_in=0.4)

    def burst(self) -> None:
        self.fake.faults.fail(502, count=3)

    def pending_cuts(self) -> int:
        return self.fake.faults._cut

    def nudge(self, k: int) -> None:
        """Something for a pending cut to fall on."""
        self.publish(k)


class Mastodon(Adapter):
    name = "mastodon"

    def config(self) -> dict:
        return {"type": "mastodon", "instance": self.fake.url, "hashtags": [TAG],
                "token_env": "AFA_MASTODON_TOKEN", "watchdog_seconds": 0.8,
                "min_connected_seconds": 0, "poll_seconds": 0.3, "overlap_seconds": 120,
                "request_timeout": 1.5, "max_rate_limit_wait": 2, **FAST}  # fmt: skip

    def publish(self, k: int) -> None:
        status = self.fake.publish(new_status(f"<p>toot {k} #{TAG}</p>", tags=[TAG],
                                              username=f"user{k % 9}"))  # fmt: skip
        self.expected[status["uri"]] = "visible"
        self.published += 1

    def publish_poison(self, k: int) -> None:
        status = new_status(f"<p>poison {k} #{TAG}</p>", tags=[TAG], account=None)
        status = self.fake.publish(status)
        self.poison.add(f"mastodon:{self.fake.host.split(':')[0]}/{status['id']}")
        self.published += 1

    def mutate(self, rng: random.Random) -> str | None:
        """Edits and deletes over the stream (the REST timeline shows neither a delete nor,
        outside the overlap, an edit), so only while the collector is connected and settled."""
        live = [u for u, s in self.expected.items() if s == "visible" and u not in self.edited]
        uri = rng.choice(live)
        sid = next(i for i in self.fake.ids() if self.fake.status(i)["uri"] == uri)
        if self.mutations % 2:  # delete, edit, delete …
            self.fake.edit(sid, content=f"<p>edited #{TAG}</p>")
            self.edited.add(uri)
        else:
            self.fake.delete(sid)
            self.expected[uri] = "deleted"
        return uri

    def rate_limit(self) -> None:
        self.fake.faults.rate_limit(count=2, reset_in=0.4, path="/api/v1/timelines")


class Bluesky(Adapter):
    name = "bluesky"
    can_mutate_when_down = True  # Jetstream replays deletes and updates from the cursor

    def config(self) -> dict:
        return {"type": "bluesky", "hashtags": [TAG], "jetstream": self.fake.ws_url + "/subscribe",
                "watchdog_seconds": 0.8, "batch_seconds": 0.05, **FAST}  # fmt: skip

    def record(self, k: int, text: str | None = None, when: str | None = None) -> dict:
        return {"$type": "app.bsky.feed.post", "text": text or f"skeet {k} #{TAG}",
                "createdAt": when or iso(), "langs": ["en"]}  # fmt: skip

    def did(self, k: int) -> str:
        return f"did:plc:matrix{k % 7:04d}"

    def publish(self, k: int) -> None:
        did, rkey = self.did(k), f"3mx{k:07d}aa"
        self.fake.publish(post_event(did, rkey, self.record(k)))
        self.fake.publish(
            {
                "did": did,
                "time_us": 0,
                "kind": "identity",
                "identity": {"did": did, "handle": f"h{k % 7}.example", "seq": k, "time": iso()},
            }
        )  # fmt: skip - noise between posts
        self.expected[f"at://{did}/app.bsky.feed.post/{rkey}"] = "visible"
        self.published += 1

    def publish_poison(self, k: int) -> None:
        did, rkey = self.did(k), f"3mxbad{k:04d}a"
        self.fake.publish(post_event(did, rkey, self.record(k, when="yesterday-ish")))
        self.poison.add(f"at://{did}/app.bsky.feed.post/{rkey}")
        self.published += 1

    def mutate(self, rng: random.Random) -> str | None:
        live = [u for u, s in self.expected.items() if s == "visible" and u not in self.edited]
        uri = rng.choice(live)
        did, _, rkey = uri.removeprefix("at://").partition("/app.bsky.feed.post/")
        if self.mutations % 2:  # delete, edit, delete …
            k = int(rkey[3:10])
            record = self.record(k, text=f"skeet {k} edited #{TAG}")
            self.fake.publish(post_event(did, rkey, record, operation="update"))
            self.edited.add(uri)
        else:
            self.fake.delete_post(did, rkey)
            self.expected[uri] = "deleted"
        return uri

    def rate_limit(self) -> None:  # answered to the next websocket upgrade: after a cut
        self.fake.faults.rate_limit(count=1, reset_in=0.3)

    def burst(self) -> None:
        self.fake.faults.fail(502, count=2)


class Flickr(Adapter):
    name = "flickr"
    stall_seconds = 2.0

    def config(self) -> dict:
        return {"type": "flickr", "tags": [TAG], "key_env": "AFA_TEST_FLICKR_KEY",
                "base_url": self.fake.url + "/services/rest/", "interval": 0.2, "since": 0,
                "per_page": 20, "request_timeout": 1.0, **FAST}  # fmt: skip

    def photo(self, k: int) -> dict:
        return {"id": str(53000000000 + k), "owner": f"{k % 5}2345678@N00", "secret": f"s{k:05d}",
                "server": "65535", "farm": 66, "title": f"Photo {k}", "ispublic": 1,
                "isfriend": 0, "isfamily": 0, "description": {"_content": f"Talk <b>{k}</b>"},
                "license": "4", "ownername": "Kim", "tags": f"{TAG} amsterdam",
                "url_l": f"https://live.staticflickr.com/65535/{k}_l.jpg",
                "height_l": 768, "width_l": 1024}  # fmt: skip

    def publish(self, k: int) -> None:
        photo = self.fake.publish(self.photo(k), uploaded=time.time() - 1)
        self.expected[f"https://www.flickr.com/photos/{photo['owner']}/{photo['id']}"] = "visible"
        self.published += 1

    def publish_poison(self, k: int) -> None:
        self.fake.faults.malformed(1)  # and a truncated response, retried, never archived half
        photo = {"id": str(53900000000 + k), "owner": "", "tags": TAG}  # no owner: no identity
        self.fake.publish(photo, uploaded=time.time() - 1)
        self.poison.add(f"flickr:{photo['id']}")
        self.published += 1

    def nudge(self, k: int) -> None:
        time.sleep(0.1)  # a poll takes the pending cut


class Feeds(Adapter):
    name = "feed"
    stall_seconds = 2.0
    can_mutate_when_down = True  # a feed is a state: an edit is seen at the next poll

    def __init__(self, fake: FeedsFake) -> None:
        super().__init__(fake)
        self.entries: dict[int, str] = {}
        self.url = fake.url + "/blog.rss"
        self.show()

    def config(self) -> dict:
        return {"type": "feed", "url": self.url, "interval": 0.2, "request_timeout": 1.0, **FAST}

    def entry(self, k: int, body: str) -> str:
        return (f"<item><guid>https://blog.example/p/{k}</guid><link>https://blog.example/p/{k}"
                f"</link><title>Post {k}</title><pubDate>{time.strftime('%a, %d %b %Y %H:%M:%S')}"
                f" GMT</pubDate><description>&lt;p&gt;{body}&lt;/p&gt;</description></item>")  # fmt: skip

    def show(self) -> None:
        items = "".join(self.entries[k] for k in sorted(self.entries, reverse=True))
        self.fake.set_feed("/blog.rss", f'<?xml version="1.0"?><rss version="2.0"><channel>'
                           f"<title>Blog</title>{items}</channel></rss>")  # fmt: skip

    def publish(self, k: int) -> None:
        self.entries[k] = self.entry(k, f"Body {k}")
        self.show()
        self.expected[f"https://blog.example/p/{k}"] = "visible"
        self.published += 1

    def publish_poison(self, k: int) -> None:
        """A feed has no poison entry (feedparser reads anything): its malformed payloads are
        truncated documents, which must be retried, never archived half."""
        self.fake.faults.malformed(1)

    def mutate(self, rng: random.Random) -> str | None:
        k = rng.choice(
            [k for k in self.entries if f"https://blog.example/p/{k}" not in self.edited]
        )
        self.entries[k] = self.entry(k, f"Body {k}, edited")
        self.show()
        uri = f"https://blog.example/p/{k}"
        self.edited.add(uri)
        return uri

    def nudge(self, k: int) -> None:
        time.sleep(0.1)


def start_adapters(names: list[str]) -> list[Adapter]:
    made: list[Adapter] = []
    for name in names:
        if name == "mastodon":
            made.append(Mastodon(MastodonFake(heartbeat=0.2).start()))
        elif name == "bluesky":
            made.append(Bluesky(JetstreamFake().start()))
        elif name == "flickr":
            made.append(Flickr(FlickrFake().start()))
        else:
            made.append(Feeds(FeedsFake().start()))
    return made


# -- the collector process -------------------------------------------------------------------


class CollectorProcess:
    """`python -m collector run EVENT` in a subprocess; each run logs to its own file."""

    def __init__(self, tmp: Path, redis_url: str, adapters: list[Adapter]) -> None:
        self.tmp, self.runs, self.killed, self.started_at = tmp, 0, 0, 0.0
        self.proc: subprocess.Popen | None = None
        content = tmp / "content" / EVENT
        content.mkdir(parents=True)
        today = datetime.now(UTC).date().isoformat()
        event = {"name": "Matrix", "start": today, "end": today, "timezone": "UTC",
                 "hashtags": [TAG], "rooms": [{"slug": "main", "name": "Main"}],
                 "sources": [a.config() for a in adapters]}  # fmt: skip
        (content / "event.yaml").write_text(json.dumps(event, indent=2))  # JSON is YAML
        schedule = {"days": [{"date": today, "sessions": [{"slug": "s", "title": "All day",
                    "start": "00:00", "end": "23:59", "presentations": [{"slug": "t",
                    "title": "Talk", "speakers": ["A"], "room": "main", "start": "00:00",
                    "end": "23:59"}]}]}]}  # fmt: skip
        (content / "schedule.yaml").write_text(json.dumps(schedule, indent=2))
        self.env = {**os.environ, "AFA_CONTENT_DIR": str(tmp / "content"),
                    "AFA_ARCHIVE_PATH": str(tmp / "archive.db"), "AFA_VAR_DIR": str(tmp / "var"),
                    "REDIS_URL": redis_url, "AFA_MASTODON_TOKEN": DEFAULT_TOKEN,
                    "AFA_TEST_FLICKR_KEY": DEFAULT_KEY, "PYTHONUNBUFFERED": "1"}  # fmt: skip
        self.db_path = tmp / "archive.db"

    def start(self) -> None:
        self.runs += 1
        self.started_at = time.time()
        log = open(self.tmp / f"collector-{self.runs}.log", "wb")  # noqa: SIM115 - the child's
        self.proc = subprocess.Popen([sys.executable, "-m", "collector", "run", EVENT],
                                     cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        log.close()

    def kill(self) -> None:
        assert self.proc is not None and self.proc.poll() is None, self.logs()
        self.proc.send_signal(signal.SIGKILL)
        assert self.proc.wait(10) == -signal.SIGKILL
        self.killed += 1

    def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError("the collector did not stop on SIGTERM") from None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:]
                         for p in sorted(self.tmp.glob("collector-*.log")))  # fmt: skip

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "collector", *args], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=30)  # fmt: skip

    def query(self, sql: str, *params) -> list[tuple]:
        if not self.db_path.exists():
            return []
        conn = sqlite3.connect(self.db_path, timeout=5)
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError:  # the schema is not there yet
            return []
        finally:
            conn.close()


# -- the run ---------------------------------------------------------------------------------


@dataclass
class Plan:
    """Which step gets which fault, per source, drawn from a seeded generator."""

    steps: int
    faults: dict[int, list[tuple[Adapter, str]]]
    kills: list[int]

    @classmethod
    def draw(cls, rng: random.Random, adapters: list[Adapter], steps: int = 36) -> Plan:
        faults: dict[int, list[tuple[Adapter, str]]] = {}
        kills = sorted(rng.sample(range(8, steps - 6), 2))
        while kills[1] - kills[0] < 8:
            kills = sorted(rng.sample(range(8, steps - 6), 2))
        down = {s for k in kills for s in range(k, k + 3)}
        for a in adapters:
            free = [s for s in range(2, steps - 2) if s not in down]
            chosen = rng.sample(free, 10 + 1 + 2 + 2 + 3 + 3)
            kinds = (["cut"] * 10 + ["stall"] + ["rate_limit"] * 2 + ["burst"] * 2
                     + ["poison"] * 3 + ["mutate"] * 3)  # fmt: skip
            for step, kind in zip(chosen, kinds, strict=True):
                if kind == "mutate" and a.can_mutate_when_down:
                    step = rng.choice([s for s in range(2, steps - 2)])  # the kill windows too
                faults.setdefault(step, []).append((a, kind))
        return cls(steps, faults, kills)


def wait_until(predicate, timeout: float, what: str, proc: CollectorProcess) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        code = proc.proc.poll() if proc.proc else None
        if code is not None and code != -signal.SIGKILL:
            raise AssertionError(f"the collector exited ({code}) waiting for {what}\n{proc.logs()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{proc.logs()}")
        time.sleep(0.05)


def statuses(proc: CollectorProcess) -> dict[str, str]:
    return dict(proc.query("SELECT uri, status FROM items WHERE event = ?", EVENT))


def settled(proc: CollectorProcess, adapter: Adapter) -> bool:
    """Every post published so far is in the archive as expected, and the stream is open."""
    got = statuses(proc)
    if any(got.get(u) != s for u, s in adapter.expected.items()):
        return False
    if not all(edited(proc, u) for u in adapter.edited if adapter.expected[u] == "visible"):
        return False
    streams = (MastodonFake, JetstreamFake)
    return not isinstance(adapter.fake, streams) or len(adapter.fake.hub) >= 1


def run_matrix(tmp: Path, redis_url: str, names: list[str], seed: int) -> dict:
    adapters = start_adapters(names)
    proc = CollectorProcess(tmp, redis_url, adapters)
    rng = random.Random(seed)
    plan = Plan.draw(rng, adapters)
    started = time.monotonic()
    try:
        proc.start()
        for a in adapters:  # a first start of Jetstream is the live tail: connect first
            if isinstance(a.fake, JetstreamFake):
                wait_until(lambda a=a: len(a.fake.hub) >= 1, 30, "the first connection", proc)
            a.publish(0)
        wait_until(lambda: all(settled(proc, a) for a in adapters), 30, "the first posts", proc)
        for step in range(1, plan.steps):
            if step in plan.kills:
                stalls_end = max(a.stalled_at + a.stall_seconds for a in adapters)
                time.sleep(max(stalls_end + 0.3 - time.time(), 0))  # a kill ends no stall early
                proc.kill()
                for a in adapters:  # two changes (edit, delete) while no collector runs
                    if a.can_mutate_when_down:
                        apply(a, "mutate", step, rng, proc)
                        apply(a, "mutate", step, rng, proc)
                        a.changed_while_down += 2
            elif step - 3 in plan.kills:
                proc.start()
            for a, kind in plan.faults.get(step, []):
                apply(a, kind, step, rng, proc)
            for a in adapters:
                for n in range(rng.randint(1, 3)):
                    a.publish(step * 10 + n)
            time.sleep(rng.uniform(0.05, 0.15))
        for a in adapters:  # every cut injected has fallen on something
            wait_until(lambda a=a: a.pending_cuts() == 0 or a.nudge(rng.randrange(10**6)),
                       20, f"{a.name}: the last cuts", proc)  # fmt: skip
        for a in adapters:
            wait_until(lambda a=a: settled(proc, a), 40, f"{a.name}: every post archived", proc)
            while a.deferred:
                a.deferred -= 1
                apply(a, "mutate", plan.steps, rng, proc)
        time.sleep(0.5)  # anything late (a duplicate, a poison post) would show now
        assert proc.alive(), proc.logs()
        assert proc.stop() == 0, proc.logs()
        figures = check(proc, adapters, redis_url)
        figures["seconds"] = round(time.monotonic() - started, 1)
        return figures
    finally:
        proc.stop()
        for a in adapters:
            a.fake.stop()


def apply(a: Adapter, kind: str, step: int, rng: random.Random, proc: CollectorProcess) -> None:
    if kind == "poison":
        a.publish_poison(step)
    elif kind == "mutate":
        if not a.can_mutate_when_down:
            if not proc.alive() or a.pending_cuts():
                a.deferred += 1  # done once the faults are over
                return
            wait_until(lambda: settled(proc, a), 20, f"{a.name}: settled before a change", proc)
        uri = a.mutate(rng)
        a.mutations += 1
        if uri is None:
            return
        if not a.can_mutate_when_down:  # the change must land before the next fault
            want = a.expected[uri]
            wait_until(lambda: statuses(proc).get(uri) == want and (
                uri not in a.edited or edited(proc, uri)), 20, f"{a.name}: {uri}", proc)  # fmt: skip
    elif kind == "stall":  # on a running, caught-up collector, so that the stall is what it meets
        if proc.alive():  # and this run of it has reached the source (not still starting)
            wait_until(lambda: settled(proc, a) and any(
                r.at > proc.started_at for r in a.fake.requests), 20,
                f"{a.name}: settled before the stall", proc)  # fmt: skip
            time.sleep(0.3)  # the stall meets the open stream, not the backfill's requests
        a.stall()
    else:
        getattr(a, kind)()


def edited(proc: CollectorProcess, uri: str) -> bool:
    """A new version was archived, or (a feed edited before we first read it) the first one
    already says so."""
    rows = proc.query("SELECT version, data FROM items WHERE event = ? AND uri = ?", EVENT, uri)
    return bool(rows) and (rows[0][0] >= 2 or "edited" in json.loads(rows[0][1])["text"])


def check(proc: CollectorProcess, adapters: list[Adapter], redis_url: str) -> dict:
    """0 lost, 0 duplicated, malformed kept once, the stream each change once and in order."""
    got = statuses(proc)
    expected = {u: s for a in adapters for u, s in a.expected.items()}
    poison = {p for a in adapters for p in a.poison}
    posts = Counter(r[0] for r in proc.query(
        "SELECT uri FROM changes WHERE event = ? AND kind = 'post'", EVENT))  # fmt: skip
    retracts = Counter(r[0] for r in proc.query(
        "SELECT uri FROM changes WHERE event = ? AND kind = 'retract'", EVENT))  # fmt: skip
    malformed = Counter(r[0] for r in proc.query(
        "SELECT identity FROM malformed WHERE event = ?", EVENT))  # fmt: skip
    lost = set(expected) - set(got)
    figures = {
        "sources": "+".join(a.name for a in adapters),
        "published": sum(a.published for a in adapters),
        "archived": len(got), "lost": len(lost),
        "duplicated": sum(n - 1 for n in posts.values()) + len(set(got) - set(expected)),
        "malformed": len(poison), "malformed_kept": sum(malformed.values()),
        "deleted": sum(s == "deleted" for s in expected.values()),
        "edited": sum(len(a.edited) for a in adapters),
        "changed_while_down": sum(a.changed_while_down for a in adapters),
        "truncated_responses": sum(r.fault == "malformed" for a in adapters
                                   for r in a.fake.requests),
        "cuts": sum(a.cuts for a in adapters), "kills": proc.killed, "runs": proc.runs,
        # sources that gave up on the silent server before it spoke again (the in-process
        # tests time the watchdog; here a starved loop may take longer, and still lose nothing)
        "stall_reconnects": sum(a.woke_from_stall() for a in adapters if a.stalled_at),
    }  # fmt: skip
    print(f"fault matrix {figures}")  # noqa: T201 - the acceptance figures
    assert lost == set() and figures["duplicated"] == 0, (lost, figures)
    assert got == expected
    assert set(posts) == set(expected) and set(retracts) == {
        u for u, s in expected.items() if s == "deleted"} and max(retracts.values(), default=1) == 1  # fmt: skip
    for uri in {u for a in adapters for u in a.edited} - set(retracts):
        assert edited(proc, uri), uri
    assert poison <= set(malformed) and all(malformed[p] == 1 for p in poison), malformed
    raws = proc.query("SELECT identity, raw FROM malformed WHERE event = ?", EVENT)
    assert all(raw.strip() for _, raw in raws)  # kept raw, for a fixed parser to re-process
    assert not poison & set(got)
    assert proc.killed == 2 and all(a.cuts >= 10 for a in adapters)

    check_stream(proc, redis_url)
    check_report(proc, adapters, figures)
    return figures


def check_stream(proc: CollectorProcess, redis_url: str) -> None:
    """The live tail holds every change of the archive once, as SEQ-0, in order, no gap."""
    changes = proc.query("SELECT seq, kind, uri FROM changes WHERE event = ? ORDER BY seq", EVENT)
    client = redis_lib.Redis.from_url(redis_url)
    try:
        entries = client.xrange(stream_key(EVENT), "-", "+")
    finally:
        client.close()
    seqs = [seq_of(entry_id) for entry_id, _ in entries]
    assert seqs == list(range(1, len(changes) + 1)) == [c[0] for c in changes]
    for (_, fields), (seq, kind, uri) in zip(entries, changes, strict=True):
        got_kind, data = decode_entry(fields)
        payload = json.loads(data)
        assert (got_kind, payload.get("seq"), payload.get("uri")) == (kind, seq, uri)


def check_report(proc: CollectorProcess, adapters: list[Adapter], figures: dict) -> None:
    out = proc.tmp / "report.json"
    done = proc.cli("report", EVENT, "--json", str(out))
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["archive"]["items"] == figures["archived"]
    assert report["archive"]["deleted"] == figures["deleted"]
    by_source = {s["source"].split(":")[0]: s for s in report["sources"]}
    for a in adapters:
        row = by_source[a.name]
        assert row["malformed"] == len(a.poison), (a.name, row)
        assert row["errors"] >= 1 and row["disconnected_seconds"] >= 0
