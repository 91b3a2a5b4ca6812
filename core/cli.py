"""What every part's command line shares: clean errors and one log format."""

from __future__ import annotations

import logging
import sys

import click

from .errors import AfaError


class AfaGroup(click.Group):
    """The one place where an AfaError becomes a clean message and exit code 1."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except AfaError as exc:
            raise click.ClickException(str(exc)) from exc


def configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )  # fmt: skip


def print_table(headers: list[str], rows) -> None:
    """Rows as plain columns under their headers (`collector status`, `collector queue` …)."""
    rows = [[str(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    for row in [headers, ["-" * w for w in widths], *rows]:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def short_time(iso: str | None) -> str:
    """An archive time (UTC ISO 8601) as "YYYY-MM-DD HH:MM:SS", or "-"."""
    if not iso:
        return "-"
    return iso.replace("T", " ")[:19]
