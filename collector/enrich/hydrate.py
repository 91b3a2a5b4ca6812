"""Author hydration: a batch's Bluesky posts get their authors' handle, display name, avatar and
labels before the batch is committed, from a cache or from the AppView's getProfiles.

The rule: **a post is held back at most `bound` seconds** (2 s by default) from the moment its
batch reaches this step. Unknown authors are looked up in calls of 25, shared by every batch
waiting on them; when the answer is not back in time the post goes out with what is known (the
DID as its handle, or the handle an identity event taught), the author is remembered, and when
the profile arrives an `AuthorUpdate` follows through `late`: an `edit` on the live pages, or a
`retract` if the author turns out to be labelled `!no-unauthenticated`. A label already known
is applied before the commit, so such a post never reaches the live stream.

A batch that waited the whole bound in vain marks the AppView slow: later batches do not wait
(their posts go out at once, the edits follow) until an answer comes back within the bound
again, so a slow or dead AppView never throttles the source to one batch per bound.

Known profiles are served at once, even stale ones (older than the cache's TTL); a stale one
and one an identity or account event marked are looked up again in the background, and an
`AuthorUpdate` follows if the answer differs. An author the AppView does not return, or a call
that fails, is not waited for again for `retry_seconds`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from core.items import Item, format_time

from ..normalise import AuthorUpdate, Change, ProfileHint
from .appview import PER_CALL, AppView, AppViewError
from .profiles import Profile, ProfileCache, lacks_profile, parse_profiles, with_profile

log = logging.getLogger("collector.enrich")

Late = Callable[[list[Change], list[dict[str, Any]]], Awaitable[None]]


class Hydrator:
    def __init__(
        self, appview: AppView, cache: ProfileCache, late: Late, *, bound: float = 2.0,
        retry_seconds: float = 30.0, stopping: asyncio.Event | None = None,
    ) -> None:  # fmt: skip
        self.appview, self.cache, self.late = appview, cache, late
        self.bound, self.retry_seconds, self.stopping = bound, retry_seconds, stopping
        self.inflight: dict[str, asyncio.Task] = {}
        self.not_before: dict[str, float] = {}  # did -> when it may be looked up (waited for) again
        self.published_bare: set[str] = set()  # authors of posts that went out without a profile
        self.answers: list[dict[str, Any]] = []  # getProfiles answers not yet recorded
        self.tasks: set[asyncio.Task] = set()
        self.waited = 0  # batches that waited, and posts that went out bare: for the logs
        self.bare = 0
        self.slow = False  # the last wait ran out: do not wait until an answer is quick again

    # -- before the commit --------------------------------------------------------------------

    async def enrich(self, changes: Iterable[Change]) -> list[Change]:
        """The batch with every author the cache knows (or learns within the bound) filled in,
        the profile hints consumed, and an AuthorUpdate ahead of the batch for each author whose
        profile is new or changed (their earlier posts take it)."""
        changes, started = list(changes), time.monotonic()
        learned = self._learn_from_posts(changes)
        self._consume_hints(changes)
        wanted: set[str] = set()
        for item in (c for c in changes if isinstance(c, Item) and lacks_profile(c)):
            did = item.author.id
            if self.cache.get(did) is None:
                wanted.add(did)
            elif not self.cache.fresh(did, time.time()):
                self._look_up_later([did])
        waiting = self._look_up(wanted)
        if waiting and not self.slow:
            self.waited += 1
            left = self.bound - (time.monotonic() - started)
            _done, late = await asyncio.wait(waiting, timeout=max(left, 0.0))
            if late:
                self.slow = True
                log.warning("AppView %s answered no getProfiles within %g s: posts go out "
                            "first, names follow", self.appview.base, self.bound)  # fmt: skip
        updates = [AuthorUpdate(self.cache.get(d).author()) for d in learned | wanted
                   if self.cache.get(d) is not None]  # fmt: skip
        return updates + [c for c in changes if not isinstance(c, ProfileHint)]

    def apply_cached(self, changes: list[Change]) -> list[Change]:
        """Fill in what the cache knows now (called under the commit lock, so a profile that
        arrived while the batch waited for the lock is not missed); note what goes out bare."""
        out: list[Change] = []
        for change in changes:
            if isinstance(change, Item) and lacks_profile(change):
                profile = self.cache.get(change.author.id)
                if profile is None:
                    self.published_bare.add(change.author.id)
                    self.bare += 1
                else:
                    change = with_profile(change, profile)
            out.append(change)
        return out

    def take_answers(self) -> list[dict[str, Any]]:
        """The getProfiles answers received since the last call, as recording lines."""
        answers, self.answers = self.answers, []
        return answers

    def _learn_from_posts(self, changes: list[Change]) -> set[str]:
        """A searchPosts postView carries its author's profile: learn it like an answer."""
        learned = set()
        for item in (c for c in changes if isinstance(c, Item) and c.source == "bluesky"):
            author = item.author
            if lacks_profile(item) or not author.handle:
                continue
            labels = ("!no-unauthenticated",) if author.hidden else ()
            profile = Profile(author.id, author.handle, author.name, author.avatar, labels)
            if self.cache.put(profile, time.time()) != profile:
                learned.add(author.id)
        return learned

    def _consume_hints(self, changes: list[Change]) -> None:
        """Identity and account events of authors we know: look them up again, soon."""
        hinted = {c.author_id for c in changes if isinstance(c, ProfileHint)}
        known = {did for did in hinted if self.cache.get(did) is not None}
        for did in known:
            self.cache.expire(did)
            self.not_before.pop(did, None)
        self._look_up_later(list(known))

    # -- looking up ---------------------------------------------------------------------------

    def _look_up(self, dids: set[str]) -> list[asyncio.Task]:
        """Tasks answering for `dids`: in flight already, or started now (25 a call)."""
        now = time.monotonic()
        tasks = {self.inflight[d] for d in dids if d in self.inflight}
        fresh = sorted(
            d for d in dids if d not in self.inflight and self.not_before.get(d, 0) <= now
        )
        for start in range(0, len(fresh), PER_CALL):
            tasks.add(self._start(fresh[start : start + PER_CALL]))
        return list(tasks)

    def _look_up_later(self, dids: list[str]) -> None:
        self._look_up({d for d in dids if d not in self.inflight})

    def _start(self, dids: list[str]) -> asyncio.Task:
        task = asyncio.create_task(self._fetch(dids), name=f"getProfiles:{len(dids)}")
        for did in dids:
            self.inflight[did] = task
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def _fetch(self, dids: list[str]) -> None:
        """One getProfiles call; its answer goes into the cache, and the authors whose posts
        already went out bare (or whose profile changed) get their AuthorUpdate."""
        started = time.monotonic()
        try:
            answer = await self.appview.profiles(dids, self.stopping)
            profiles, broken = parse_profiles(answer)
        except Exception as exc:  # noqa: BLE001 - a failed lookup leaves posts as they are
            if not isinstance(exc, AppViewError) or str(exc) != "stopping":
                log.warning("getProfiles for %d authors failed: %s", len(dids), exc)
            self._give_up(dids)
            return
        finally:
            for did in dids:
                self.inflight.pop(did, None)
        if self.slow and time.monotonic() - started < self.bound:
            self.slow = False  # quick again: batches wait for their profiles again
        for reason in broken:
            log.warning("Could not process a getProfiles profile: %s", reason)
        now, late = time.time(), []
        for profile in profiles:
            old = self.cache.put(profile, now)
            if profile.did in self.published_bare or (old is not None and old != profile):
                late.append(profile)  # posts went out without it, or with an older one
        self._give_up([d for d in dids if self.cache.get(d) is None])
        self.answers.append(answer_line(dids, answer))
        self.published_bare -= {p.did for p in profiles}
        if late:
            await self.late([AuthorUpdate(p.author()) for p in late], self.take_answers())

    def _give_up(self, dids: list[str]) -> None:
        until = time.monotonic() + self.retry_seconds
        for did in dids:
            self.not_before[did] = until

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


def answer_line(dids: list[str], answer: dict) -> dict[str, Any]:
    """A getProfiles answer as a delivery of the recording (afa-recording/1)."""
    return {"at": format_time(datetime.now(UTC)), "source": "bluesky", "origin": "appview",
            "type": "getProfiles", "request": {"actors": dids}, "payload": answer}  # fmt: skip
