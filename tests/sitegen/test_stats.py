"""sitegen/stats.py and pages.activity: the counts made at C speed (or by bisection) are the ones
a plain loop makes, ties and order included."""

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

from sitegen import charts, pages, stats
from sitegen.posts import Post, micros

START = datetime(2026, 10, 24, 7, 0, tzinfo=UTC)
URLS = ["https://a.example/1", "https://a.example/2", "http://b.example/", "ftp://c.example/",
        "javascript:x", "https://d.example/" + "x" * 100]  # fmt: skip


def posts(n: int, seed: int) -> list[Post]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        links = tuple(rng.choice(URLS) for _ in range(rng.choice((0, 0, 1, 1, 2, 3))))
        t = micros(START + timedelta(seconds=rng.randrange(4 * 3600)))
        rows.append(
            Post((i, i, 1, t, None, f"a{i % 9}", False, False, links, (), 0, 0, True, None))
        )
    return sorted(rows, key=lambda p: (p[3], p[0]))


def reference_top_links(items, n=10):
    counts = Counter()
    for item in items:
        for url in dict.fromkeys(item.links):
            if url.startswith(("http://", "https://")):
                counts[url] += 1
    return [(url, count) for url, count in counts.most_common(n)]


def test_top_links_count_each_post_once_per_url_and_keep_first_seen_order_for_ties():
    for seed in range(20):
        items = posts(200, seed)
        for n in (1, 3, 10):
            assert [(link.url, link.count) for link in stats.top_links(items, n)] == (
                reference_top_links(items, n)
            )


def test_activity_by_bisection_counts_what_charts_activity_counts():
    items = posts(3000, 7)
    times = [p.created_at for p in items]
    for start, end, step in [
        (START, START + timedelta(hours=4), timedelta(minutes=5)),
        (
            START + timedelta(minutes=17),
            START + timedelta(hours=2, seconds=1),
            timedelta(minutes=1),
        ),
        (START + timedelta(hours=5), START + timedelta(hours=6), timedelta(minutes=5)),
        (START + timedelta(hours=1), START + timedelta(hours=1), timedelta(minutes=5)),
    ]:
        assert pages.activity(items, start, end, step) == charts.activity(times, start, end, step)
