"""Every page type passes the Nu HTML Checker (issue 4).

The checker is vnu.jar from the npm package vnu-jar, installed by `make vnu` into var/tools/vnu
(never downloaded here), run with the machine's Java over one page of each type.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from core.archive import open_archive
from sitegen.build import build_site

ROOT = Path(__file__).resolve().parents[2]
VNU = ROOT / "var/tools/vnu/node_modules/vnu-jar/build/dist/vnu.jar"
EVENT = "northwind-2026"
# A post is an <article> whose first line names its author, not a heading: a heading per post
# would bury the page's own headings in hundreds of entries. The checker's advice, declined.
ALLOWED = ("Article lacks heading.",)
ONE_OF_EACH = [
    "index.html",
    f"{EVENT}/index.html",
    f"{EVENT}/talks/opening-keynote/index.html",
    f"{EVENT}/talks/opening-keynote/page-2/index.html",  # paging.PAGE is 10 here
    f"{EVENT}/breaks/d1-lunch/index.html",
    f"{EVENT}/days/2026-10-24/index.html",
    f"{EVENT}/archive/index.html",
    f"{EVENT}/archive/page-1/index.html",
    f"{EVENT}/photos/index.html",
    f"{EVENT}/live/index.html",
    f"{EVENT}/wall/index.html",
    f"{EVENT}/wall/main/index.html",
    f"{EVENT}/meetups/index.html",
    f"{EVENT}/meetups/2026-10-24/index.html",
    f"{EVENT}/search/index.html",
    "speakers/index.html",
]


def test_one_page_of_each_type_is_valid_html(make_settings, sg, monkeypatch):
    from sitegen import paging

    monkeypatch.setattr(paging, "PAGE", 10)  # a talk of more pages than one
    assert VNU.is_file(), f"{VNU} is missing: run `make vnu` (npm install of vnu-jar)"
    assert shutil.which("java"), "java is missing: install default-jre-headless"
    settings = make_settings()
    start = datetime(2026, 10, 24, 7, 0, tzinfo=UTC)
    items = [
        sg.make_item(
            n, start + timedelta(minutes=2 * n), boosts=n % 3, likes=n % 2, spoiler="cw" if n % 9 == 0 else "",
            links=("https://l.example/a",), text=f"post {n}",
            media=(sg.Media("image", f"https://img.example/{n}.jpg", alt="slide", width=800, height=600),) if n % 4 == 0 else (),
        )
        for n in range(200)
    ]  # fmt: skip
    proposal = sg.make_item(
        300, start + timedelta(hours=4), ["nwmeetup"], text="Pizza at 19:00 #nwmeetup"
    )
    items += [proposal] + [
        sg.make_item(n, start + timedelta(hours=5, minutes=n - 300), reply_to=proposal.uri)
        for n in (301, 302)
    ]  # fmt: skip
    db = open_archive(settings.archive_path)
    sg.save_items(db, items)
    db["pins"].insert({"event": EVENT, "uri": items[4].uri, "who": "ana", "at": "2026-10-24T09:00:00Z", "why": ""})  # fmt: skip
    db.close()
    build_site(settings, search=False)
    speaker = next((settings.output_dir / "speakers").glob("*/index.html"))
    pages = [settings.output_dir / p for p in ONE_OF_EACH] + [speaker]
    assert all(p.is_file() for p in pages), [str(p) for p in pages if not p.is_file()]
    done = subprocess.run(
        ["java", "-jar", str(VNU), "--format", "json", "--also-check-svg", *map(str, pages)],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    messages = json.loads(done.stderr or "{}").get("messages", [])
    problems = [
        f"{m.get('url', '').split('/output/')[-1]}:{m.get('lastLine')}: {m.get('type')}/{m.get('subType', '')}: {m.get('message')}"
        for m in messages
        if (m.get("type") == "error" or m.get("subType") == "warning")
        and not m.get("message", "").startswith(ALLOWED)
    ]
    assert problems == [], "\n".join(problems)
