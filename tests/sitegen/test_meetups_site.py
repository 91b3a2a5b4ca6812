"""The meet-ups board built from the sample recording (issue 11): scripts/make_sample.py's meet-up
proposals, their replies and boosts, replayed by `python -m collector replay` into a real
archive and Redis, then built by sitegen with content/northwind-2026/meetups.yaml. The expected
board is worked out here from the recording's own payloads, apart from core/meetups.py."""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

from core.settings import Settings
from sitegen.build import build_site

ROOT = Path(__file__).resolve().parents[2]
EVENT = "northwind-2026"


def meetup_lines(recording: Path) -> tuple[list[str], dict[str, dict]]:
    """The recording cut to its meet-up proposals, the replies to them and their boosts, and
    the expected board per proposal uri: {"text", "proposer", "going": names in order}."""
    lines = recording.read_text(encoding="utf-8").splitlines()
    header, body = lines[0], [json.loads(line) for line in lines[1:]]
    proposals: dict[str, dict] = {}
    local: dict[tuple[str, str], str] = {}  # (origin, local id) -> uri of a proposal
    kept = [header]
    for line, raw in zip(body, lines[1:], strict=True):
        status = line["payload"]
        if line["type"] != "update":
            continue
        if status["reblog"] is not None:
            inner = status["reblog"]["uri"]
            if inner in proposals:
                kept.append(raw)
                _going(proposals[inner], status["account"]["display_name"])
            continue
        parent = local.get((line["origin"], status["in_reply_to_id"] or ""))
        if parent is not None:
            kept.append(raw)
            if status["account"]["uri"] != proposals[parent]["proposer_id"]:
                _going(proposals[parent], status["account"]["display_name"])
        elif "nwmeetup" in {t["name"] for t in status["tags"]}:
            kept.append(raw)
            local[(line["origin"], status["id"])] = status["uri"]
            text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", status["content"])).split())
            text = re.sub(r"(\s*#\s*\w+)+$", "", text)  # the tags that close the post
            proposals[status["uri"]] = {"text": text, "going": [],
                                        "proposer_id": status["account"]["uri"]}  # fmt: skip
    return kept, proposals


def _going(proposal: dict, name: str) -> None:
    if name not in proposal["going"]:
        proposal["going"].append(name)


class Board(HTMLParser):
    """Each meet-up on a page: its title, who made it, how many are going and their names."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.entries: list[dict] = []
        self.field: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = (attrs.get("class") or "").split()
        if tag == "li" and "meetup" in classes:
            self.entries.append({"by": attrs["data-by"], "uri": attrs.get("data-uri"),
                                 "title": "", "count": "", "going": []})  # fmt: skip
        elif "meetup-title" in classes:
            self.field = "title"
        elif "going-count" in classes:
            self.field = "count"
        elif tag == "img" and self.entries and attrs.get("alt") and "avatar" not in classes:
            self.entries[-1]["going"].append(attrs["alt"])

    def handle_endtag(self, tag):
        if tag in ("p", "span"):
            self.field = None

    def handle_data(self, data):
        if self.field and self.entries:
            self.entries[-1][self.field] += data


def board_of(page: Path) -> list[dict]:
    parser = Board()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser.entries


def test_the_board_from_meetups_yaml_and_the_sample_recording(tmp_path, redis_url):
    full = tmp_path / "sample.jsonl"
    subprocess.run([sys.executable, "scripts/make_sample.py", "--content", f"content/{EVENT}",
                    "--out", str(full)], cwd=ROOT, check=True, capture_output=True, timeout=120)  # fmt: skip
    kept, proposals = meetup_lines(full)
    assert len(proposals) == 4 and sum(len(p["going"]) for p in proposals.values()) >= 10
    cut = tmp_path / "meetups.jsonl"
    cut.write_text("\n".join(kept) + "\n", encoding="utf-8")
    env = {**os.environ, "REDIS_URL": redis_url, "AFA_ARCHIVE_PATH": str(tmp_path / "a.db"),
           "AFA_CONTENT_DIR": str(ROOT / "content")}  # fmt: skip
    subprocess.run([sys.executable, "-m", "collector", "replay", EVENT, str(cut), "--speed", "0"],
                   cwd=ROOT, env=env, check=True, capture_output=True, timeout=120)  # fmt: skip
    settings = Settings(content_dir=ROOT / "content", archive_path=tmp_path / "a.db",
                        output_dir=tmp_path / "out", var_dir=tmp_path / "var")  # fmt: skip
    build_site(settings, search=False)

    day_one = board_of(tmp_path / "out" / EVENT / "meetups" / "2026-10-24" / "index.html")
    assert [(e["by"], e["title"]) for e in day_one] == [
        ("organizers", "Newcomers' breakfast"),  # organizers' first, in time order
        ("organizers", "Conference dinner"),
        ("organizers", "Karaoke for the brave"),
        ("attendees", "Board games in the foyer after the last talk, 17:40. Bring your "
                      "favourite, I have Codenames."),  # 17:40
        ("attendees", "Anyone up for rijsttafel tonight? Dinner at 19:00 at Sampurna, Singel "
                      "498. I'll book for whoever says yes by 17:00."),  # 19:00
    ]  # fmt: skip
    day_two = board_of(tmp_path / "out" / EVENT / "meetups" / "2026-10-25" / "index.html")
    assert [e["title"][:20] for e in day_two] == [
        "Speakers' and volunt", "Coffee walk along th", "Hack session on the "
    ]  # fmt: skip
    for entry in day_one[3:] + day_two[1:]:
        want = proposals[entry["uri"]]
        assert entry["title"] == want["text"]
        assert entry["count"] == f"{len(want['going'])} going"
        assert sorted(entry["going"]) == sorted(want["going"])  # avatars, named by their alt
    everything = board_of(tmp_path / "out" / EVENT / "meetups" / "index.html")
    assert len(everything) == 5 + 4  # the day before's welcome drinks too
    live = board_of(tmp_path / "out" / EVENT / "live" / "index.html")
    assert [e["uri"] for e in live if e["by"] == "attendees"] == [
        e["uri"] for e in everything if e["by"] == "attendees"
    ]
