"""The public Bluesky AppView, unauthenticated: `app.bsky.actor.getProfiles` (authors) and
`app.bsky.feed.getPosts` (counts, and whether a post still exists), 25 per call each.

Network only; the answers are parsed by the callers (profiles.py, counts.py). One `AppView` per
base URL is shared by everything that calls it, so its rate limit is kept in one place: a 429
closes the gate until Retry-After (else RateLimit-Reset, epoch seconds), and a
`RateLimit-Remaining: 0` closes it until the reset (SOURCES.md §2, the atproto rate limiter).
"""

from __future__ import annotations

import asyncio
import logging
import time

import httpx

from ..sources.base import rate_limit_wait, spent

log = logging.getLogger("collector.enrich")
DEFAULT = "https://public.api.bsky.app"
PER_CALL = 25  # both lexicons: maxLength 25
MAX_WAIT = 900.0


class AppViewError(Exception):
    """A call that failed: network, 5xx, an XRPC error or a body that is not JSON."""


class AppView:
    def __init__(self, http: httpx.AsyncClient, base: str = DEFAULT, timeout: float = 10.0) -> None:
        self.http, self.base, self.timeout = http, base.rstrip("/"), timeout
        self.closed_until = 0.0  # time.time() before which a call would be refused
        self.calls = 0

    async def profiles(self, dids: list[str], stopping: asyncio.Event | None = None) -> dict:
        """getProfiles for up to 25 DIDs (or handles): `{"profiles": [profileViewDetailed]}`."""
        return await self.get("app.bsky.actor.getProfiles", "actors", dids[:PER_CALL], stopping)

    async def posts(self, uris: list[str], stopping: asyncio.Event | None = None) -> dict:
        """getPosts for up to 25 at-uris: `{"posts": [postView]}`, the gone ones left out."""
        return await self.get("app.bsky.feed.getPosts", "uris", uris[:PER_CALL], stopping)

    async def get(
        self, method: str, name: str, values: list[str], stopping: asyncio.Event | None
    ) -> dict:
        """One call, after the rate-limit gate opens; a 429 closes it and the call is tried
        again once it opens (never past `stopping`)."""
        while True:
            if not await self._wait_gate(stopping):
                raise AppViewError("stopping")
            self.calls += 1
            try:
                response = await self.http.get(
                    f"{self.base}/xrpc/{method}", params=[(name, v) for v in values],
                    timeout=self.timeout,
                )  # fmt: skip
            except httpx.HTTPError as exc:
                raise AppViewError(f"{method}: {type(exc).__name__}: {exc}") from exc
            self._note_limits(response)
            if response.status_code != 429:
                return _answer(method, response)
            log.warning("AppView %s: rate limited for %.0f s", self.base, self.wait_seconds())

    def wait_seconds(self) -> float:
        return max(self.closed_until - time.time(), 0.0)

    async def _wait_gate(self, stopping: asyncio.Event | None) -> bool:
        while (wait := self.wait_seconds()) > 0:
            if stopping is None:
                await asyncio.sleep(wait)
                continue
            try:
                await asyncio.wait_for(stopping.wait(), timeout=wait)
                return False
            except TimeoutError:
                pass
        return not (stopping is not None and stopping.is_set())

    def _note_limits(self, response: httpx.Response) -> None:
        """A 429 closes the gate until it says (5 s if it does not); so does a last call."""
        if response.status_code == 429 or spent(response.headers):
            wait = rate_limit_wait(response.headers, MAX_WAIT)
            if wait is None and response.status_code == 429:
                wait = 5.0
            if wait:
                self.closed_until = max(self.closed_until, time.time() + wait)


def _answer(method: str, response: httpx.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        raise AppViewError(f"{method}: HTTP {response.status_code}, not JSON") from None
    if response.status_code != 200 or not isinstance(body, dict):
        error = body.get("error") if isinstance(body, dict) else None
        raise AppViewError(f"{method}: HTTP {response.status_code} {error or ''}".rstrip())
    return body
