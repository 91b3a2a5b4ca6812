"""The rebuild loop (`python -m sitegen schedule`): rebuild the site as an event runs. Each time a
session's end plus grace passes the collector's clock (core.archive.event_clock, a replay's
simulated time in the demo), build again; and when a moderation decision asks for it
(core.rebuild: a row in the archive, read here).

A rebuild is the incremental build: it reads only the archive rows changed since the last build
(sitegen.posts) and renders only the pages whose inputs changed, which after a session are that
session's talks and breaks, its day, the event page, the archive's last page and the downloads
that hold those posts."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from core.archive import event_clock, open_archive
from core.errors import AfaError, ArchiveError
from core.events import Event, Session, load_events
from core.items import parse_time
from core.rebuild import newer_request, rebuild_request
from core.settings import Settings

from .build import build_site
from .publish import after_build


def session_deadlines(event: Event) -> list[tuple[datetime, Session]]:
    """(end + grace, session) for every session, in time order."""
    return sorted(((s.end + event.grace, s) for s in event.sessions), key=lambda d: d[0])


class Clock:
    """Reads the collector's clock for one event; None until the archive exists and has one."""

    def __init__(self, path: Path, event: str) -> None:
        self.path = path
        self.event = event
        self.db = None

    def now(self) -> datetime | None:
        if self.db is None:
            try:
                self.db = open_archive(self.path, create=False)
            except ArchiveError:
                return None
        return parse_time(event_clock(self.db, self.event))

    def rebuild_number(self) -> int:
        """The number of the event's latest rebuild request (0 for none, or no archive yet)."""
        request = rebuild_request(self.db, self.event) if self.db is not None else None
        return request.number if request is not None else 0

    def rebuild_request(self, seen: int):
        """A rebuild request newer than `seen`, or None."""
        return newer_request(self.db, self.event, seen) if self.db is not None else None

    def close(self) -> None:
        if self.db is not None:
            self.db.close()


def run_rebuild_loop(
    settings: Settings,
    slug: str,
    interval: float,
    stop: threading.Event,
    log: Callable[[str], None],
) -> None:
    events = {e.slug: e for e in load_events(settings.content_dir)}
    if slug not in events:
        raise AfaError(f"no event {slug!r} in {settings.content_dir}/")
    event = events[slug]
    clock = Clock(settings.archive_path, slug)
    pending = session_deadlines(event)
    try:
        now = clock.now()
        pending = [d for d in pending if now is None or d[0] > now]
        seen = clock.rebuild_number()  # the initial build covers every request made before it
        log(f"initial build: {build_site(settings).summary()}")
        after_build(settings, log)
        log(f"waiting for {len(pending)} session end(s) of {slug}, checking every {interval:g} s")
        while pending and not stop.wait(interval):
            now = clock.now()
            passed = [d for d in pending if now is not None and d[0] <= now]
            if passed:
                pending = pending[len(passed) :]
                ended = passed[-1][1].end.astimezone(event.tz)
                rebuild(settings, f"session {passed[-1][1].slug} ended at {ended:%H:%M}", log)
            request = clock.rebuild_request(seen)
            if request is not None:
                seen = request.number
                rebuild(settings, f"moderation asked ({request.reason})", log)
    finally:
        clock.close()
    log("stopped" if stop.is_set() else f"every session of {slug} has ended; stopping")


def rebuild(settings: Settings, why: str, log: Callable[[str], None]) -> None:
    started = time.perf_counter()
    try:
        report = build_site(settings)
    except AfaError as exc:  # a content mistake mid-event: say so and keep the schedule going
        log(f"{why}, but the rebuild failed:\n{exc}")
        return
    log(
        f"{why}; rebuilt {report.pages} pages ({report.rendered} rendered, "
        f"{len(report.written)} files changed) in {time.perf_counter() - started:.2f} s"
    )
    after_build(settings, log)
