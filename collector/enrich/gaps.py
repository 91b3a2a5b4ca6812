"""Deletes a gap hid: after Jetstream could not replay a disconnection (it keeps about a day),
the deletes it would have carried are lost with it. The archived Bluesky posts written in the
gap are asked about with getPosts (25 a call, unauthenticated); those it leaves out are gone and
are retracted, and the ones it returns bring their counts along."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from ..normalise import Delete
from ..sources.base import SourceContext
from . import answers
from .appview import PER_CALL, AppView, AppViewError
from .counts import line

log = logging.getLogger("collector.enrich")


async def check_gap(
    ctx: SourceContext, appview: AppView, since: datetime, until: datetime,
    save: Callable[[list, list], Awaitable[None]],
) -> int:  # fmt: skip
    """Re-check the source's archived posts of [since, until); returns how many are gone. Each
    answer is handed to `save` (the source's, which keeps its cursor where it is) as it comes."""
    if ctx.archived is None:
        return 0
    uris = await ctx.archived(since, until)
    gone = 0
    for start in range(0, len(uris), PER_CALL):
        chunk = uris[start : start + PER_CALL]
        try:
            answer = await appview.posts(chunk, ctx.stopping)
        except AppViewError as exc:
            log.warning("%s: re-checking %d posts of a gap failed: %s", ctx.key, len(uris), exc)
            return gone
        changes = answers.post_counts(answer, chunk)
        found = line("bluesky", "appview", "getPosts", answer, uris=chunk)
        if ctx.recorded is not None:
            ctx.recorded.append(found)
        gone += sum(1 for c in changes if isinstance(c, Delete))
        await save(changes, [])
    if gone:
        log.info("%s: %d of %d posts written during the gap are gone: retracted",
                 ctx.key, gone, len(uris))  # fmt: skip
    return gone
