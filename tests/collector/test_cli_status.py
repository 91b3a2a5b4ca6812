"""`python -m collector status`, `report` and `note`: what an organizer reads and posts."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from collector.cli import cli
from collector.collect import save_source_states
from collector.store import Malformed, save_batch
from core.archive import load_report, open_archive, visible_items
from core.tail import decode_entry, stream_key

ROOT = Path(__file__).resolve().parents[2]
EVENT = "northwind-2026"


def env_for(tmp_path: Path, redis_url: str = "") -> dict[str, str]:
    return {"AFA_ARCHIVE_PATH": str(tmp_path / "a.db"), "AFA_CONTENT_DIR": str(ROOT / "content"),
            "AFA_VAR_DIR": str(tmp_path / "var"), "REDIS_URL": redis_url}  # fmt: skip


def seed_states(tmp_path: Path) -> None:
    db = open_archive(tmp_path / "a.db")
    save_source_states(db, [
        (EVENT, "flickr:northwind26", {
            "state": "failing", "last_post_at": None, "lag_seconds": None, "errors": 1,
            "last_error": "flickr:northwind26: Flickr error 100: Invalid API Key: 'https://api.flickr.com/services/rest/'",
            "received": 0, "malformed": 0, "gaps_detected": 0, "gaps_backfilled": 0,
            "disconnected_seconds": 0.0, "rate_limited_seconds": 0.0, "since": 0}),
        (EVENT, "mastodon:mastodon.social:northwind26", {
            "state": "streaming", "last_post_at": "2026-10-24T09:41:07.000Z", "lag_seconds": 1.4,
            "errors": 3, "last_error": "ReadTimeout: heartbeat missed", "received": 412,
            "malformed": 2, "gaps_detected": 3, "gaps_backfilled": 3,
            "disconnected_seconds": 41.5, "rate_limited_seconds": 12.0, "since": 0}),
    ])  # fmt: skip
    save_batch(db, EVENT, [], "mastodon:mastodon.social:northwind26", None,
               [Malformed("mastodon:123", "missing uri", "{}")] * 2)  # fmt: skip
    db.close()


def test_status_prints_each_source_without_redis(tmp_path):
    seed_states(tmp_path)
    result = CliRunner().invoke(cli, ["status"], env=env_for(tmp_path))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["event", "source", "state", "last", "post", "lag", "received",
                                "errors", "last", "error", "updated"]  # fmt: skip
    flickr = next(line for line in lines if "flickr:northwind26" in line)
    assert "failing" in flickr and "Flickr error 100: Invalid API Key" in flickr
    mastodon = next(line for line in lines if "mastodon:mastodon.social" in line)
    assert "streaming  2026-10-24 09:41:07  1 s" in mastodon
    assert "412" in mastodon and "ReadTimeout: heartbeat missed" in mastodon


def test_report_prints_and_writes_json(tmp_path):
    seed_states(tmp_path)
    result = CliRunner().invoke(cli, ["report", EVENT], env=env_for(tmp_path))
    assert result.exit_code == 0, result.output
    path = tmp_path / "var" / "reports" / f"{EVENT}.json"
    assert result.output.splitlines()[0] == f"{EVENT}: 0 items archived (0 visible, 0 deleted)"
    assert result.output.splitlines()[-1] == f"written to {path}"
    row = next(line for line in result.output.splitlines() if line.startswith("mastodon:"))
    assert row.split() == ["mastodon:mastodon.social:northwind26", "412", "3", "3", "2",
                           "42", "s", "12", "s"]  # fmt: skip
    report = json.loads(path.read_text())
    mastodon = next(s for s in report["sources"] if s["source"].startswith("mastodon:"))
    assert {k: mastodon[k] for k in ("received", "gaps_detected", "gaps_backfilled", "malformed",
                                     "disconnected_seconds", "rate_limited_seconds")} == {
        "received": 412, "gaps_detected": 3, "gaps_backfilled": 3, "malformed": 2,
        "disconnected_seconds": 41.5, "rate_limited_seconds": 12.0}  # fmt: skip
    db = open_archive(tmp_path / "a.db")
    assert load_report(db, EVENT) == report  # sitegen reads it from here
    db.close()


def test_report_to_a_chosen_path(tmp_path):
    seed_states(tmp_path)
    target = tmp_path / "out" / "r.json"
    result = CliRunner().invoke(
        cli, ["report", EVENT, "--json", str(target)], env=env_for(tmp_path)
    )
    assert result.exit_code == 0, result.output
    assert json.loads(target.read_text())["event"] == EVENT


def test_note_is_archived_and_published(tmp_path, redis_url, redis_client):
    env = env_for(tmp_path, redis_url)
    result = CliRunner().invoke(
        cli,
        ["note", EVENT, "Lunch is <served> in the Garden Room", "--author", "Northwind team"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    uri = result.output.split()[0]
    assert uri.startswith(f"urn:afa:note:{EVENT}:") and result.output.strip().endswith("(seq 1)")
    db = open_archive(tmp_path / "a.db")
    [item] = visible_items(db, EVENT)
    db.close()
    assert (item.uri, item.source, item.author.name) == (uri, "note", "Northwind team")
    assert item.html == "<p>Lunch is &lt;served&gt; in the Garden Room</p>"
    [(entry_id, fields)] = redis_client.xrange(stream_key(EVENT))
    kind, data = decode_entry(fields)
    assert (entry_id, kind, json.loads(data)["item"]["uri"]) == ("1-0", "post", uri)


def test_note_needs_text_and_redis(tmp_path, redis_url):
    empty = CliRunner().invoke(cli, ["note", EVENT, "  "], env=env_for(tmp_path, redis_url))
    assert (empty.exit_code, empty.output) == (1, "Error: a note needs some text\n")
    no_redis = CliRunner().invoke(cli, ["note", EVENT, "hi"], env=env_for(tmp_path))
    assert no_redis.exit_code == 1
    assert no_redis.output.startswith("Error: REDIS_URL is not set")


def test_run_without_redis_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(cli, ["run"], env=env_for(tmp_path))
    assert result.exit_code == 1
    assert result.output.startswith("Error: REDIS_URL is not set")
