"""collector/sources/base.py: the waits every source shares (back-off, rate limits) and the
rate-limit headers of every source's server, read in one place."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, date, datetime

import httpx
import pytest

from collector.normalise import Delete, SkipItem
from collector.sources.base import (
    Backoff,
    SourceContext,
    SourceState,
    Stopping,
    parser,
    rate_limit_wait,
    spent,
)
from core.errors import ParseError
from core.events import Event
from core.settings import Settings

EVENT = Event(slug="northwind-2026", name="Northwind 2026", start=date(2026, 10, 24),
              end=date(2026, 10, 25), timezone="UTC", venue="", hashtags=("northwind26",),
              rooms=(), days=())  # fmt: skip


class RecordingState(SourceState):
    """SourceState that remembers every state it went through."""

    def __init__(self) -> None:
        super().__init__()
        self.history: list[str] = []

    def set(self, state: str) -> None:
        super().set(state)
        self.history.append(state)


def context(**kwargs) -> SourceContext:
    async def save(changes, cursor, malformed=()):
        return 0

    return SourceContext(event=EVENT, key="flickr:northwind26", config={}, settings=Settings(),
                         hashtags={"northwind26"}, cursor=None, save=save, http=None,
                         secrets={}.get, state=RecordingState(),
                         **{"backoff": Backoff(0.01, 0.02), **kwargs})  # fmt: skip


def response(status: int, **headers: str) -> httpx.Response:
    request = httpx.Request("GET", "https://api.example/rest/?api_key=s3cret&page=2")
    return httpx.Response(status, headers=headers, request=request)


def test_reset_forms_of_every_source():
    date_header = "Sat, 01 Aug 2026 13:59:30 GMT"
    mastodon = {"x-ratelimit-reset": "2026-08-01T14:00:00.070144Z", "date": date_header}
    assert rate_limit_wait(httpx.Headers(mastodon)) == pytest.approx(30.12, abs=0.01)
    gotosocial = {"x-ratelimit-reset": "1785592800", "date": "Sat, 01 Aug 2026 13:58:00 GMT"}
    assert rate_limit_wait(httpx.Headers(gotosocial)) == pytest.approx(120.05)
    now = datetime(2026, 8, 1, 13, 59, 0, tzinfo=UTC)
    bluesky = {"ratelimit-reset": "1785592800", "ratelimit-remaining": "0"}
    assert rate_limit_wait(httpx.Headers(bluesky), now=now) == pytest.approx(60.05)
    assert rate_limit_wait(httpx.Headers({"retry-after": "7", **bluesky}), now=now) == 7
    http_date = {"retry-after": "Sat, 01 Aug 2026 13:59:45 GMT", "date": date_header}
    assert rate_limit_wait(httpx.Headers(http_date)) == pytest.approx(15.05)
    assert rate_limit_wait(httpx.Headers(mastodon), cap=10) == 10
    assert rate_limit_wait(httpx.Headers({})) is None
    assert rate_limit_wait(httpx.Headers({"x-ratelimit-reset": "soon"})) is None
    assert rate_limit_wait(httpx.Headers({"ratelimit-reset": "9" * 400}), now=now) is None


def test_spent_reads_either_header_family():
    assert spent(httpx.Headers({"x-ratelimit-remaining": "0"}))
    assert spent(httpx.Headers({"ratelimit-remaining": " 0 "}))
    assert not spent(httpx.Headers({"x-ratelimit-remaining": "3"}))
    assert not spent(httpx.Headers({}))


def test_back_off_records_logs_and_counts_the_wait(caplog):
    ctx = context()
    ctx.state.set("polling")

    async def scenario():
        await ctx.back_off("HTTP 503 from https://api.example/", down=True)
        assert ctx.state.state == "backing off"
        ctx.state.set("streaming")
        await ctx.back_off("a side task's 503", show=False)

    with caplog.at_level(logging.WARNING, "collector.sources"):
        asyncio.run(scenario())
    assert ctx.state.errors == 2 and ctx.state.last_error == "a side task's 503"
    assert ctx.state.state == "streaming"  # show=False left the state alone
    assert ctx.state.disconnected_seconds > 0
    assert "flickr:northwind26: HTTP 503 from https://api.example/; backing off" in caplog.text
    assert "a side task's 503; trying again later" in caplog.text
    assert ctx.backoff.attempt == 2


def test_a_stop_ends_any_wait_with_stopping():
    ctx = context(backoff=Backoff(30, 60))

    async def scenario():
        ctx.stopping.set()
        with pytest.raises(Stopping):
            await ctx.back_off("network down")
        ctx.hold(30)
        with pytest.raises(Stopping):
            await ctx.wait_for_budget()

    asyncio.run(scenario())


def test_a_429_holds_the_source_and_names_no_query():
    ctx = context()
    wait = ctx.hold_for(response(429, **{"retry-after": "0.2"}))
    assert wait == pytest.approx(0.2)
    assert ctx.state.last_error == "https://api.example/rest/: HTTP 429, waiting 0.2 s"
    assert "s3cret" not in ctx.state.last_error  # a query may carry a key
    ctx.state.set("polling")

    async def scenario():
        await ctx.wait_for_budget()

    asyncio.run(scenario())
    assert ctx.state.rate_limited_seconds >= 0.15
    assert ctx.state.history[-2:] == ["rate limited", "polling"]  # then the state before


def test_a_spent_window_holds_without_an_error_and_defaults_when_unsaid():
    ctx = context()
    assert ctx.hold_for(response(200), cap=5, default=3) == 3
    assert ctx.state.errors == 0
    assert ctx.hold_for(response(429), cap=5) <= 0.02  # no headers: the next backoff delay


# -- the parse contract ------------------------------------------------------------------------


def test_any_exception_while_parsing_is_a_parse_error_naming_it():
    @parser
    def parse_thing(payload):
        return payload["index"].get("byteStart")  # a facet index that is a list: AttributeError

    with pytest.raises(ParseError, match="^AttributeError: 'list' object has no attribute 'get'$"):
        parse_thing({"index": [0, 5]})


def test_skip_and_parse_errors_pass_and_changes_come_out_clean():
    @parser
    def parse_thing(kind):
        if kind == "skip":
            raise SkipItem("not the event's")
        if kind == "bad":
            raise ParseError("status has no uri or id")
        return [Delete("mastodon.social", local_id="12\u202e3"), "kept as it is"]

    with pytest.raises(SkipItem):
        parse_thing("skip")
    with pytest.raises(ParseError, match="^status has no uri or id$"):
        parse_thing("bad")
    assert parse_thing("ok") == [Delete("mastodon.social", local_id="123"), "kept as it is"]


def test_every_payload_parser_wears_the_contract():
    from collector.enrich import answers, profiles
    from collector.sources import bluesky, feeds, flickr, mastodon, recording

    parsers = [mastodon.parse_status, mastodon.parse_stream_event, bluesky.parse_jetstream,
               bluesky.parse_post_view, flickr.parse_photo, feeds.parse_entry,
               feeds.parse.parse_document, recording.parse_delivery, answers.profile_updates,
               answers.post_counts, answers.status_counts, answers.photo_info,
               answers.photo_counts, profiles.parse_profile]  # fmt: skip
    assert [p.__qualname__ for p in parsers if getattr(p, "__wrapped__", None) is None] == []
