"""The large downloads' files in the build cache, linked into output/ (Fragments.keep_file).

Each download has two kept files, slot 0 and slot 1. output/ links the one made last; the other
holds the version before it and nothing links it. A session's rebuild rewrites that other file
in place from where its members first differ from the new ones (a session changes the last one
or two), then output/ is pointed at it: the 82 MB of the event's posts.jsonl.gz and the 16 MB of
each touched talk's posts.jsonl are neither read nor written again, and the replaced version
stays whole for anyone still reading it. Each member's entry keeps the SHA-256 state after it
(resumable_hash.py), so the new file's hash for the manifest starts there too.

A member's bytes are read from the file output/ links when it has them, else made again (the
build cache keeps no other copy). A first build writes both slots (the second is a copy of the
first: the next session then has a file to rewrite). A file is rewritten in place only when it
is as its record says and has no other link; otherwise the new file is a copy of the start of
the linked one, made anew.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import resumable_hash
from .writer import write_at

Entry = tuple[str, int, bytes | None]  # a member of a kept file: key, length, hash state after it


@dataclass(frozen=True)
class Slot:
    n: int
    path: Path
    made: int  # when it was made: output/ links the slot made last
    members: list[Entry]
    links: int  # the file's hard links: 1 when output/ no longer links it


@dataclass(frozen=True)
class Plan:
    """How to make a download's kept file: the first `start` members of `base` (in place when
    `in_place`, else copied from it), then `tail`, the bytes of the members keyed `keys`."""

    base: Slot | None
    start: int
    in_place: bool
    keys: list[str]
    tail: list[bytes]
    twin: bool  # write the other slot too (a first build)


@dataclass(frozen=True)
class Choice:
    slot: int  # the slot to make
    base: Slot | None  # the file to start from
    start: int  # how many of base's first members to keep
    in_place: bool  # base is the slot being made (rewritten in place), else copied from
    linked: Slot | None  # the slot output/ links: the new file's members up to `known` are its
    known: int


def choose(slots: dict[int, Slot], keys: list[str]) -> Choice:
    """How to make a download of members `keys` from its kept files (a dict by slot)."""
    linked = max(slots.values(), key=lambda s: s.made, default=None)
    slot = 1 - linked.n if linked is not None else 0
    known = _same(linked, keys)
    spare = slots.get(slot)
    if spare is not None and spare.links == 1:
        return Choice(slot, spare, _same(spare, keys), True, linked, known)
    return Choice(slot, linked, known, False, linked, known)


def _same(slot: Slot | None, keys: list[str]) -> int:
    """How many of the first members of `slot` are those keyed `keys`."""
    n = 0
    if slot is not None:
        limit = min(len(slot.members), len(keys))
        while n < limit and slot.members[n][0] == keys[n]:
            n += 1
    return n


def members_of(slot: Slot, lo: int, hi: int) -> list[bytes] | None:
    """The bytes of members lo+1..hi of a kept file, in one read; None if it cannot be read."""
    if hi <= lo:
        return []
    sizes = [size for _, size, _ in slot.members[:hi]]
    at, length = sum(sizes[:lo]), sum(sizes[lo:])
    try:
        with open(slot.path, "rb") as f:
            data = os.pread(f.fileno(), length, at)
    except OSError:
        return None
    if len(data) != length:
        return None
    found = []
    for size in sizes[lo:]:
        found.append(data[:size])
        data = data[size:]
    return found


def make(path: Path, plan: Plan, twin: Path | None) -> tuple[str | None, list[Entry]]:
    """Make the kept file at path (and its twin); its sha256 when the start's state is known
    (else None: the writer hashes the file) and the entries of its members."""
    kept = plan.base.members[: plan.start] if plan.base is not None else []
    prefix = sum(size for _, size, _ in kept)
    if plan.in_place:
        if not write_at(path, prefix, plan.tail):
            raise OSError(
                f"{path}: cannot rewrite it from the {prefix} bytes its record vouches for"
            )
    else:
        _new_file(path, plan.base.path if kept else None, prefix, plan.tail)
    if twin is not None:
        _new_file(twin, None, 0, plan.tail)
    state = kept[-1][2] if kept else None
    resumes = resumable_hash.available() and (not kept or resumable_hash.valid(state))
    sha = resumable_hash.Sha256(state) if resumes else None
    entries = list(kept)
    for key, part in zip(plan.keys, plan.tail, strict=True):
        if sha is not None:
            sha.update(part)
        entries.append((key, len(part), sha.state() if sha is not None else None))
    return (sha.hexdigest() if sha is not None else None), entries


def _new_file(path: Path, source: Path | None, prefix: int, tail: list[bytes]) -> None:
    """A new file at path (atomically): the first `prefix` bytes of `source`, then tail."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".kept.")
    try:
        if prefix:
            with open(source, "rb") as f:
                _copy_range(f.fileno(), fd, prefix)
        for part in tail:
            view = memoryview(part)
            while view:
                view = view[os.write(fd, view) :]
        os.close(fd)
        fd = -1
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        Path(tmp).unlink(missing_ok=True)
        raise


def _copy_range(source: int, target: int, size: int) -> None:
    """The first `size` bytes of file `source` onto the end of `target`, in the kernel."""
    left = size
    try:
        while left:
            done = os.copy_file_range(source, target, left, size - left)
            if not done:
                raise OSError("copy_file_range copied nothing")
            left -= done
    except OSError:  # not supported here: copy through user space
        os.lseek(source, size - left, os.SEEK_SET)
        with open(source, "rb", closefd=False) as f, open(target, "wb", closefd=False) as t:
            shutil.copyfileobj(_Limited(f, left), t)


class _Limited:
    def __init__(self, f, left: int) -> None:
        self.f, self.left = f, left

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        data = self.f.read(n)
        self.left -= len(data)
        return data
