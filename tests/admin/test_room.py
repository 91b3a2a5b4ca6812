"""Notes and pins from the dashboard (issue 11) over real HTTP: a note is previewed exactly as it
will be posted (Markdown through the collector's sanitiser), then posted and pinned; pins and
unpins reach the archive, the audit log and the live tail; a hidden post cannot be pinned."""

from __future__ import annotations

import json
import re

from core.archive import open_archive
from core.tail import decode_entry, stream_key
from tests.admin import test_dashboard

from .conftest import EVENT, csrf_of, sign_in

dashboard = test_dashboard.dashboard  # the same fixture: a replayed archive, Redis, the server

NOTE = "**Lunch** is served in the *Garden Room*\n\n#northwind26 <script>alert(1)</script>"


def entries_after(dashboard, last: str) -> list[tuple[str, dict]]:
    found = dashboard.redis.xrange(stream_key(EVENT), min=f"({last}")
    return [(kind, json.loads(data)) for kind, data in (decode_entry(f) for _i, f in found)]


def test_a_note_is_previewed_then_posted_and_pinned(dashboard):
    db = open_archive(dashboard.env["AFA_ARCHIVE_PATH"])
    notes = "SELECT count(*) FROM items WHERE event = ? AND source = 'note'"
    before = db.execute(notes, [EVENT]).fetchone()[0]
    with dashboard.client() as client:
        sign_in(client)
        page = client.get(f"/room/{EVENT}")
        assert page.status_code == 200 and "Post a note" in page.text
        token = csrf_of(page.text)
        preview = client.post(f"/room/{EVENT}/note",
                              data={"csrf": token, "text": NOTE, "action": "preview"})  # fmt: skip
        assert preview.status_code == 200
        shown = re.search(r'<div class="preview" id="note-preview">(.*?)</div>', preview.text, re.S)
        assert shown is not None
        assert shown.group(1) == (
            "<p><strong>Lunch</strong> is served in the <em>Garden Room</em></p>\n"
            "<p>#northwind26 </p>"
        )  # the hashtag stays a hashtag, the script is gone
        assert db.execute(notes, [EVENT]).fetchone()[0] == before  # a preview posts nothing

        last = dashboard.redis.xrevrange(stream_key(EVENT), count=1)[0][0]
        posted = client.post(f"/room/{EVENT}/note", data={"csrf": token, "text": NOTE,
                             "author": "Northwind team", "pin": "1", "action": "post"})  # fmt: skip
        assert posted.status_code == 303
        after = client.get(posted.headers["location"]).text
    (kind, note), (pin_kind, pin) = entries_after(dashboard, last)
    assert (kind, pin_kind) == ("post", "pin") and pin["seq"] == note["seq"] + 1
    assert (
        note["item"]["html"] == shown.group(1)
        and note["item"]["author"]["name"] == "Northwind team"
    )
    assert pin["uri"] == note["uri"] and pin["item"]["html"] == shown.group(1)
    assert f"pin {note['uri']}: seq {pin['seq']}, published" in after
    assert db.execute("SELECT who FROM pins WHERE uri = ?", [note["uri"]]).fetchone() == (
        "dashboard",
    )
    audit = db.execute("SELECT action, target FROM moderation_audit ORDER BY id DESC LIMIT 1")
    assert audit.fetchone() == ("pin", note["uri"])
    db.close()


def test_pin_and_unpin_a_post_and_a_hidden_post_cannot_be_pinned(dashboard):
    first, second = sorted(dashboard.recording.visible)[1:3]
    with dashboard.client() as client:
        sign_in(client)
        token = csrf_of(client.get(f"/room/{EVENT}").text)
        last = dashboard.redis.xrevrange(stream_key(EVENT), count=1)[0][0]
        assert (
            client.post(f"/room/{EVENT}/pin", data={"csrf": token, "uri": first}).status_code == 303
        )
        page = client.get(f"/room/{EVENT}").text
        pinned = page.split('id="pinned"')[1].split("</section>")[0]
        assert f'data-uri="{first}"' in pinned and "Unpin" in pinned
        again = client.post(f"/room/{EVENT}/pin", data={"csrf": token, "uri": first})
        assert "Not done: " in client.get(again.headers["location"]).text
        assert (
            client.post(f"/room/{EVENT}/unpin", data={"csrf": token, "uri": first}).status_code
            == 303
        )
        client.post(f"/moderate/{EVENT}/hide", data={"csrf": token, "uri": second, "why": "x"})
        refused = client.post(f"/room/{EVENT}/pin", data={"csrf": token, "uri": second})
        message = client.get(refused.headers["location"]).text
    assert f"{second} is moderated: only a post the pages show can be pinned" in message
    kinds = [(kind, change["uri"]) for kind, change in entries_after(dashboard, last)]
    assert kinds == [("pin", first), ("unpin", first), ("retract", second)]
