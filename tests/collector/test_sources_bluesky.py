"""collector/sources/bluesky/parse.py: Jetstream events and searchPosts postViews."""

import json

import pytest

from collector.normalise import tags_from_text
from collector.sources.bluesky import parse_jetstream
from core.errors import ParseError

from .conftest import DATA, SHARED, data_cases, jetstream_post, parse_outcome

CASES = data_cases("bluesky")


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_data_file(path):
    expected = json.loads(path.with_name(path.stem + ".expected.json").read_text())
    assert parse_outcome("bluesky", json.loads(path.read_text())) == expected


def test_capture_has_no_event_posts():
    handles: dict[str, str] = {}
    lines = (DATA / "bluesky" / "jetstream_capture_noise.jsonl").read_text().splitlines()
    results = [parse_jetstream(json.loads(line), {"northwind26"}, handles) for line in lines]
    kinds = {type(r).__name__ for r in results}
    assert kinds == {"NoneType", "Delete", "ProfileHint"}  # a post delete, identity and account
    assert handles == {}  # its one identity event carries no handle


def test_hashtag_matches_case_insensitively_from_facets_tags_or_text():
    event = jetstream_post(1, text="plain text mentioning #NORTHWIND26")
    event["commit"]["record"]["facets"] = []
    assert parse_jetstream(event, {"northwind26"}).tags == ("northwind26",)
    event["commit"]["record"].update(text="no tag in text", tags=["NorthWind26"])
    assert parse_jetstream(event, {"northwind26"}) is not None
    event["commit"]["record"]["tags"] = []
    assert parse_jetstream(event, {"northwind26"}) is None


DETECTION = json.loads((SHARED / "bluesky-hashtag-detection-cases.json").read_text())["cases"]


@pytest.mark.parametrize("case", DETECTION, ids=[c["text"] for c in DETECTION])
def test_text_hashtag_rules_match_bluesky(case):
    expected = list(dict.fromkeys(t.casefold() for t in case["tags"]))
    assert tags_from_text(case["text"]) == expected


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"did": 5},
        {
            "did": "did:x",
            "kind": "commit",
            "commit": {
                "collection": "app.bsky.feed.post",
                "operation": "create",
                "rkey": "r",
                "record": "x",
            },
        },
    ],
)
def test_malformed_jetstream_event(event):
    with pytest.raises(ParseError):
        parse_jetstream(event, {"northwind26"})
