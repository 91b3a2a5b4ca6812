"""Regression, issue #3: a Jetstream batch was counted twice.

Bug: jetstream_live's `_flush` (and bluesky_live's search save, and mastodon_live's save) added
`received` and `malformed` to the source's state on top of what collect.py's saver counts, so
`status` and the completeness report showed twice the posts a Bluesky or Mastodon source sent;
and a malformed post read again (a backfill's overlap, a replay) was kept and counted again.
Fix: only the saver counts (SourceState.count, after the commit), and store.fresh_malformed
keeps a malformed post once. Reproduction: collect() over the fakes, then read its state.
"""

from __future__ import annotations

import asyncio

from tests.collector.live_helpers import count, run_until, sample_event
from tests.collector.matrix import Bluesky, Mastodon
from tests.fakes.jetstream import JetstreamFake
from tests.fakes.mastodon import DEFAULT_TOKEN, MastodonFake


def test_jetstream_posts_and_malformed_posts_are_counted_once(make_settings, redis_url):
    settings = make_settings(redis_url=redis_url)
    db = settings.archive_path
    with JetstreamFake() as fake:
        source = Bluesky(fake)
        published = []

        def done() -> bool:
            if not published and len(fake.hub):  # the first start is the live tail
                published.extend(source.publish(k) or k for k in range(5))
                source.publish_poison(9)
            return bool(published) and count(db, "SELECT count(*) FROM items") == 5 and count(
                db, "SELECT count(*) FROM malformed") == 1  # fmt: skip

        states, _ = asyncio.run(run_until(settings, [sample_event(source.config())], done))
    state = next(iter(states.values()))
    assert (state.received, state.malformed) == (5, 1)


def test_a_malformed_post_walked_again_is_kept_and_counted_once(make_settings, redis_url):
    """The stream event of post 6 is cut: only the REST backfill after the reconnect brings it,
    and that walk reads the malformed post again."""
    settings = make_settings(redis_url=redis_url)
    db = settings.archive_path
    with MastodonFake(heartbeat=0.2) as fake:
        source, phase = Mastodon(fake), []

        def done() -> bool:
            items = count(db, "SELECT count(*) FROM items") if db.exists() else 0
            # published once the first backfill has read the timeline (empty then): a post
            # published before it would be read twice, by the walk and by the stream
            walked = any(r.status == 200 for r in fake.requests_to("/api/v1/timelines/tag/"))
            if not phase and len(fake.hub) and walked:
                phase.append("published")
                for k in range(5):
                    source.publish(k)
                source.publish_poison(9)
            elif phase == ["published"] and items == 5 and len(fake.hub):
                phase.append("cut")
                source.cut()
                source.publish(6)
            return phase == ["published", "cut"] and items == 6

        env = {"AFA_MASTODON_TOKEN": DEFAULT_TOKEN}
        states, _ = asyncio.run(
            run_until(settings, [sample_event(source.config())], done, environ=env)
        )
    state = next(iter(states.values()))
    assert count(db, "SELECT count(*) FROM malformed") == 1
    assert state.malformed == 1
    assert state.gaps_detected >= 1 and 6 <= state.received < 12  # resends count, once each
