"""Acceptance for the venue wall and pinned posts (issue 11), in Debian's Chromium (Playwright).

As tests/browser/test_live_page.py: the site built by sitegen into a temporary output/ and served
by a plain static server, `python -m live serve` against a real redis-server, posts saved and
published the collector's way, pins and hides made by core.moderation (Pinner, Moderator).
Time on the page is a test clock (Playwright's `page.clock`): the wall's pacing and its talk
on now are driven by moving it, never by waiting.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from core.items import Author, Item
from core.meetups import proposal_time
from core.moderation.decisions import Moderator
from core.moderation.pins import Pinner
from core.settings import Settings
from sitegen.build import build_site
from tests.browser import test_live_page as live_tests
from tests.browser.test_live_page import CONTENT, EVENT, Collector, Sidecar
from tests.core.test_meetups import AMS, PROPOSALS

browser, static_site = live_tests.browser, live_tests.static_site  # the same fixtures

# 10:50 in Amsterdam on the first day: "SQLite at the Edge" (10:30-11:15) is on in the Main Hall.
T0 = datetime(2026, 10, 24, 8, 50, tzinfo=UTC)
CARDS = "#wall-columns article.card"


def post(n: int, at: datetime | None = None, **fields) -> Item:
    author = fields.pop("author", None) or Author(
        id=f"https://social.example/users/w{n}", handle=f"@w{n}@social.example",
        name=f"Wall person {n}",
    )  # fmt: skip
    values = dict(
        uri=f"https://social.example/users/w{n}/statuses/{n}", source="mastodon",
        origin="social.example", local_id=str(n), url=f"https://social.example/@w{n}/{n}",
        created_at=at or T0 - timedelta(minutes=30) + timedelta(seconds=n), author=author,
        html=f"<p>wall post {n} <a href='https://x.example/'>a link</a></p>",
        text=f"wall post {n}", tags=("northwind26",),
    )  # fmt: skip
    values.update(fields)
    return Item(**values)


@pytest.fixture
def wall_site(tmp_path, archive, redis_client, redis_url, static_site, start_child):
    """(collector, archive, redis client, sidecar, site URL): posts 1..3 built into the pages."""
    out, site_url = static_site
    collector = Collector(archive, redis_client)
    assert collector.save([post(1), post(2, likes=3), post(3)]) == [1, 2, 3]  # 2: a best post
    sidecar = Sidecar(start_child, redis_url, site_url)
    settings = Settings(
        content_dir=CONTENT, archive_path=tmp_path / "archive.db", output_dir=out,
        var_dir=tmp_path / "var", live_url=sidecar.url, site_origin=site_url,
        base_url="https://northwind.example",
    )  # fmt: skip
    build_site(settings, now=T0, search=False)
    sidecar.start()
    return collector, archive, redis_client, sidecar, site_url, tmp_path


def card_uris(page: Page, where: str = CARDS) -> list[str]:
    return page.eval_on_selector_all(where, "cards => cards.map(c => c.dataset.uri)")


def wait_seen(page: Page, seq: int) -> None:
    page.wait_for_function(
        "seq => Number(document.getElementById('wall').dataset.seen || 0) >= seq", arg=seq
    )


def test_the_wall_paces_posts_keeps_pins_on_top_and_drops_hidden_ones(browser, wall_site):
    collector, archive, redis, _sidecar, site_url, tmp_path = wall_site
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    page.clock.set_fixed_time(T0)
    page.goto(f"{site_url}/{EVENT}/wall/?pace=5000&idle=3600000")
    assert sorted(card_uris(page)) == sorted(post(n).uri for n in (1, 2, 3))  # inline, static
    assert page.locator(".wall-qr svg[role=img]").count() == 1
    expect(page.locator("#wall-status")).to_have_attribute("data-state", "live")
    live = browser.new_page()
    live.goto(f"{site_url}/{EVENT}/live/")
    expect(live.locator("#live-status")).to_have_attribute("data-state", "live")

    # nothing shown for `pace`: a new post goes up as it arrives (the time it takes is measured
    # by tests/bench/bench_wall.py, not asserted here)
    assert collector.save([post(4)]) == [4]
    expect(page.locator(f'{CARDS}[data-uri="{post(4).uri}"]')).to_be_visible()
    shown = page.locator(f'{CARDS}[data-uri="{post(4).uri}"]')
    expect(shown.locator(".card-text")).to_have_text("wall post 4 a link")
    assert shown.locator("a").count() == 0  # nothing on a wall is clickable

    # faster than `pace`: the next ones wait in the queue and go up one per pace
    assert collector.save([post(5), post(6)]) == [5, 6]
    wait_seen(page, 6)
    expect(page.locator("#wall")).to_have_attribute("data-queued", "2")
    assert post(5).uri not in card_uris(page)
    page.clock.set_fixed_time(T0 + timedelta(seconds=5))
    expect(page.locator(f'{CARDS}[data-uri="{post(5).uri}"]')).to_be_visible()
    expect(page.locator("#wall")).to_have_attribute("data-queued", "1")
    assert post(6).uri not in card_uris(page)
    page.clock.set_fixed_time(T0 + timedelta(seconds=10))
    expect(page.locator(f'{CARDS}[data-uri="{post(6).uri}"]')).to_be_visible()

    # a pin reaches the wall and the live page, on top, and stays there as posts go by
    pinner = Pinner(archive, redis)
    assert pinner.pin(EVENT, post(2).uri, who="ana").change.seq == 7
    pinned = page.locator(f'#wall-pinned article[data-uri="{post(2).uri}"]')
    expect(pinned).to_be_visible()
    assert post(2).uri not in card_uris(page)  # not twice on the screen
    expect(live.locator(f'#live-pinned article[data-uri="{post(2).uri}"]')).to_be_visible()
    for n, at in ((8, 15), (9, 20)):
        collector.save([post(n)])
        page.clock.set_fixed_time(T0 + timedelta(seconds=at))
        expect(page.locator(f'{CARDS}[data-uri="{post(n).uri}"]')).to_be_visible()
    assert card_uris(page, "#wall-pinned article.card") == [post(2).uri]
    top = page.locator("#wall-pinned").bounding_box()["y"]
    assert top < page.locator("#wall-columns").bounding_box()["y"]

    # moderation wins: a hidden post leaves at once, pinned or not; shown again, it is pinned again
    moderator = Moderator(archive, redis)
    moderator.hide(EVENT, post(5).uri, who="ana", why="test")
    expect(page.locator(f'{CARDS}[data-uri="{post(5).uri}"]')).to_have_count(0)
    moderator.hide(EVENT, post(2).uri, who="ana", why="test")
    expect(pinned).to_have_count(0)
    expect(live.locator(f'#live-pinned article[data-uri="{post(2).uri}"]')).to_have_count(0)
    moderator.unhide(EVENT, post(2).uri, who="ana", why="test")
    expect(pinned).to_be_visible()
    assert post(2).uri not in card_uris(page)

    # an unpinned post leaves the pinned posts, on the wall and on the live page
    pinner.unpin(EVENT, post(2).uri, who="ana")
    expect(pinned).to_have_count(0)
    expect(live.locator("#live-pinned article")).to_have_count(0)
    expect(live.locator("#live-pinned-box")).to_be_hidden()


def test_the_board_follows_proposals_replies_and_boosts_live(browser, wall_site):
    collector, *_rest, site_url, _tmp = wall_site
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    page.clock.set_fixed_time(T0)
    page.goto(f"{site_url}/{EVENT}/wall/?theme=light")
    assert page.evaluate("document.documentElement.dataset.theme") == "light"
    expect(page.locator("#wall-status")).to_have_attribute("data-state", "live")
    board = page.locator("#board-list li.meetup:visible")
    expect(board.locator(".meetup-title")).to_have_text(
        ["Conference dinner", "Karaoke for the brave"]
    )

    proposer = Author(id="https://social.example/users/p", handle="@p@social.example", name="Pia")
    proposal = post(40, T0, author=proposer, text="Pizza at 18:30 #nwmeetup",
                    html="<p>Pizza at 18:30 #nwmeetup</p>", tags=("nwmeetup",))  # fmt: skip
    reply = post(41, T0 + timedelta(minutes=1), reply_to=proposal.uri, text="in! #nwmeetup",
                 tags=("nwmeetup",))  # fmt: skip
    own = post(42, T0 + timedelta(minutes=2), author=proposer, reply_to=proposal.uri)
    booster = {"id": "https://other.example/users/b", "handle": "@b@other.example",
               "name": "Bo", "url": "", "avatar": ""}  # fmt: skip
    boost = post(40, T0, author=proposer, text="Pizza at 18:30 #nwmeetup", tags=("nwmeetup",),
                 html="<p>Pizza at 18:30 #nwmeetup</p>",
                 extra={"boosted_by": booster, "boosted_at": "2026-10-24T08:55:00Z"})  # fmt: skip
    assert collector.save([proposal]) == [4]
    expect(board.locator(".meetup-title")).to_have_text(
        ["Conference dinner", "Karaoke for the brave", "Pizza at 18:30"]  # organizers' first
    )
    entry = page.locator(f'#board-list li[data-uri="{proposal.uri}"]')
    expect(entry.locator(".meetup-when")).to_have_text("18:30–20:30")
    expect(entry.locator(".going-count")).to_have_text("0 going")
    assert collector.save([reply, own, boost]) == [5, 6, 7]
    expect(entry.locator(".going-count")).to_have_text("2 going")  # the proposer is not counted
    expect(entry.locator("ul.going li")).to_have_count(2)
    assert (
        page.locator(f'#board-list li[data-uri="{reply.uri}"]').count() == 0
    )  # going, no proposal

    # board.js reads a proposal's time as core/meetups.py does
    for text, posted, _meets in PROPOSALS:
        utc = posted.astimezone(UTC)
        start, end = proposal_time(text, utc, AMS)
        got = page.evaluate(
            "([text, posted]) => AfaBoard.proposalTime('Europe/Amsterdam', text, posted)",
            [text, utc.timestamp() * 1000],
        )
        assert got == [start.timestamp() * 1000, end.timestamp() * 1000], text


def test_the_talk_on_now_and_next_follow_the_clock(browser, wall_site):
    *_rest, site_url, _tmp = wall_site
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    page.clock.set_fixed_time(T0)
    page.goto(f"{site_url}/{EVENT}/wall/main/")
    now, following = page.locator(".wall-room .now-line"), page.locator(".wall-room .next-line")
    expect(now.locator(".title")).to_have_text("SQLite at the Edge · Jonas Weber")
    expect(now.locator(".left")).to_have_text("25 min left")
    expect(following.locator(".title")).to_have_text("11:30 Streams, Not Queues (in 40 min)")
    page.clock.set_fixed_time(T0 + timedelta(minutes=26))  # 11:16, the talk ended at 11:15
    expect(now.locator(".title")).to_have_text("Nothing on right now")
    expect(now.locator(".left")).to_have_text("")
    expect(following.locator(".title")).to_have_text("11:30 Streams, Not Queues (in 14 min)")
    page.clock.set_fixed_time(T0 + timedelta(minutes=41))  # 11:31
    expect(now.locator(".title")).to_have_text("Streams, Not Queues · Lena Fischer")
    expect(now.locator(".left")).to_have_text("44 min left")
    expect(page.locator("#wall-clock")).to_have_text("11:31")
    # nothing arrived for longer than `idle`: the best recent posts come round again
    expect(page.locator(f'{CARDS}.again[data-uri="{post(2).uri}"]')).to_be_visible()
    assert page.evaluate("document.documentElement.scrollHeight <= window.innerHeight")


WALL_BOUND = 3 * 5 + 3  # columns × posts per column (wall.py), and the pinned posts shown


def test_after_5000_posts_the_wall_holds_a_bounded_dom_and_a_flat_heap(browser, wall_site):
    """A whole day's stream at once, shown as fast as it comes (?pace=0), so every post is put
    up and taken down again: the DOM keeps at most WALL_BOUND posts and the JS heap (after a
    forced GC, read through the DevTools protocol) grows by less than 10 MB."""
    collector, *_rest, site_url, _tmp = wall_site
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    page.goto(f"{site_url}/{EVENT}/wall/?pace=0&idle=3600000")
    expect(page.locator("#wall-status")).to_have_attribute("data-state", "live")
    cdp = page.context.new_cdp_session(page)

    def heap() -> int:
        cdp.send("HeapProfiler.collectGarbage")
        return cdp.send("Runtime.getHeapUsage")["usedSize"]

    def push(first: int, count: int) -> int:
        items = [post(n, likes=n % 10 == 0) for n in range(first, first + count)]
        return collector.save(items)[-1]

    wait_seen(page, push(100, 200))  # warmed up: code compiled, pool and columns full
    before, nodes_before = heap(), page.evaluate("document.getElementsByTagName('*').length")
    last = 0
    for first in range(1_000, 6_000, 250):
        last = push(first, 250)
    wait_seen(page, last)
    after, nodes = heap(), page.evaluate("document.getElementsByTagName('*').length")
    cards = page.locator("article.card").count()
    assert page.locator(f'{CARDS}[data-uri="{post(5_999).uri}"]').count() == 1
    assert cards <= WALL_BOUND and nodes <= nodes_before + 50
    assert after - before < 10 * 2**20


AXE = Path(__file__).resolve().parents[2] / "var/tools/axe/node_modules/axe-core/axe.min.js"
ROOM_PAGES = [
    (1920, 1080, "wall/"),
    (1280, 720, "wall/main/?theme=light"),
    (1280, 720, "meetups/"),
    (1280, 720, "meetups/2026-10-24/"),
    (1280, 720, "live/"),
]


def test_the_room_pages_pass_axe_with_no_serious_or_critical_violation(browser, wall_site):
    """axe-core (from npm, `make axe`) injected into the wall at both sizes and themes, the
    meet-ups pages and the live page with a pinned post and the board."""
    assert AXE.is_file(), f"{AXE} is missing: run `make axe` (npm install of axe-core)"
    collector, archive, redis, *_rest, site_url, _tmp = wall_site
    Pinner(archive, redis).pin(EVENT, post(1).uri, who="ana")
    problems = []
    # Reduced motion: a card that the stream brings in fades in over 0.6 s, and axe measuring
    # it mid-fade reported its handle's contrast at a fraction of its opacity (once in a run).
    page = browser.new_page(reduced_motion="reduce")
    page.clock.set_fixed_time(T0)
    for width, height, path in ROOM_PAGES:
        page.set_viewport_size({"width": width, "height": height})
        page.goto(f"{site_url}/{EVENT}/{path}")
        status = page.locator("#wall-status, #live-status")  # live, for the live pages
        if status.count():
            expect(status).not_to_have_attribute("data-state", "static")
        page.add_script_tag(path=str(AXE))
        found = page.evaluate(
            """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations
                     .filter(v => v.impact === "serious" || v.impact === "critical")
                     .map(v => `${v.id} (${v.impact}): ${v.nodes.length} × ${v.nodes[0].target}`)"""
        )
        problems += [f"{width} {path}: {line}" for line in found]
    page.close()
    assert problems == [], "\n".join(problems)
