"""What one build's steps share, in one object that build_site makes and passes to each step
that needs it: where the build cache lives, the code digest, and the whole posts decoded so far.

Nothing of a build is kept in module state: the rebuild loop lives on between builds, and a
second build (a test's fresh build beside an incremental one) must start from nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core.settings import Settings

from .cache import cache_dir, code_digest
from .posts import Store


@dataclass
class BuildContext:
    settings: Settings
    cache: Path  # var/cache/site/<output>-<digest>/: see cache.cache_dir
    code: str  # cache.code_digest(): sitegen's code, templates and static files
    store: Store = field(default_factory=lambda: Store(None))  # whole posts by row id

    @classmethod
    def for_settings(cls, settings: Settings) -> BuildContext:
        return cls(settings, cache_dir(settings), code_digest())
