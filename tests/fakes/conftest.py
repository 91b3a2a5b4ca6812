"""Fixtures for the fake servers: each starts on a free port and is stopped at teardown.

Other test folders can reuse them with `from tests.fakes.conftest import *` in their conftest,
or start a fake directly: `with MastodonFake() as m: ...`.
"""

from __future__ import annotations

import pytest

from tests.fakes.bluesky import BlueskyFake
from tests.fakes.feeds import FeedsFake
from tests.fakes.flickr import FlickrFake
from tests.fakes.jetstream import JetstreamFake
from tests.fakes.mastodon import MastodonFake


@pytest.fixture
def start_fake():
    """start_fake(FakeClass, **options) -> a started fake; every one is stopped at teardown."""
    started = []

    def start(cls, **options):
        fake = cls(**options).start()
        started.append(fake)
        return fake

    yield start
    for fake in reversed(started):
        fake.stop()


@pytest.fixture
def mastodon_fake(start_fake) -> MastodonFake:
    return start_fake(MastodonFake, heartbeat=0.2)


@pytest.fixture
def jetstream_fake(start_fake) -> JetstreamFake:
    return start_fake(JetstreamFake)


@pytest.fixture
def bluesky_fake(start_fake) -> BlueskyFake:
    return start_fake(BlueskyFake)


@pytest.fixture
def flickr_fake(start_fake) -> FlickrFake:
    return start_fake(FlickrFake)


@pytest.fixture
def feeds_fake(start_fake) -> FeedsFake:
    return start_fake(FeedsFake)
