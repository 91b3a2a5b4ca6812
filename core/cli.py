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
