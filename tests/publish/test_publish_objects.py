"""`python -m sitegen publish` to a real S3-compatible server (SeaweedFS, started once per session):
every file with its type and cache policy, only what changed, removals after their replacements,
and a publish killed with SIGKILL that converges when run again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import obstore
import pytest

from sitegen.publish import publish_site
from tests.bench.bench_site import EVENT

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]
PAGE = "public, max-age=60, stale-while-revalidate=600"
YEAR = "public, max-age=31536000, immutable"
BETWEEN = "public, max-age=600, stale-while-revalidate=3600"


def settings_for(site, s3_server, bucket, prefix="site", **more):
    return site.settings.with_overrides(publish_target=f"s3://{bucket}/{prefix}",
                                        s3_endpoint=s3_server.endpoint, **more)  # fmt: skip


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    return s3_server


def manifest(site) -> dict:
    return json.loads((site.output / "manifest.json").read_text())


def site_bytes(site) -> dict[str, bytes]:
    return {key: (site.output / key).read_bytes() for key in manifest(site)["files"]}


def test_first_publish_sends_every_file_with_its_type_and_cache_policy(site, s3_env, bucket):
    settings = settings_for(site, s3_env, bucket)
    report = publish_site(settings)
    files = site_bytes(site)
    assert report.uploaded == len(files) and report.deleted == 0 and report.listed
    assert s3_env.objects(bucket, "site") == files  # every file, byte for byte, nothing else

    def attrs(key):
        return s3_env.attributes(bucket, key, "site")

    expected = {
        "index.html": ("text/html; charset=utf-8", PAGE, "gzip"),
        f"{EVENT}/talks/t00a/index.html": ("text/html; charset=utf-8", PAGE, "gzip"),
        f"{EVENT}/talks/t00a/feed.atom": ("application/atom+xml; charset=utf-8", PAGE, "gzip"),
        f"{EVENT}/posts.jsonl.gz": ("application/gzip", BETWEEN, None),
        "static/style.css": ("text/css; charset=utf-8", BETWEEN, "gzip"),
        f"{EVENT}/pagefind/block-0/pagefind-entry.json": ("application/json", BETWEEN, None),
        f"{EVENT}/pagefind/block-0/pagefind.js": (
            "text/javascript; charset=utf-8",
            BETWEEN,
            "gzip",
        ),
    }
    for key, (kind, cache, encoding) in expected.items():
        got = attrs(key)
        assert (got["Content-Type"], got["Cache-Control"], got.get("Content-Encoding")) == (
            kind, cache, encoding), key  # fmt: skip
    chunks = [k for k in files if "/pagefind/" in k and ("/fragment/" in k or "/index/" in k)]
    assert chunks
    for key in chunks:  # named by a hash of their bytes: cached for a year
        got = attrs(key)
        assert (got["Content-Type"], got["Cache-Control"]) == ("application/octet-stream", YEAR)
        assert "Content-Encoding" not in got  # Pagefind decodes its own gzip framing


def test_a_session_rebuild_publishes_only_what_changed(site, s3_env, bucket):
    settings = settings_for(site, s3_env, bucket)
    publish_site(settings)
    again = publish_site(settings)
    assert (again.uploaded, again.deleted, again.listed) == (0, 0, False)
    site.add_session_posts()
    built = site.build()
    changed = set(manifest(site)["changed"])
    assert changed and set(built.written) == changed
    tail = s3_env.follow(bucket)
    try:
        obstore.put(s3_env.store(bucket), "marker-before", b"")
        report = publish_site(settings)
        obstore.put(s3_env.store(bucket), "marker-after", b"")
        events = tail.until("marker-after")
    finally:
        tail.close()
    start = next(i for i, e in enumerate(events) if e.key == "marker-before")
    seen = [(e.kind, e.key.removeprefix("site/")) for e in events[start + 1 : -1]]
    sent = [key for kind, key in seen if kind != "delete"]
    assert sorted(sent) == sorted(changed)  # what the server saw: each changed file once
    removed = set(manifest(site)["removed"])  # the old Pagefind chunks of the event
    assert {key for kind, key in seen if kind == "delete"} == removed
    assert report.uploaded == len(changed) and report.deleted == len(removed)
    assert report.unchanged == len(manifest(site)["files"]) - len(changed)
    assert s3_env.objects(bucket, "site") == site_bytes(site)


def test_a_removed_page_is_deleted_after_its_replacement_and_the_pages_linking_to_it(
    site, s3_env, bucket
):
    settings = settings_for(site, s3_env, bucket)
    publish_site(settings)
    site.rename_talk("t01a", "t01a-moved")
    site.build()
    built = manifest(site)
    assert f"{EVENT}/talks/t01a/index.html" in built["removed"]
    tail = s3_env.follow(bucket)
    try:
        obstore.put(s3_env.store(bucket), "marker-before", b"")
        publish_site(settings)
        obstore.put(s3_env.store(bucket), "marker-after", b"")
        events = tail.until("marker-after")
    finally:
        tail.close()
    start = next(i for i, e in enumerate(events) if e.key == "marker-before")
    order = [(e.kind, e.key.removeprefix("site/")) for e in events[start + 1 : -1]]
    position = {key: i for i, (_, key) in enumerate(order)}
    moved, old = f"{EVENT}/talks/t01a-moved/index.html", f"{EVENT}/talks/t01a/index.html"
    assert ("create", moved) in order and ("delete", old) in order
    deletes = [i for i, (kind, _) in enumerate(order) if kind == "delete"]
    assert deletes and min(deletes) > max(i for i, (k, _) in enumerate(order) if k != "delete")
    assert {key for kind, key in order if kind == "delete"} == set(built["removed"])
    # every page that links to the moved talk went up after it: the day, the event page, the
    # talks next to it in its room and its speaker's page
    linking = [key for key in built["changed"] if key.endswith(".html")
               and "t01a-moved/" in (site.output / key).read_text()]  # fmt: skip
    assert len(linking) >= 3, linking
    for key in linking:
        if key != moved:
            assert position[key] > position[moved], (key, order)
    assert s3_env.objects(bucket, "site") == site_bytes(site)


def test_a_publish_killed_midway_converges_to_exactly_output_when_run_again(
    site, s3_env, bucket, tmp_path
):
    env = {**os.environ, **s3_env.env, "AFA_PUBLISH_TARGET": f"s3://{bucket}/site",
           "AFA_CONTENT_DIR": str(site.settings.content_dir), "AFA_ARCHIVE_PATH": str(site.settings.archive_path),
           "AFA_OUTPUT_DIR": str(site.output), "AFA_VAR_DIR": str(site.settings.var_dir),
           "AFA_PUBLISH_CONCURRENCY": "1"}  # fmt: skip
    command = [sys.executable, "-m", "sitegen", "publish"]
    child = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    store = s3_env.store(bucket, "site")
    total = len(manifest(site)["files"])
    deadline = time.monotonic() + 120
    while held(store) < 20:
        assert child.poll() is None, child.stdout.read()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert 20 <= held(store) < total  # killed halfway
    # the event goes on meanwhile: new posts, a renamed talk (so the next run has removals)
    site.add_session_posts()
    site.rename_talk("t02b", "t02b-moved")
    site.build()
    report = publish_site(settings_for(site, s3_env, bucket))  # run again (in this process)
    assert report.uploaded > 0 and not report.listed  # the journal the killed run left
    assert s3_env.objects(bucket, "site") == site_bytes(site)  # exactly output/, nothing stale
    again = publish_site(settings_for(site, s3_env, bucket))
    assert (again.uploaded, again.deleted) == (0, 0)


def held(store) -> int:
    """How many objects the server holds under the store's prefix (0 before the bucket exists)."""
    try:
        return sum(len(batch) for batch in obstore.list(store))
    except Exception:
        return 0
