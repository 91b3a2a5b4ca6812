"""A small real site to publish: the site benchmark's generated event (60 talks, 4 rooms, 3 days)
with a few hundred posts, built with its Pagefind index, and ways to change it as an event does."""

from __future__ import annotations

import itertools
import random
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.settings import Settings
from sitegen.build import BuildReport, build_site
from tests.bench import bench_site as bench

NOW = datetime(2026, 7, 1, tzinfo=UTC)
_buckets = itertools.count(1)


@dataclass
class Site:
    settings: Settings
    rng: random.Random
    seq: int = 0
    posts: int = 0

    @property
    def output(self) -> Path:
        return self.settings.output_dir

    def build(self) -> BuildReport:
        return build_site(self.settings, now=NOW)

    def add_session_posts(self, count: int = 40, day: int = 1, session: int = 2) -> None:
        """Posts written during one session, as the collector would have added them."""
        items = bench.make_items(count, self.rng, first=10_000 + self.posts, where=(day, session))
        self.seq = bench.save(self.settings.archive_path, items, self.seq)
        self.posts += count

    def rename_talk(self, old: str, new: str) -> None:
        """An organizer renames a talk's slug: its pages move, the old ones are removed."""
        schedule = self.settings.content_dir / bench.EVENT / "schedule.yaml"
        text = schedule.read_text()
        assert f"slug: {old}," in text
        schedule.write_text(text.replace(f"slug: {old},", f"slug: {new},"))


@pytest.fixture(scope="session")
def built_site(tmp_path_factory) -> Path:
    """The site, built once per session (its content, archive and output/)."""
    work = tmp_path_factory.mktemp("published") / "site"
    bench.write_content(work / "content")
    settings = bench.settings_for(work)
    bench.save(settings.archive_path, bench.make_items(300, random.Random(7)), 0)
    build_site(settings, now=NOW)
    return work


@pytest.fixture
def site(tmp_path: Path, built_site: Path) -> Site:
    """A copy of the built site for this test to change (times kept, so rebuilds stay small)."""
    work = tmp_path / "site"
    shutil.copytree(built_site, work, copy_function=shutil.copy2)
    return Site(bench.settings_for(work), random.Random(11), seq=300)


@pytest.fixture
def bucket() -> str:
    """A bucket name of this test's own on the session's S3 server."""
    return f"site-{next(_buckets)}-{random.randrange(10**6)}"
