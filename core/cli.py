"""What every part's command line shares: clean errors and one log format."""

from __future__ import annotations

import logging
import re
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


# The HTTP clients log every request URL (httpx at INFO, httpcore at DEBUG) and a Flickr API
# key travels in the query string: their logs stay at WARNING, whatever the verbosity.
QUIET_LOGGERS = ("httpx", "httpcore", "urllib3", "hpack", "h2")
_CREDENTIAL = re.compile(
    r"(?i)(\b(?:api_key|access_token|refresh_token|token|password|secret|auth)=)[^&\s'\"]+"
    r"|(\bBearer\s+)[A-Za-z0-9._~+/=-]+"
)


def configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )  # fmt: skip
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for handler in logging.getLogger().handlers:
        handler.addFilter(redact_credentials)


def redact_credentials(record: logging.LogRecord) -> bool:
    """A log line that names a credential anyway (a library's message, an error quoting a URL)
    shows it as [redacted]."""
    message = record.getMessage()
    redacted = _CREDENTIAL.sub(lambda m: (m.group(1) or m.group(2)) + "[redacted]", message)
    if redacted != message:
        record.msg, record.args = redacted, None
    return True


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
