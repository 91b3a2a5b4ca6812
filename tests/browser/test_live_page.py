"""Acceptance for the live page (issue #5), in Debian's Chromium driven by Playwright.

The site is built by sitegen into a temporary output/, served by a plain static HTTP server;
the live sidecar runs as `python -m live serve` on its own port against a real redis-server;
posts go in the way the collector puts them in (collector.store.save_batch, then
collector.publish.publish_after_commit). What the page shows is read from the DOM.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import threading
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import redis as redis_lib
from playwright.sync_api import Browser, Page, expect, sync_playwright

from collector.normalise import Delete
from collector.publish import publish_after_commit
from collector.sanitise import sanitise_html
from collector.store import save_batch
from core.events import load_events
from core.items import Author, Item, Media
from core.redisd import free_port
from core.settings import Settings
from core.tail import stream_key
from sitegen.build import build_site

ROOT = Path(__file__).resolve().parents[2]
CONTENT = ROOT / "content"
EVENT = "northwind-2026"
T0 = datetime(2026, 10, 24, 8, 0, tzinfo=UTC)
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
HOSTILE = (
    '<p>hostile <script>window.__pwned = "script"; alert(1)</script>'
    '<img src="x" onerror="window.__pwned = \'img\'; alert(2)">'
    "<a href=\"javascript:window.__pwned = 'link'; alert(3)\">click me</a>"
    '<svg><script>window.__pwned = "svg"</script></svg>'
    '<iframe srcdoc="<script>parent.__pwned = 1</script>"></iframe>'
    '<a href="https://ok.example/" onclick="window.__pwned = \'onclick\'">fine link</a></p>'
)


# -- the pieces, each started on a free port and stopped after the test ----------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        executable = os.environ.get("AFA_CHROMIUM", "/usr/bin/chromium")
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def static_site(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """(output dir, its URL): a plain static HTTP server, as a CDN would serve output/."""
    out = tmp_path / "output"
    out.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(out)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield out, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class Sidecar:
    """`python -m live serve` on one fixed port, which can be stopped and started again."""

    def __init__(self, start_child, redis_url: str, origin: str) -> None:
        self.start_child, self.port, self.child = start_child, free_port(), None
        self.env = {"REDIS_URL": redis_url, "AFA_CONTENT_DIR": str(CONTENT),
                    "AFA_SITE_ORIGIN": origin}  # fmt: skip

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        args = [sys.executable, "-m", "live", "serve", "--port", str(self.port)]
        self.child = self.start_child(args, port=self.port, env=self.env)
        self.child.wait_ready()

    def stop(self) -> None:
        output = self.child.stop()
        assert "Traceback" not in output, output


class Collector:
    """Posts into the archive and the Redis tail exactly as the collector does it."""

    def __init__(self, db, redis: redis_lib.Redis) -> None:
        self.db, self.redis = db, redis

    def save(self, changes: list) -> list[int]:
        committed = save_batch(self.db, EVENT, changes, "test:browser", None)
        publish_after_commit(self.redis, self.db, EVENT, committed, 10_000)
        return [change.seq for change in committed]


def item(n: int, html: str | None = None, **extra) -> Item:
    author = extra.pop("author", None) or Author(
        id=f"https://social.example/users/u{n}", handle=f"@u{n}@social.example",
        name=f"Person {n}", url=f"https://social.example/@u{n}",
    )  # fmt: skip
    return Item(
        uri=f"https://social.example/users/u{n}/statuses/{n}",
        source="mastodon", origin="social.example", local_id=str(n),
        url=f"https://social.example/@u{n}/{n}", created_at=T0 + timedelta(minutes=n),
        author=author, html=html if html is not None else f"<p>post number {n}</p>",
        text=f"post number {n}", tags=("northwind26",), **extra,
    )  # fmt: skip


@pytest.fixture
def live_site(tmp_path, archive, redis_client, redis_url, static_site, start_child):
    """(collector, sidecar, page URL): three posts built into the static live page, the
    sidecar running, nothing opened yet."""
    out, site_url = static_site
    collector = Collector(archive, redis_client)
    assert collector.save([item(n) for n in (1, 2, 3)]) == [1, 2, 3]
    sidecar = Sidecar(start_child, redis_url, site_url)
    build(tmp_path, sidecar, site_url)
    sidecar.start()
    return collector, sidecar, f"{site_url}/{EVENT}/live/"


def build(tmp_path: Path, sidecar: Sidecar, site_url: str) -> None:
    """sitegen's build of the site (again, after more posts: the organizer's rebuild)."""
    settings = Settings(
        content_dir=CONTENT, archive_path=tmp_path / "archive.db", output_dir=tmp_path / "output",
        var_dir=tmp_path / "var", live_url=sidecar.url, site_origin=site_url,
    )  # fmt: skip
    build_site(settings, now=T0, search=False)


def seqs(page: Page) -> list[int]:
    return page.eval_on_selector_all(
        "#live-posts article.post", "posts => posts.map(p => Number(p.dataset.seq))"
    )


def watch_for_scripts(page: Page) -> list[str]:
    dialogs: list[str] = []

    def on_dialog(dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return dialogs


def wait_seqs(page: Page, want: list[int], timeout: float = 20_000) -> None:
    page.wait_for_function(
        "want => JSON.stringify([...document.querySelectorAll('#live-posts article.post')]"
        ".map(p => Number(p.dataset.seq))) === JSON.stringify(want)",
        arg=want,
        timeout=timeout,
    )


# -- the acceptance test ---------------------------------------------------------------------


def test_live_page_follows_the_collector_across_a_sidecar_restart(browser, live_site):
    collector, sidecar, url = live_site
    page = browser.new_page()
    dialogs = watch_for_scripts(page)
    page.goto(url)
    assert seqs(page) == [3, 2, 1]  # inline in the static page
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")

    assert collector.save([item(n) for n in (4, 5, 6)]) == [4, 5, 6]
    wait_seqs(page, [6, 5, 4, 3, 2, 1])
    expect(page.locator("#live-announce")).to_have_text("3 new posts")

    sidecar.stop()
    expect(page.locator("#live-status")).not_to_have_attribute("data-state", "live")
    assert collector.save([item(n) for n in range(7, 12)]) == [7, 8, 9, 10, 11]
    sidecar.start()
    wait_seqs(page, [11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1])  # no gap, no duplicate
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    assert collector.save([item(12)]) == [12]
    wait_seqs(page, [12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1])

    # an edit replaces the post in place; a retraction removes it
    edited = item(5, "<p>post number 5, corrected</p>", edited_at=T0 + timedelta(hours=1))
    assert collector.save([edited]) == [13]
    five = page.locator('#live-posts article[data-uri$="/statuses/5"]')
    expect(five).to_have_attribute("data-seq", "13")
    expect(five.locator(".content")).to_have_text("post number 5, corrected")
    expect(five.locator(".edited")).to_be_visible()
    assert collector.save([Delete("social.example", uri=item(8).uri)]) == [14]
    wait_seqs(page, [12, 11, 10, 9, 7, 6, 13, 4, 3, 2, 1])
    assert dialogs == [] and page.evaluate("window.__pwned") is None


def test_a_hostile_post_runs_no_script(browser, live_site):
    collector, _sidecar, url = live_site
    page = browser.new_page()
    dialogs = watch_for_scripts(page)
    page.goto(url)
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    hostile_author = Author(
        id="https://evil.example/users/x", handle="<b>@x</b>",
        name='<img src=x onerror="window.__pwned=\'name\'">', url="javascript:alert(4)",
        avatar="javascript:alert(5)",
    )  # fmt: skip
    media = (Media("image", "javascript:alert(6)", alt='"><script>alert(7)</script>'),
             Media("image", "https://img.example/a.jpg", alt="a cat on a keyboard"))  # fmt: skip
    changes = [
        item(20, sanitise_html(HOSTILE)),  # as the sanitiser hands it over
        item(21, HOSTILE, author=hostile_author, media=media),  # raw, as if it were bypassed
    ]
    assert collector.save(changes) == [4, 5]
    wait_seqs(page, [5, 4, 3, 2, 1])
    for link in page.locator("#live-posts a").all():
        href = link.get_attribute("href")
        assert href is None or href.startswith(("http://", "https://")), href
    page.get_by_text("click me").first.click()  # a link that is no link any more
    page.get_by_text("fine link").first.click(modifiers=["Control"])  # no onclick left
    raw = page.locator('#live-posts article[data-seq="5"]')
    expect(raw.locator(".name")).to_have_text("<img src=x onerror=\"window.__pwned='name'\">")
    assert raw.locator("script, iframe, svg, [onerror], [onclick]").count() == 0
    photo = raw.locator(".media img")
    expect(photo).to_have_count(1)  # the javascript: one is gone
    assert photo.get_attribute("alt") == "a cat on a keyboard"
    assert photo.get_attribute("loading") == "lazy"
    page.wait_for_timeout(300)
    assert dialogs == [] and page.evaluate("window.__pwned") is None


def test_without_javascript_the_inline_posts_are_there(browser, live_site):
    _collector, _sidecar, url = live_site
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(url)
    assert seqs(page) == [3, 2, 1]
    expect(page.locator("#live-status")).to_have_attribute("data-state", "static")
    context.close()


def test_on_a_phone_new_posts_wait_behind_a_button_and_the_talk_now_shows(browser, live_site):
    collector, _sidecar, url = live_site
    keynote = load_events(CONTENT)[0].days[0].sessions[0].presentations[0]
    context = browser.new_context(viewport={"width": 375, "height": 667}, is_mobile=True)
    page = context.new_page()
    page.clock.set_fixed_time(keynote.start + timedelta(minutes=5))
    page.goto(url)
    now_on = page.locator("#live-now")
    expect(now_on).to_be_visible()
    expect(now_on.locator("li:visible")).to_have_count(1)
    expect(now_on.locator("li:visible a")).to_have_text(keynote.title)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")

    collector.save([item(n) for n in range(4, 14)])
    wait_seqs(page, list(range(13, 0, -1)))
    expect(page.locator("#live-new")).to_be_hidden()  # at the top: nothing to point at
    page.locator("footer.site-foot").scroll_into_view_if_needed()
    collector.save([item(14), item(15)])
    expect(page.locator("#live-new")).to_have_text("2 new posts")
    page.locator("#live-new").click()
    expect(page.locator("#live-new")).to_be_hidden()
    assert page.evaluate("document.getElementById('live-posts').getBoundingClientRect().top") >= 0
    context.close()


def test_a_reset_reloads_the_page_once_and_it_goes_on_live(browser, live_site, tmp_path):
    """The page's cursor fell out of the retained tail while the sidecar was away: the sidecar
    sends `reset` instead of a gap, and live.js reloads the static page (rebuilt meanwhile, as
    the organizer's build does after each session), which then streams live again."""
    collector, sidecar, url = live_site
    page = browser.new_page()
    loads: list[str] = []
    page.on("load", lambda p: loads.append(p.url))
    page.goto(url)
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    assert collector.save([item(n) for n in (4, 5)]) == [4, 5]
    wait_seqs(page, [5, 4, 3, 2, 1])  # its Last-Event-ID is now 5
    page.evaluate("window.__before_reset = true")

    sidecar.stop()
    expect(page.locator("#live-status")).not_to_have_attribute("data-state", "live")
    assert collector.save([item(n) for n in range(6, 21)]) == list(range(6, 21))
    collector.redis.xtrim(stream_key(EVENT), maxlen=5, approximate=False)  # keeps 16..20
    build(tmp_path, sidecar, url.removesuffix(f"/{EVENT}/live/"))
    sidecar.start()

    page.wait_for_function("() => window.__before_reset === undefined", timeout=20_000)
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    shown = seqs(page)
    assert shown[:17] == list(range(20, 3, -1)), shown  # from the rebuilt page, inline
    assert collector.save([item(21)]) == [21]
    wait_seqs(page, [21, *shown])
    assert loads == [url, url]  # one reload, not a loop
    with urllib.request.urlopen(f"{sidecar.url}/stats", timeout=10) as response:
        assert json.load(response)["resets"] == 1


def test_a_reset_on_a_page_that_is_still_too_old_does_not_reload_in_a_loop(browser, live_site):
    """The static page is no newer after the reload (a stale cached copy, no rebuild yet), so the
    sidecar sends `reset` again: live.js must not reload again, but go on from the oldest change
    the tail holds, and say that earlier posts are missing here."""
    collector, sidecar, url = live_site
    sidecar.stop()
    assert collector.save([item(n) for n in range(4, 21)]) == list(range(4, 21))
    collector.redis.xtrim(stream_key(EVENT), maxlen=5, approximate=False)  # keeps 16..20
    sidecar.start()
    page = browser.new_page()
    loads: list[str] = []
    page.on("load", lambda p: loads.append(p.url))
    page.goto(url)
    wait_seqs(page, [20, 19, 18, 17, 16, 3, 2, 1], timeout=8_000)
    assert collector.save([item(21)]) == [21]  # and it is live from there on
    wait_seqs(page, [21, 20, 19, 18, 17, 16, 3, 2, 1])
    assert loads == [url, url]  # one reload, then no more
    assert "archive" in page.locator("#live-status").inner_text()
