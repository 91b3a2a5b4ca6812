"""Enrichment: after parsing and before publishing, the collector fills in what payloads lack.

    hydrate.py   authors: a Bluesky post's handle, name, avatar and labels (AppView getProfiles)
    profiles.py  the profile model, its parser and the TTL cache
    appview.py   the public AppView client (getProfiles, getPosts), its rate limit in one place
    counts.py    reaction counts, and deletes, asked of each source for posts already archived
    refresh.py   when counts are refreshed: each session's end, hours and days later, on demand

Its answers are deliveries like any other: `collector run --record` writes them into the
recording, and a replay applies them in the same order, so a replay is faithful.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import httpx

from .appview import DEFAULT, AppView
from .hydrate import Hydrator, Late
from .profiles import ProfileCache

HYDRATE_SECONDS = 2.0  # the longest a post waits for its author's profile
PROFILE_TTL_SECONDS = 3600.0  # a profile is looked up again after this (served meanwhile)


class Enrichment:
    """One collector's enrichment: one profile cache, one client per AppView, one Hydrator per
    source that needs one (Bluesky)."""

    def __init__(self, http: httpx.AsyncClient, stopping: asyncio.Event) -> None:
        self.http, self.stopping = http, stopping
        self.cache = ProfileCache(PROFILE_TTL_SECONDS)
        self.appviews: dict[str, AppView] = {}
        self.hydrators: list[Hydrator] = []

    def appview(self, base: str | None) -> AppView:
        base = (base or DEFAULT).rstrip("/")
        if base not in self.appviews:
            self.appviews[base] = AppView(self.http, base)
        return self.appviews[base]

    def hydrator(self, config: Mapping[str, Any], late: Late) -> Hydrator | None:
        """The Hydrator for a source's entry in event.yaml, None when its posts need none."""
        if config.get("type") != "bluesky":
            return None
        ttl = config.get("profile_ttl_seconds")
        if ttl is not None:
            self.cache.ttl = float(ttl)
        hydrator = Hydrator(
            self.appview(config.get("appview")), self.cache, late,
            bound=float(config.get("hydrate_seconds") or HYDRATE_SECONDS), stopping=self.stopping,
        )  # fmt: skip
        self.hydrators.append(hydrator)
        return hydrator

    async def close(self) -> None:
        for hydrator in self.hydrators:
            await hydrator.close()
