"""collector/sources/mastodon/parse.py: data-file pairs from real statuses, and streaming events."""

import json

import pytest

from collector.normalise import Delete, SkipItem
from collector.sources.mastodon import parse_status, parse_stream_event
from core.errors import ParseError

from .conftest import SHARED, data_cases, load, parse_outcome

CASES = data_cases("mastodon")


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_data_file(path):
    expected = json.loads(path.with_name(path.stem + ".expected.json").read_text())
    assert parse_outcome("mastodon", json.loads(path.read_text())) == expected


def test_boost_is_the_boosted_post():
    wrapper = load("mastodon/reblog_wrapper.json")["payload"]
    assert parse_status(wrapper, "localhost:3000") == parse_status(
        wrapper["reblog"], "localhost:3000"
    )


def test_local_account_gets_the_origin_host():
    status = load("mastodon/status_with_link.json")["payload"]
    assert (
        parse_status(status, "https://mastodon.social/").author.handle == "@Gargron@mastodon.social"
    )


def test_bridgy_fed_mirror_maps_to_the_at_uri():
    status = load("mastodon/quote_of_bridged_bluesky_post.json")["payload"]
    item = parse_status(status, "mastodon.social")
    assert item.uri == "at://did:plc:5syfqzormjkutgo5hi2u2gpr/app.bsky.feed.post/3lwlunj3oqs22"
    assert item.quote_of == "at://did:plc:5syfqzormjkutgo5hi2u2gpr/app.bsky.feed.post/3lwlumdwf522i"


def stream_events(name: str):
    """(event, data) pairs of a recorded SSE body, parsed the way the SSE spec says."""
    event, data = None, []
    for line in (SHARED / name).read_text().splitlines():
        if line.startswith(":"):
            continue
        if not line:
            if data:
                yield event or "message", "\n".join(data)
            event, data = None, []
        elif line.startswith("event:"):
            event = line[6:].removeprefix(" ")
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))


def test_hashtag_stream_events():
    kinds = []
    for name, data in stream_events("mastodon-stream-hashtag.txt"):
        event = parse_stream_event(name, data, "mastodon.social")
        kinds.append((event.kind, event.change.uri if event.item else event.delete))
    assert kinds == [
        ("update", "https://mastodon.social/users/trwnh/statuses/108914430312582020"),
        ("edit", "https://mastodon.social/users/trwnh/statuses/108914430312582020"),
        ("edit", "https://ruby.social/users/chrismo/statuses/109348684454557541"),  # a remote post
        ("delete", Delete("mastodon.social", local_id="108914430312582020")),
    ]


def test_user_stream_skips_direct_messages_and_ignores_notifications():
    outcomes = []
    for name, data in stream_events("mastodon-stream-user-recorded.txt"):
        try:
            outcomes.append(parse_stream_event(name, data, "localhost:4000").kind)
        except SkipItem as exc:
            outcomes.append(f"skip: {exc}")
    assert "ignored" in outcomes and "delete" in outcomes
    assert any(o.startswith("skip: visibility direct") for o in outcomes)


@pytest.mark.parametrize("name,data", [("update", "{not json"), ("update", '"a string"'),
                                       ("delete", ""), ("status.update", "[]")])  # fmt: skip
def test_malformed_stream_event(name, data):
    with pytest.raises(ParseError):
        parse_stream_event(name, data, "mastodon.social")
