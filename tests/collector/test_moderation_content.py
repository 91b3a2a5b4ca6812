"""content/<event>/moderation.yaml and the archive agree; the moderation commands end to end
(CliRunner, a real archive and a real redis-server), and a replay that honours a content block."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from collector.cli import cli
from collector.publish import publish_after_commit
from collector.sources.mastodon import parse_status
from collector.store import save_batch
from core.archive import last_seq, open_archive, visible_items
from core.errors import AfaError
from core.moderation import queries
from core.moderation.decisions import Moderator
from core.tail import decode_entry, seq_of, stream_key

from .conftest import mastodon_status

ROOT = Path(__file__).resolve().parents[2]
EVENT = "northwind-2026"

FILE = """\
approve_first: true
rules:
  - keyword: free crypto
    why: spam
hidden:
  - uri: https://mastodon.social/users/user1/statuses/100001
    why: personal data
blocked:
  - account: "@user2@mastodon.social"
    why: spam
"""


def post(k: int, text: str | None = None):
    status = mastodon_status(k)
    if text:
        status["content"] = f"<p>{text}</p>"
    return parse_status(status, "mastodon.social")


def entries(db) -> dict[str, tuple]:
    """What the archive holds, as the file would say it: {kind: {(value, origin, why)}}."""
    return {
        "rules": {(r.kind, r.pattern, r.action, r.origin, r.why) for r in queries.rules(db, EVENT)},
        "hidden": {(d.target, d.origin, d.why) for d in queries.hidden_posts(db, EVENT)},
        "blocked": {(d.target, d.origin, d.why) for d in queries.blocked_accounts(db, EVENT)},
        "approve_first": queries.approve_first(db, EVENT),
    }


@pytest.fixture
def folder(tmp_path) -> Path:
    path = tmp_path / "content" / EVENT
    path.mkdir(parents=True)
    return path


def test_content_entries_match_the_file_and_follow_its_changes(archive, redis_client, folder):
    mod = Moderator(archive, redis_client)
    save_batch(archive, EVENT, [post(1), post(2), post(3, "free crypto!"), post(4)], "s", None)
    mod.hide(EVENT, post(4).uri, who="ana", why="organizer's own")
    (folder / "moderation.yaml").write_text(FILE)
    outcome = mod.sync_content(EVENT, folder)
    assert sorted(c.uri for c in outcome.changes) == sorted(post(k).uri for k in (1, 2, 3))
    assert entries(archive) == {
        "rules": {("keyword", "free crypto", "hide", "content", "spam")},
        "hidden": {(post(1).uri, "content", "personal data"), (post(4).uri, "organizer", "organizer's own")},
        "blocked": {("user2@mastodon.social", "content", "spam")},
        "approve_first": True,
    }  # fmt: skip
    assert visible_items(archive, EVENT) == []
    # the same file again changes nothing and writes no audit line
    audited = len(queries.audit_log(archive, EVENT, 100))
    assert mod.sync_content(EVENT, folder).changes == []
    assert len(queries.audit_log(archive, EVENT, 100)) == audited
    # the file is the truth for its entries: a content entry cannot be removed elsewhere
    with pytest.raises(AfaError, match="comes from content/northwind-2026/moderation.yaml"):
        mod.unblock(EVENT, "user2@mastodon.social", who="ana", why="")
    # entries removed from the file leave the archive; the organizer's own stay
    (folder / "moderation.yaml").write_text("approve_first: false\nrules: []\n")
    outcome = mod.sync_content(EVENT, folder)
    assert sorted(c.uri for c in outcome.changes) == sorted(post(k).uri for k in (1, 2, 3))
    assert all(c.kind == "post" for c in outcome.changes)
    assert entries(archive) == {
        "rules": set(),
        "hidden": {(post(4).uri, "organizer", "organizer's own")},
        "blocked": set(),
        "approve_first": False,
    }
    actions = [e.action for e in queries.audit_log(archive, EVENT, 100) if e.who == "content"]
    assert actions.count("content sync") == 2 and "rule remove" in actions
    # every change reached the stream, in sequence order (the posts saved but not yet published
    # by a collector went out with the first decision)
    seqs = [seq_of(i) for i, _f in redis_client.xrange(stream_key(EVENT))]
    assert seqs == list(range(1, last_seq(archive, EVENT) + 1))


def test_an_organizer_entry_the_file_also_lists_becomes_a_content_entry(archive, folder):
    mod = Moderator(archive, None)
    mod.add_rule(EVENT, "keyword", "free crypto", who="ana", why="quick fix")
    (folder / "moderation.yaml").write_text(FILE)
    mod.sync_content(EVENT, folder)
    assert {(r.origin, r.why) for r in queries.rules(archive, EVENT)} == {("content", "spam")}


def env_for(tmp_path: Path, redis_url: str, content: Path | None = None) -> dict[str, str]:
    return {"AFA_ARCHIVE_PATH": str(tmp_path / "a.db"), "AFA_VAR_DIR": str(tmp_path / "var"),
            "AFA_CONTENT_DIR": str(content or ROOT / "content"), "REDIS_URL": redis_url}  # fmt: skip


def run(args, env):
    return CliRunner().invoke(cli, args, env=env, catch_exceptions=False)


def test_commands_hide_block_rule_queue_approve_audit(tmp_path, redis_url, redis_client):
    env = env_for(tmp_path, redis_url)
    db = open_archive(tmp_path / "a.db")
    publish_after_commit(
        redis_client, db, EVENT, save_batch(db, EVENT, [post(1), post(2)], "s", None), 100
    )
    uri = post(1).uri
    result = run(["hide", EVENT, uri, "--why", "personal data", "--by", "ana"], env)
    assert result.exit_code == 0, result.output
    assert result.output == f"hide {uri}: 1 retract (seq 3-3), published; rebuild requested\n"
    last = redis_client.xrange(stream_key(EVENT))[-1][1]
    assert decode_entry(last)[0] == "retract" and json.loads(decode_entry(last)[1])["uri"] == uri
    result = run(["unhide", EVENT, "https://nowhere/1", "--why", "x"], env)
    assert result.exit_code == 1 and result.output == (
        "Error: northwind-2026 has no hidden post https://nowhere/1\n"
    )
    assert (
        run(["rule", "add", EVENT, "--keyword", "a", "--pattern", "b", "--why", "x"], env).exit_code
        == 2
    )
    assert run(["rule", "add", EVENT, "--pattern", "Post 2", "--why", "x"], env).exit_code == 0
    listing = run(["rule", "list", EVENT], env).output
    assert "approve-first: off" in listing and "Post 2" in listing and "personal data" in listing
    huge = run(["rule", "remove", EVENT, "9" * 20, "--why", "x"], env)  # past SQLite's INTEGER
    assert huge.exit_code == 1 and huge.output == f"Error: {EVENT} has no rule {'9' * 20}\n"
    assert run(["approve-first", EVENT, "on", "--by", "ana"], env).exit_code == 0
    save_batch(db, EVENT, [post(3)], "s", None)
    assert "1 waiting" in run(["queue", EVENT], env).output
    result = run(["approve", EVENT, "--all", "--by", "ana"], env)
    assert result.output.startswith(
        "approve https://mastodon.social/users/user3/statuses/100003: 1 post"
    )
    log = run(["audit", EVENT], env).output.splitlines()
    assert [line.split()[3] for line in log[2:]] == ["approve", "approve-first", "rule", "hide"]
    assert run(["approve", EVENT], env).exit_code == 2  # neither URIs nor --all
    db.close()


def test_replay_loads_content_rules_and_a_blocked_account_never_reaches_the_tail(
    tmp_path, redis_url, redis_client, make_recording
):
    content = tmp_path / "content"
    shutil.copytree(ROOT / "content", content)
    (content / EVENT / "moderation.yaml").write_text(
        'blocked:\n  - account: "@user5@mastodon.social"\n    why: spam\n'
    )
    rec = make_recording(30)
    result = run(
        ["replay", EVENT, str(rec.path), "--speed", "0"], env_for(tmp_path, redis_url, content)
    )
    assert result.exit_code == 0, result.output
    blocked = mastodon_status(5)["uri"]
    kinds = {}
    for _id, fields in redis_client.xrange(stream_key(EVENT)):
        kind, data = decode_entry(fields)
        kinds.setdefault(json.loads(data)["uri"], []).append(kind)
    assert blocked not in kinds and len(kinds) > 20
    db = open_archive(tmp_path / "a.db")
    assert db.execute("SELECT status FROM items WHERE uri = ?", [blocked]).fetchone() == (
        "moderated",
    )
    assert {d.origin for d in queries.blocked_accounts(db, EVENT)} == {"content"}
    db.close()
