"""Regression, issue #9 item 7: a secret reached the logs.

Bug: the Flickr API key travels in the query string, and httpx logs every request URL at INFO,
so `python -m collector run` wrote the key into its log (and at DEBUG, httpcore more).
Fix: core.cli.configure_logging keeps the HTTP client libraries' loggers at WARNING whatever the
verbosity, and a filter on its handler redacts credentials (`api_key=`, `access_token=`, a
Bearer token…) from any line that still names one; what a source records of a failed request
(its state, persisted in the archive and Redis) names the URL without its query.
Reproduction: every source against its fake, each credential a recognisable secret, the
collector at DEBUG with a 429 and a 503 on the way, a count refresh, a report and a site build;
then every log line, every file under var/ and output/, and every Redis value are searched for
the secrets.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from core.items import format_time
from tests.collector.test_sources_bluesky_live import post_view
from tests.fakes.appview import AppViewFake
from tests.fakes.bluesky import BlueskyFake
from tests.fakes.feeds import FeedsFake
from tests.fakes.flickr import FlickrFake
from tests.fakes.jetstream import JetstreamFake, post_event
from tests.fakes.mastodon import MastodonFake, new_status

ROOT = Path(__file__).resolve().parents[1]
EVENT, TAG = "northwind-2026", "northwind26"
MASTODON_TOKEN = "SECRETmastodonTOKEN7f3a9c"
FLICKR_KEY = "5ec2e75ec2e7f1c4c2a9b0d5ec2e7f1c"  # 32 hex digits, as Flickr keys are
BSKY_PASSWORD = "SECRET-bsky-app-password-5c6d"
ENV = {"TEST_MASTODON_TOKEN": MASTODON_TOKEN, "TEST_FLICKR_KEY": FLICKR_KEY,
       "TEST_BSKY_HANDLE": "secret-test.bsky.test", "TEST_BSKY_PASSWORD": BSKY_PASSWORD}  # fmt: skip
FEED = (f"<?xml version='1.0'?><rss version='2.0'><channel><title>b</title><item>"
        f"<guid>https://blog.example/p/1</guid><link>https://blog.example/p/1</link>"
        f"<title>Blog #{TAG}</title><description>about #{TAG}</description></item>"
        f"</channel></rss>")  # fmt: skip


def sources_yaml(mastodon, jetstream, bsky, flickr, feeds, appview) -> str:
    start = format_time(datetime.now(UTC) - timedelta(hours=2))
    return f"""
sources:
  - {{type: mastodon, instance: "{mastodon.url}", hashtags: [{TAG}], token_env: TEST_MASTODON_TOKEN,
     poll_seconds: 0.3, watchdog_seconds: 5, min_connected_seconds: 0, backoff_seconds: [0.1, 0.5]}}
  - {{type: bluesky, hashtags: [{TAG}], jetstream: "{jetstream.ws_url}/subscribe", pds: "{bsky.url}",
     identifier_env: TEST_BSKY_HANDLE, password_env: TEST_BSKY_APP_PASSWORD_ENV, appview: "{appview.url}",
     backfill_from: "{start}", batch_seconds: 0.05, backoff_seconds: [0.1, 0.5]}}
  - {{type: flickr, tags: [{TAG}], key_env: TEST_FLICKR_KEY, base_url: "{flickr.url}/services/rest/",
     interval: 0.3, since: 0, backoff_seconds: [0.1, 0.5]}}
  - {{type: feed, url: "{feeds.url}/blog.rss", interval: 0.3, backoff_seconds: [0.1, 0.5]}}
""".replace("TEST_BSKY_APP_PASSWORD_ENV", "TEST_BSKY_PASSWORD")


def write_content(tmp: Path, sources: str) -> Path:
    content = tmp / "content"
    shutil.copytree(ROOT / "content", content)
    event = content / EVENT / "event.yaml"
    text = event.read_text(encoding="utf-8")
    event.write_text(text[: text.index("sources:")] + sources, encoding="utf-8")
    return content


def sources_archived(db: Path) -> set[str]:
    if not db.exists():
        return set()
    conn = sqlite3.connect(db)
    try:
        return {f"{s}:{o}" for s, o in conn.execute("SELECT DISTINCT source, origin FROM items")}
    except sqlite3.OperationalError:  # not migrated yet
        return set()
    finally:
        conn.close()


def redis_values(client) -> list[str]:
    values = []
    for key in client.scan_iter():
        kind = client.type(key)
        values.append(key)
        if kind == "stream":
            values += [str(fields) for _, fields in client.xrange(key)]
        elif kind == "hash":
            values += [f"{k}={v}" for k, v in client.hgetall(key).items()]
        elif kind == "string":
            values.append(str(client.get(key)))
        elif kind == "list":
            values += client.lrange(key, 0, -1)
        elif kind in ("set", "zset"):
            values += [str(m) for m in (client.smembers(key) if kind == "set"
                                        else client.zrange(key, 0, -1))]  # fmt: skip
    return values


def test_no_secret_in_any_log_or_file(tmp_path, redis_url, redis_client):
    with MastodonFake(tokens={MASTODON_TOKEN}, heartbeat=0.5) as mastodon, JetstreamFake() as js, \
            BlueskyFake(accounts={ENV["TEST_BSKY_HANDLE"]: BSKY_PASSWORD}) as bsky, \
            FlickrFake(api_keys={FLICKR_KEY}) as flickr, FeedsFake() as feeds, \
            AppViewFake() as appview:  # fmt: skip
        mastodon.publish(new_status(f"<p>toot #{TAG}</p>", tags=[TAG]))
        bsky.publish(post_view(1, datetime.now(UTC) - timedelta(minutes=30)), keep=True)
        flickr.publish({"owner": "12345678@N00", "secret": "abc123", "server": "65535",
                        "title": f"Photo #{TAG}", "tags": TAG,
                        "description": {"_content": "slides"}})  # fmt: skip
        feeds.set_feed("/blog.rss", FEED)
        mastodon.faults.fail(503, count=1, path="/api/v1/timelines")  # error paths log too
        flickr.faults.rate_limit(count=1, reset_in=0.5)
        content = write_content(tmp_path, sources_yaml(mastodon, js, bsky, flickr, feeds, appview))
        env = {**os.environ, **ENV, "REDIS_URL": redis_url, "AFA_CONTENT_DIR": str(content),
               "AFA_ARCHIVE_PATH": str(tmp_path / "var" / "archive.db"),
               "AFA_VAR_DIR": str(tmp_path / "var"), "AFA_OUTPUT_DIR": str(tmp_path / "output"),
               "PYTHONUNBUFFERED": "1"}  # fmt: skip
        collector = subprocess.Popen(
            [sys.executable, "-m", "collector", "-v", "run", EVENT], cwd=ROOT, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            wanted = {"mastodon:" + mastodon.host.split(":")[0], "bluesky:jetstream",
                      "bluesky:appview", "flickr:flickr", f"feed:{feeds.url}/blog.rss"}  # fmt: skip
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and collector.poll() is None:
                if wanted <= sources_archived(tmp_path / "var" / "archive.db"):
                    break
                if len(js.hub) and not js.events():
                    js.publish(post_event("did:plc:secrettest", "3ksecret", {
                        "$type": "app.bsky.feed.post", "text": f"skeet #{TAG}",
                        "createdAt": format_time(datetime.now(UTC)), "langs": ["en"]}))  # fmt: skip
                time.sleep(0.2)
            archived = sources_archived(tmp_path / "var" / "archive.db")
        finally:
            collector.send_signal(signal.SIGTERM)
            collector_log, _ = collector.communicate(timeout=60)
        refreshing = subprocess.run(
            [sys.executable, "-m", "collector", "-v", "refresh-counts", EVENT],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )  # fmt: skip - every source asked again, keys too
        sessions = [*bsky._access, *bsky._refresh]  # the session tokens the PDS handed out
        used = (flickr.requests_to("/services/rest/")[-1].param("api_key"),
                mastodon.requests[-1].headers.get("authorization"))  # fmt: skip
    assert wanted <= archived, "\n".join(
        ln for ln in collector_log.splitlines() if " DEBUG " not in ln
    )[-4000:]
    assert used == (FLICKR_KEY, f"Bearer {MASTODON_TOKEN}") and sessions  # the secrets went out
    assert " DEBUG " in collector_log  # the collector logged at DEBUG
    reporting = subprocess.run([sys.executable, "-m", "collector", "-v", "report", EVENT],
                               cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    building = subprocess.run([sys.executable, "-m", "sitegen", "build", "--no-search"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert refreshing.returncode == 0, refreshing.stderr[-2000:]
    assert reporting.returncode == 0 and building.returncode == 0, building.stderr
    secrets = [MASTODON_TOKEN, FLICKR_KEY, BSKY_PASSWORD, *sessions]
    logs = [collector_log, refreshing.stdout, refreshing.stderr, reporting.stdout,
            reporting.stderr, building.stdout, building.stderr]  # fmt: skip
    for secret in secrets:
        assert [line for log in logs for line in log.splitlines() if secret in line] == []
    files = [p for d in ("var", "output") for p in (tmp_path / d).rglob("*") if p.is_file()]
    assert len(files) > 50  # the archive, its WAL, the report, the site
    for path in files:
        data = path.read_bytes()
        assert [s for s in secrets if s.encode() in data] == [], path
    values = redis_values(redis_client)
    assert any(TAG in v for v in values)  # the live tail and the source states are there
    assert [v for v in values for s in secrets if s in v] == []
