"""Issue #3's acceptance fault matrix, against `python -m collector run` as a real process.

Per source, and all sources together: the fakes publish posts over ~5 s while the test injects
at least 10 connection cuts per source at seeded random steps, one stall past the watchdog (or
the request timeout, for polled sources), 429s with reset headers, 5xx bursts, malformed
payloads, edits and deletes, and SIGKILLs the collector twice (restarting it each time; it
resumes from the cursors in the archive). At the end the archive holds exactly the published
posts less the malformed ones (each kept raw once, and reported), the Redis stream holds every
change once in sequence, and `python -m collector report` agrees. See tests/collector/matrix.py.
"""

from __future__ import annotations

import pytest

from tests.collector.matrix import run_matrix


@pytest.mark.parametrize(
    ("names", "seed"),
    [
        (["mastodon"], 301),
        (["bluesky"], 302),
        (["flickr"], 303),
        (["feed"], 304),
        (["mastodon", "bluesky", "flickr", "feed"], 305),
    ],  # fmt: skip
    ids=["mastodon", "bluesky", "flickr", "feed", "all"],
)
def test_fault_matrix(tmp_path, redis_url, names, seed):
    figures = run_matrix(tmp_path, redis_url, names, seed)
    assert figures["lost"] == 0 and figures["duplicated"] == 0
    assert figures["archived"] == figures["published"] - figures["malformed"]
    if len(names) == 1:  # alone, the source must give up on the silent server before it speaks
        assert figures["stall_reconnects"] == 1
