"""The site in Debian's Chromium, driven by Playwright, against a plain static server (issue 11).

Search finds the post: one result per post, linking to its anchor on its talk (or break, or
event) page; filters for talk, day, room, source and photos; `?q=` links; the indexes split in
blocks of row ids (issue 12), merged in the browser, a block re-indexed only when its posts
change. And every page type passes axe (axe-core from npm, installed by `make axe` into
var/tools/axe, injected into the page) with no serious or critical violation."""

from __future__ import annotations

import dataclasses
import functools
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from collector.store import save_batch
from core.archive import open_archive
from core.items import Author
from core.settings import Settings
from sitegen import search
from sitegen.build import build_site

EVENT = "northwind-2026"
ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "content"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
AXE = ROOT / "var/tools/axe/node_modules/axe-core/axe.min.js"
ONE_OF_EACH = [
    "index.html",
    f"{EVENT}/index.html",
    f"{EVENT}/talks/opening-keynote/index.html",
    f"{EVENT}/breaks/d1-coffee-morning/index.html",
    f"{EVENT}/days/2026-10-24/index.html",
    f"{EVENT}/archive/index.html",
    f"{EVENT}/archive/page-1/index.html",
    f"{EVENT}/photos/index.html",
    f"{EVENT}/live/index.html",
    f"{EVENT}/search/index.html?q=hall",
    "speakers/index.html",
    "speakers/amara-okafor/index.html",
]
T0 = datetime(2026, 10, 24, 7, 30, tzinfo=UTC)  # 09:30 in Amsterdam: the opening keynote


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        executable = os.environ.get("AFA_CHROMIUM", "/usr/bin/chromium")
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def sample_items(sg, count: int) -> list:
    """Posts every 5 minutes from 09:30 on day one: every fifth with a photo without alt text,
    some from Bluesky, one (n = 41) from a `noindex` account, one (n = 4) with a rare word."""
    quiet = Author(id="https://social.example/users/quiet", handle="@quiet@social.example",
                   name="Quiet Person", noindex=True)  # fmt: skip
    items = []
    for n in range(count):
        extra = {}
        if n % 5 == 0:
            extra["media"] = (sg.Media("image", f"https://img.example/{n}.jpg", alt=""),)
        if n % 7 == 3:
            extra["source"] = "bluesky"
        if n == 41:
            extra["author"] = quiet
        text = f"post {n} about the hall" + (" zanzibar" if n == 4 else "")
        if n == 41:
            text += " secretword"
        items.append(
            sg.make_item(
                n, T0 + timedelta(minutes=5 * n), text=text, html=f"<p>{text}</p>", **extra
            )
        )
    return items


def build_with_search(tmp: Path, items: list, block: int):
    settings = Settings(content_dir=SAMPLE, archive_path=tmp / "archive.db",
                        output_dir=tmp / "output", var_dir=tmp / "var")  # fmt: skip
    db = open_archive(settings.archive_path)
    save_batch(db, EVENT, items, "test", None)
    db.close()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(search, "BLOCK", block)
        return settings, build_site(settings, search=True)


@pytest.fixture(scope="module")
def served(tmp_path_factory, sg) -> Iterator[tuple]:
    """60 posts, indexed in blocks of 25 row ids, served from output/ by a plain static server."""
    items = sample_items(sg, 60)
    settings, report = build_with_search(tmp_path_factory.mktemp("search"), items, 25)
    out = settings.output_dir
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(out)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    site = f"http://127.0.0.1:{server.server_address[1]}/"
    yield settings, items, report, f"{site}{EVENT}/search/"
    server.shutdown()
    server.server_close()


def results(page: Page) -> list[dict]:
    page.wait_for_selector("#search[data-ready]")
    page.wait_for_function("document.getElementById('search-status').textContent.includes('match')")
    return page.eval_on_selector_all(
        "#search-results .result",
        """els => els.map(e => ({href: e.querySelector('a').href, text: e.innerText,
                                where: e.querySelector('.result-where').textContent}))""",
    )


def test_a_word_of_one_post_finds_that_post_first_and_its_link_lands_on_its_anchor(served, browser):
    settings, items, report, url = served
    assert report.search > 0
    blocks = sorted(p.name for p in (settings.output_dir / EVENT / "pagefind").iterdir())
    assert len(blocks) >= 2  # 60 posts in blocks of 25 row ids: merged in the browser
    page = browser.new_page()
    page.goto(url)
    page.wait_for_selector("#search[data-ready]")
    page.fill("#search-q", "zanzibar")
    page.press("#search-q", "Enter")
    found = results(page)
    assert len(found) == 1
    assert found[0]["href"].endswith("/talks/opening-keynote/#" + anchor(items[4]))
    assert "Person 4" in found[0]["text"] and "zanzibar" in found[0]["text"]
    assert page.eval_on_selector("#search-results mark", "m => m.textContent").startswith(
        "zanzibar"
    )
    assert "q=zanzibar" in page.url
    page.click("#search-results .result a")
    page.wait_for_url("**/talks/opening-keynote/#" + anchor(items[4]))
    expect(page.locator(f"#{anchor(items[4])}")).to_be_visible()
    assert page.evaluate("document.querySelector(':target').id") == anchor(items[4])
    page.close()


def test_filters_narrow_and_a_q_link_opens_with_its_results(served, browser):
    settings, items, _, url = served
    page = browser.new_page()
    page.goto(url + "?q=hall")
    everything = results(page)
    assert page.text_content("#search-status") == "59 posts match."  # all but the noindex one
    assert len(everything) == 20  # the first page of them
    page.click("#search-more")
    page.wait_for_function("document.querySelectorAll('#search-results .result').length == 40")
    assert page.input_value("#search-q") == "hall"
    page.select_option("#search-source", "bluesky")
    page.wait_for_function(
        "document.getElementById('search-status').textContent.startsWith('"
        f"{sum(1 for n in range(60) if n % 7 == 3 and n != 41)} posts')"
    )
    bluesky = results(page)
    assert bluesky and all("bluesky" in r["where"] for r in bluesky)
    assert "source=bluesky" in page.url
    page.select_option("#search-source", "")
    page.select_option("#search-photos", "With photos")
    page.wait_for_function("document.getElementById('search-status').textContent.startsWith('12 ')")
    with_photos = {r["href"].rsplit("#", 1)[1] for r in results(page)}
    assert with_photos == {anchor(items[n]) for n in range(0, 60, 5)}
    talk = "Keynote: The Quiet Parts of Software"
    page.goto(url + "?q=hall&talk=" + quote(talk))
    in_talk = results(page)
    assert 0 < len(in_talk) < len(everything)
    assert all(r["where"].startswith(talk) for r in in_talk)
    assert page.input_value("#search-talk") == talk
    page.goto(url + "?q=secretword")
    page.wait_for_selector("#search[data-ready]")
    page.wait_for_function(
        "document.getElementById('search-status').textContent.includes('No post')"
    )
    page.close()


def test_a_new_post_reindexes_only_its_own_block(tmp_path, sg):
    items = sample_items(sg, 20)
    settings, _ = build_with_search(tmp_path, items, 8)
    folder = settings.output_dir / EVENT / "pagefind"
    blocks = sorted(p.name for p in folder.iterdir())
    assert blocks == ["block-0", "block-1", "block-2"]  # row ids 1-7, 8-15, 16-20
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    late = dataclasses.replace(items[0], uri="https://social.example/late", local_id="late")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(search, "BLOCK", 8)
        db = open_archive(settings.archive_path)
        save_batch(db, EVENT, [late], "test", None)
        db.close()
        lines: list[str] = []
        report = build_site(settings, search=True, log=lines.append)
    changed = {p.relative_to(folder).parts[0] for p in folder.rglob("*")
               if p.is_file() and before.get(p) != p.read_bytes()}  # fmt: skip
    written = {p.split("/")[2] for p in report.written if "/pagefind/" in p}
    assert changed == written == {"block-2"}
    assert f"  search: indexed 6 posts of {EVENT}" in lines  # row ids 16-20 and the new 21


def anchor(item) -> str:
    from sitegen.posts import anchor_of

    return anchor_of(item.uri)


def test_every_page_type_passes_axe_with_no_serious_or_critical_violation(served, browser):
    """Before: 124 photo links with no accessible name (a photo without alt text) on 9 pages,
    and the search box named only by its title."""
    assert AXE.is_file(), f"{AXE} is missing: run `make axe` (npm install of axe-core)"
    settings, _, _, url = served
    site = url.removesuffix(f"{EVENT}/search/")
    assert all((settings.output_dir / p.split("?")[0]).is_file() for p in ONE_OF_EACH)
    problems = []
    page = browser.new_page()
    for path in ONE_OF_EACH:
        page.goto(site + path.removesuffix("index.html").replace("index.html?", "?"))
        if "search" in path:
            results(page)
        page.add_script_tag(path=str(AXE))
        found = page.evaluate(
            """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations
                 .filter(v => v.impact === "serious" || v.impact === "critical")
                 .map(v => `${v.id} (${v.impact}): ${v.nodes.length} × ${v.nodes[0].target}`)"""
        )
        problems += [f"{path}: {line}" for line in found]
    page.close()
    assert problems == [], "\n".join(problems)
