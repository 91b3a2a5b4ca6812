"""collector/sources/flickr/parse.py: photos of a real flickr.photos.search response."""

import json

import pytest

from collector.sources.flickr import parse_photo
from core.errors import ParseError

from .conftest import data_cases, load, parse_outcome

CASES = data_cases("flickr")


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_data_file(path):
    expected = json.loads(path.with_name(path.stem + ".expected.json").read_text())
    assert parse_outcome("flickr", json.loads(path.read_text())) == expected


def test_every_photo_of_the_real_response_parses_with_an_https_image():
    photos = load("flickr/search_response.json")["photos"]["photo"]
    items = [parse_photo(p) for p in photos]
    assert len({i.uri for i in items}) == len(photos) == 20
    assert all(i.media[0].url.startswith("https://live.staticflickr.com/") for i in items)


@pytest.mark.parametrize("photo", [{}, {"id": "1"}, {"id": "abc", "owner": "o"},
                                   {"id": "1", "owner": "o", "dateupload": "1"}])  # fmt: skip
def test_malformed_photo(photo):
    with pytest.raises(ParseError):
        parse_photo(photo)
