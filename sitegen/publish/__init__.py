"""`make publish`: output/ to where readers get it, driven by the build's manifest.

    publish_site(settings)   one publish to AFA_PUBLISH_TARGET: s3://BUCKET/PREFIX goes to
                             object storage (objects.py), anything else is an rsync
                             destination (rsync.py)
    after_build(settings)    the rebuild loop's hook: publish when a target is configured, and
                             say so instead of raising when it fails (the next rebuild retries)

Object storage: only what the target does not hold goes up (the journal in state.py against
the manifest's sha256 of every file), new and changed files before the pages that link to them,
deletes last (plan.py), each object with its Content-Type and Cache-Control (headers.py).
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.errors import AfaError
from core.redisconn import redact
from core.settings import Settings

from . import headers
from .gzipped import refresh_mirror
from .objects import Bucket, list_keys, open_store, run_plan
from .plan import PublishError, make_plan, site_files
from .rsync import run_rsync
from .state import State, state_path

__all__ = ["PublishError", "PublishReport", "after_build", "publish_site"]


@dataclass
class PublishReport:
    target: str
    uploaded: int = 0
    bytes: int = 0
    deleted: int = 0
    unchanged: int = 0
    listed: bool = False  # no journal: the target was listed and everything sent again
    seconds: float = 0.0

    def summary(self) -> str:
        listed = " (no journal: listed the target first)" if self.listed else ""
        return (
            f"published to {self.target}: {self.uploaded} files sent ({self.bytes:,} bytes), "
            f"{self.deleted} deleted, {self.unchanged} unchanged in {self.seconds:.2f} s{listed}"
        )


def profile(settings: Settings) -> str:
    """What the objects at the target depend on besides their source files."""
    rules = repr((headers.TYPES, headers.PAGE, headers.IMMUTABLE, headers.SEARCH))
    return "|".join((settings.publish_target, settings.s3_endpoint, f"gzip={settings.publish_gzip}",
                     hashlib.sha256(rules.encode()).hexdigest()[:12]))  # fmt: skip


def publish_site(
    settings: Settings, full: bool = False, log: Callable[[str], None] = lambda line: None
) -> PublishReport:
    """Publish output/ to AFA_PUBLISH_TARGET. `full` ignores the journal and lists the target."""
    target = settings.publish_target
    if not target:
        raise PublishError("no publish target: set AFA_PUBLISH_TARGET (s3://BUCKET/PREFIX or an "
                           "rsync destination)")  # fmt: skip
    output = Path(settings.output_dir)
    started = time.perf_counter()
    with one_at_a_time(Path(settings.var_dir)):
        files = site_files(output)
        report = publish_to(settings, output, files, full, log)
    report.seconds = time.perf_counter() - started
    return report


class one_at_a_time:  # noqa: N801  (a context manager)
    """One publish at a time per var/ (the schedulers of several events share one output/)."""

    def __init__(self, var_dir: Path) -> None:
        self.path = var_dir / "publish" / ".lock"

    def __enter__(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(self.path, "a")  # noqa: SIM115
        fcntl.flock(self.file, fcntl.LOCK_EX)

    def __exit__(self, *exc) -> None:
        self.file.close()  # closing releases the lock


def publish_to(
    settings: Settings, output: Path, files: dict[str, str], full: bool, log: Callable[[str], None]
) -> PublishReport:
    target = settings.publish_target
    if not target.startswith("s3://"):
        mirror = None
        if settings.publish_gzip:
            journal = state_path(settings.var_dir, target)
            mirror = journal.with_name(journal.stem + ".gz-mirror")
            refresh_mirror(output, files, mirror)
        done = run_rsync(output, target, mirror)
        return PublishReport(redact(target), done.files, done.bytes, done.deleted,
                             done.total - done.files)  # fmt: skip
    return publish_objects(settings, output, files, full, log)


def publish_objects(
    settings: Settings, output: Path, files: dict[str, str], full: bool, log: Callable[[str], None]
) -> PublishReport:
    target = settings.publish_target
    store = open_store(settings, Bucket.parse(target))
    path = state_path(settings.var_dir, profile(settings))
    state = None if full else State.load(path, profile(settings))
    report = PublishReport(target, listed=state is None)
    if state is None:
        state = State(path, profile(settings), list_keys(store))
    plan = make_plan(files, state.objects, lambda key: read_page(output, key))
    log(f"publishing to {target}: {len(plan.uploads)} to send ({len(plan.new)} new), "
        f"{len(plan.deletes)} to delete")  # fmt: skip
    sent = asyncio.run(run_plan(store, output, files, plan, state, compress=settings.publish_gzip,
                                concurrency=settings.publish_concurrency))  # fmt: skip
    report.uploaded, report.bytes, report.deleted = sent.files, sent.bytes, sent.deleted
    report.unchanged = len(files) - sent.files
    return report


def read_page(output: Path, key: str) -> bytes:
    try:
        return (output / key).read_bytes()
    except FileNotFoundError:
        raise PublishError(
            f"{output}/{key} is gone: a build ran meanwhile; publish again"
        ) from None


def after_build(settings: Settings, log: Callable[[str], None]) -> None:
    """Publish after a rebuild when a target is configured; a failure is logged, not raised."""
    if not settings.publish_target:
        return
    try:
        log(publish_site(settings).summary())
    except (AfaError, OSError) as exc:  # the next rebuild publishes everything still missing
        log(f"publish failed (the next rebuild tries again): {exc}")
