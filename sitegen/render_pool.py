"""A full build's posts decoded, summarised and rendered in worker processes.

A full build reads every post once: decode the archive's JSON, make its summary (posts.summary),
render its HTML (the `post` macro) and its JSON line. That is three quarters of a full build at
a million posts, and it is one post at a time, so the machine's other cores can share it: past
the first POOL_MIN rows, the reader hands rows in batches to worker processes and gets back
each one's summary, HTML and line, in the archive's order, while it reads the next batch. The
workers render with the same templates and code, so the bytes are the same (tests hold both
ways to the same site). A rebuild after a session renders a few hundred posts in the build's
own process, as does a build on a machine of one core.

Workers are started with "spawn" (a fresh interpreter: nothing of the build's threads, locks
or open archive is inherited), which imports the program's main module again, the way
multiprocessing always does: a script that calls build_site must do so under
`if __name__ == "__main__":` (`afa`, `python -m sitegen` and the rebuild loop do).
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from itertools import islice
from sys import intern

from core.events import Event

POOL_MIN = 10_000  # rows read in the build's own process before workers start (the sample: 5,200)
BATCH = 1000  # rows per hand-over
Made = tuple[tuple, str | None, str | None]  # a row's summary, HTML and line (None: not shown)

_worker: dict = {}
peak_kb: list[int] = []  # the last pool's workers' peak resident memory (VmHWM), for benchmarks


def workers() -> int:
    """One per core the build may use, at most 4 (the build's own process reads and stores)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return min(cores, 4) if cores > 1 else 0


def _start(event: Event) -> None:
    from .render import make_env, post_macro

    _worker.update(event=event, macro=post_macro(make_env()))


def _render(rows: list[tuple[int, str, int, int]]) -> list[Made]:
    from .downloads import jsonl_line
    from .posts import decode, place_of, summary

    event, macro = _worker["event"], _worker["macro"]
    out: list[Made] = []
    for row_id, data, seq, version in rows:
        item = decode(data, seq)
        found = summary(row_id, seq, version, item, place_of(event, item))
        if item.author.hidden:
            out.append((found, None, None))
        else:
            out.append((found, str(macro(item, event.timezone)), jsonl_line(item)))
    return out


def rendered(rows: Iterable[tuple[int, str, int, int]], event: Event, count: int) -> Iterator[Made]:
    """Each row's summary, HTML and line, in order, made by `count` worker processes (or here,
    where worker processes cannot be started: no /dev/shm for their locks, say)."""
    rows = iter(rows)
    try:
        pool = ProcessPoolExecutor(count, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_start, initargs=(event,))  # fmt: skip
    except (OSError, ImportError, NotImplementedError):
        _start(event)
        while batch := list(islice(rows, BATCH)):
            yield from _render(batch)
        return
    with pool:
        waiting: deque = deque()
        while batch := list(islice(rows, BATCH)):
            waiting.append(pool.submit(_render, batch))
            if len(waiting) > 2 * count:
                yield from _interned(waiting.popleft().result())
        while waiting:
            yield from _interned(waiting.popleft().result())
        peak_kb[:] = [_peak_kb(pid) for pid in list(getattr(pool, "_processes", None) or ())]


def _peak_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _interned(made: list[Made]) -> list[Made]:
    """The summaries' repeated strings as one object each again (summary interns them; pickling
    made copies): a million summaries hold each author id once."""
    out = []
    for found, html, line in made:
        place = found[4] and intern(found[4])
        links = tuple(map(intern, found[8]))
        found = (*found[:4], place, intern(found[5]), found[6], found[7], links, *found[9:])
        out.append((found, html, line))
    return out
