"""Write files under output/ and nowhere else, once each, atomically, and only when they change.

The writer keeps `output/manifest.json`: every file of the build with its sha256, the files this
build changed, and the files it removed (written by an earlier build, not by this one), so a sync
to a CDN or object store can upload only what changed.
"""

from __future__ import annotations

import filecmp
import hashlib
import json
import mmap
import os
import shutil
import stat
import tempfile
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import AfaError

MANIFEST = "manifest.json"
PENDING = 32  # files handed to the writer's thread and not yet taken in ...
PENDING_BYTES = 64 << 20  # ... and the bytes they hold (a full build's talk downloads: 12 MB each)


class WriterError(AfaError):
    """A path outside output/, or a second write of one path in one build."""


def _nothing() -> None:
    return None


@dataclass(frozen=True)
class KeptFile:
    """A file's bytes as a file in the build cache (a large download the cache assembles from its
    last version, Fragments.keep_file): linked into output/ rather than read and written again.
    `make` writes it (in write_later's thread: file work only) and gives its sha256 when it knows
    it (None: the file is read to hash it); `made` is told in the build's thread once it is made
    and linked."""

    path: Path
    make: Callable[[], str | None] = _nothing
    made: Callable[[], None] = _nothing
    held: int = 0  # the bytes `make` holds in memory until it runs


Done = Callable[[bool], None]  # told whether a file written later changed


@dataclass
class Writer:
    root: Path
    files: dict[str, str] = field(default_factory=dict)  # relpath -> sha256
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root = Path(self.root).resolve()
        self._folders: dict[str, str] = {}  # folder relative to root -> its real path
        self._prefix = os.path.join(str(self.root), "")  # what a path under root starts with
        self._pool: ThreadPoolExecutor | None = None
        self._later: deque[tuple[Future, str, bytes | KeptFile, int, Done]] = deque()
        self._held = 0  # the bytes the waiting files hold

    def target(self, relpath: str) -> Path:
        """output/relpath, or WriterError when relpath would leave output/."""
        return Path(self._located(relpath)[0])

    def _located(self, relpath: str) -> tuple[str, str]:
        """(output/relpath resolved, that path relative to output/), or WriterError. Each folder
        is resolved once per build (a build names thousands of files in as many folders): only
        the file's own name is looked at each time, and followed when it is a symlink. Plain
        string work: a build after a session names every file of the site, kept or not."""
        parts = [p for p in relpath.split("/") if p not in ("", ".")]
        if not parts or relpath.startswith("/") or ".." in parts or "\\" in relpath:
            raise WriterError(f"refusing to write outside {self.root}: {relpath!r}")
        path = os.path.join(self._folder("/".join(parts[:-1])), parts[-1])
        if os.path.islink(path):
            path = os.path.realpath(path)
        if not path.startswith(self._prefix):
            raise WriterError(f"refusing to write outside {self.root}: {relpath!r}")
        return path, path[len(self._prefix) :]

    def _folder(self, rel: str) -> str:
        """The real path of a folder under root: its parent's and its own name, followed when
        that is a symlink (one lstat per new folder, instead of one per path component)."""
        found = self._folders.get(rel)
        if found is None:
            if not rel:
                found = str(self.root)
            else:
                parent, _, name = rel.rpartition("/")
                found = os.path.join(self._folder(parent), name)
                if os.path.islink(found):
                    found = os.path.realpath(found)
            self._folders[rel] = found
        return found

    def write_file(self, relpath: str, content: str | bytes | KeptFile) -> bool:
        """Write one file; True when its bytes changed. Each path once per build."""
        changed: list[bool] = []
        self.write_later(relpath, content, changed.append)
        self.settle()
        return changed[0]

    def write_later(self, relpath: str, content: str | bytes | KeptFile, done: Done) -> None:
        """write_file in the writer's thread, while the build's thread renders the next pages:
        hashing, writing and freeing a file's last version (a 100 MB download, or a page) is
        file work that leaves the other core to rendering. The path is checked and claimed
        here; settle() waits for the files and tells each `done`, in the build's thread. At most
        PENDING files wait, so a full build never holds more than a few pages' bytes."""
        path, key = self._checked(relpath)
        self.files[key] = ""  # claimed: a second write of the path in this build is refused
        if isinstance(content, str):
            content = content.encode("utf-8")
        held = content.held if isinstance(content, KeptFile) else len(content)
        self._drain(PENDING - 1, PENDING_BYTES - held)
        self._held += held
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="afa-writer")
        job = _link if isinstance(content, KeptFile) else _write
        self._later.append((self._pool.submit(job, path, content), key, content, held, done))

    def abandon(self) -> None:
        """Wait for the files write_later is writing, and forget them (the build failed)."""
        later, self._later, self._held = self._later, deque(), 0
        for future, *_ in later:
            future.cancel()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def settle(self) -> None:
        """Wait for every file write_later is writing; raise the first failure, after all end."""
        try:
            self._drain(0)
        finally:
            self.abandon()

    def _drain(self, limit: int, held: int | None = None) -> None:
        """Take the oldest written files in, until at most `limit` wait (holding at most `held`
        bytes)."""
        while len(self._later) > limit or (held is not None and self._later and self._held > held):
            future, key, content, held_by_it, done = self._later[0]
            try:
                sha, changed = future.result()
            except BaseException:
                self.abandon()
                raise
            self._later.popleft()
            self._held -= held_by_it
            self.files[key] = sha
            if changed:
                self.changed.append(key)
            if isinstance(content, KeptFile):
                content.made()
            done(changed)

    def _checked(self, relpath: str) -> tuple[str, str]:
        path, key = self._located(relpath)
        if any(part.startswith(".") for part in key.split("/")):
            raise WriterError(f"refusing to write a hidden path under {self.root}: {relpath!r}")
        if key in self.files or key == MANIFEST:
            raise WriterError(f"{key} is written twice in one build")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return path, key

    def keep(self, relpath: str, sha: str, stamp: tuple[int, int]) -> bool:
        """Count a file an earlier build wrote as written by this one, without rendering it again,
        when it is still there as that build left it (same size and mtime); False otherwise.
        Nothing is written, so a plain path is not resolved folder by folder (a session's
        rebuild keeps thousands of files): one lstat, and a symlink is never kept (rendering it
        again goes through write_file's checks)."""
        parts = relpath.split("/")
        if relpath.startswith("/") or "\\" in relpath or any(p in ("", ".", "..") for p in parts):
            raise WriterError(f"refusing to keep a path outside {self.root}: {relpath!r}")
        if relpath in self.files or relpath == MANIFEST:
            raise WriterError(f"{relpath} is written twice in one build")
        try:
            st = os.lstat(self._prefix + relpath)
        except OSError:
            return False
        if stat.S_ISLNK(st.st_mode) or (st.st_size, st.st_mtime_ns) != tuple(stamp):
            return False
        key = relpath
        self.files[key] = sha
        return True

    def write_manifest(self) -> None:
        """Remove files an earlier build wrote and this one did not, then write the manifest."""
        self.settle()
        previous = self.read_manifest().get("files", {})
        for key in sorted(set(previous) - set(self.files)):
            path = self.target(key)
            if path.is_file():
                path.unlink()
            self.removed.append(key)
        manifest = {
            "files": dict(sorted(self.files.items())),
            "changed": sorted(self.changed),
            "removed": self.removed,
        }
        text = json.dumps(manifest, indent=1, ensure_ascii=False) + "\n"
        _replace(self.root / MANIFEST, text.encode("utf-8"))

    def read_manifest(self) -> dict:
        try:
            return json.loads((self.root / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}


def _write(path: str, data: bytes) -> tuple[str, bool]:
    """Write bytes at path unless they are there already: (their sha256, whether written)."""
    sha = hashlib.sha256(data).hexdigest()
    if _same_bytes(Path(path), data):
        return sha, False
    _replace(Path(path), data)
    return sha, True


def _link(path: str, kept: KeptFile) -> tuple[str, bool]:
    """Make the kept file, then link it at path (a copy across file systems): (its sha256,
    whether path's bytes changed)."""
    sha = kept.make()
    source = kept.path
    sha = sha or file_sha256(source)
    if os.path.exists(path) and (
        os.path.samefile(path, source)
        or (os.path.getsize(path) == os.path.getsize(source) and filecmp.cmp(path, source, False))
    ):
        return sha, False
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=f".{os.path.basename(path)}.")
    os.close(fd)
    os.unlink(tmp)
    try:
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return sha, True


def file_sha256(path: Path) -> str:
    """The sha256 of a file, read through a memory map (no copy of a 100 MB download)."""
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            return hashlib.sha256(b"").hexdigest()
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as view:
            return hashlib.sha256(view).hexdigest()


def file_stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns)


def _same_bytes(path: Path, data: bytes) -> bool:
    """The file holds exactly `data` (a file of another size is not read: a page that grew)."""
    stamp = file_stamp(path)
    return (
        stamp is not None and stamp[0] == len(data) and path.is_file() and path.read_bytes() == data
    )


def write_at(path: Path, at: int, parts: list[bytes]) -> bool:
    """Write parts at offset `at` of a file at least that long, and end the file there (a file
    appended to, or rewritten from where it changed); False when the file is shorter than `at`
    or cannot be written (the caller then writes a new file, or gives up)."""
    try:
        with open(path, "r+b") as f:
            if os.fstat(f.fileno()).st_size < at:
                return False
            f.seek(at)
            for part in parts:
                f.write(part)
            f.truncate()
    except OSError:
        return False
    return True


def _replace(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same folder and os.replace: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
