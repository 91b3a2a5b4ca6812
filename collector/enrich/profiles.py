"""Authors' profiles: parsed from the Bluesky AppView's answers, kept in a cache with a TTL, and
laid over posts whose source gave only an id (a Jetstream commit carries nothing but a DID).

Pure but for the cache's clock, which is passed in (wall time live, the recording's in a replay).
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from dataclasses import dataclass

from core.errors import ParseError
from core.items import Author, Item

from ..normalise import AuthorUpdate, clean_author
from ..sanitise import safe_url
from ..sources import bluesky
from ..sources.base import parser

MAX_PROFILES = 100_000  # the cache forgets the least recently used beyond this


@dataclass(frozen=True)
class Profile:
    """What pages need of an author, from a profileViewDetailed (or a postView's author)."""

    did: str
    handle: str
    name: str
    avatar: str
    labels: tuple[str, ...] = ()

    @property
    def hidden(self) -> bool:
        """The author asked apps not to show their posts to logged-out viewers."""
        return bluesky.HIDE_LABEL in self.labels

    def author(self) -> Author:
        url = f"https://bsky.app/profile/{self.handle or self.did}"
        return clean_author(Author(id=self.did, handle=self.handle, name=self.name, url=url,
                                   avatar=self.avatar, hidden=self.hidden))  # fmt: skip


@parser  # a profile's surprise is one broken profile (parse_profiles), never enrichment's end
def parse_profile(view: object) -> Profile:
    """One profileViewDetailed (app.bsky.actor.defs): did and handle required, the rest optional."""
    if not isinstance(view, dict):
        raise ParseError("profile is not an object")
    did, handle = view.get("did"), view.get("handle")
    if not isinstance(did, str) or not did.startswith("did:") or not isinstance(handle, str):
        raise ParseError("profile has no did or handle")
    labels = tuple(
        str(label["val"])
        for label in view.get("labels") or []
        if isinstance(label, dict) and isinstance(label.get("val"), str)
    )
    name = view.get("displayName")
    return Profile(did=did, handle="" if handle == "handle.invalid" else handle,
                   name=name.strip() if isinstance(name, str) else "",
                   avatar=safe_url(view.get("avatar")) or "", labels=labels)  # fmt: skip


def parse_profiles(answer: object) -> tuple[list[Profile], list[str]]:
    """A getProfiles answer `{"profiles": [...]}` → (profiles, reasons the broken ones failed)."""
    if not isinstance(answer, dict) or not isinstance(answer.get("profiles"), list):
        raise ParseError("getProfiles answer has no profiles list")
    profiles, broken = [], []
    for view in answer["profiles"]:
        try:
            profiles.append(parse_profile(view))
        except ParseError as exc:
            broken.append(str(exc))
    return profiles, broken


def with_profile(item: Item, profile: Profile) -> Item:
    """The item with its author as the profile tells it (the item's own fields otherwise)."""
    return with_author(item, profile.author())


def with_author(item: Item, author: Author) -> Item:
    return dataclasses.replace(item, author=dataclasses.replace(
        item.author, handle=author.handle or item.author.handle,
        name=author.name or item.author.name, url=author.url,
        avatar=author.avatar or item.author.avatar, hidden=author.hidden,
    ))  # fmt: skip


def lacks_profile(item: Item) -> bool:
    """A Bluesky post whose source gave no display name or avatar (a Jetstream commit)."""
    return item.source == bluesky.SOURCE and not (item.author.name or item.author.avatar)


class ProfileCache:
    """Profiles by DID, each fresh for `ttl` seconds after it was learned; stale ones are still
    served (and looked up again), so a post never waits for a profile already known."""

    def __init__(self, ttl: float = 3600.0, size: int = MAX_PROFILES) -> None:
        self.ttl, self.size = ttl, size
        self._entries: OrderedDict[str, tuple[Profile, float]] = OrderedDict()

    def get(self, did: str) -> Profile | None:
        found = self._entries.get(did)
        if found is None:
            return None
        self._entries.move_to_end(did)
        return found[0]

    def fresh(self, did: str, now: float) -> bool:
        found = self._entries.get(did)
        return found is not None and now - found[1] < self.ttl

    def put(self, profile: Profile, now: float) -> Profile | None:
        """Learn a profile; returns the one it replaces (None when it is new)."""
        old = self._entries.get(profile.did)
        self._entries[profile.did] = (profile, now)
        self._entries.move_to_end(profile.did)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return old[0] if old else None

    def expire(self, did: str) -> None:
        """Mark a profile stale (an identity or account event said it changed)."""
        found = self._entries.get(did)
        if found is not None:
            self._entries[did] = (found[0], float("-inf"))


class KnownAuthors:
    """A replay's hydration: the recording's getProfiles answers (AuthorUpdates), in the order
    the live collector used them, fill in the posts after them, as the live cache did."""

    def __init__(self) -> None:
        self.authors: dict[str, Author] = {}

    def apply(self, changes: list) -> list:
        out = []
        for change in changes:
            if isinstance(change, AuthorUpdate):
                self.authors[change.author.id] = change.author
            elif isinstance(change, Item) and lacks_profile(change):
                known = self.authors.get(change.author.id)
                change = with_author(change, known) if known is not None else change
            out.append(change)
        return out
