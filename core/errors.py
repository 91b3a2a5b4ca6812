"""The project's exceptions. Each part's CLI turns AfaError into a clean message in one place."""

from __future__ import annotations


class AfaError(Exception):
    """Base class for every error A Feed Apart reports to a user."""


class ContentError(AfaError):
    """A mistake in an organizer's content file, located by path and line."""

    def __init__(self, path: str, line: int | None, message: str) -> None:
        self.path = str(path)
        self.line = line
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.message}"


class ContentErrors(AfaError):
    """Every mistake found in content/, reported together so an organizer fixes them in one go."""

    def __init__(self, errors: list[ContentError]) -> None:
        self.errors = errors
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


class SourceError(AfaError):
    """A source could not be read; the cause is chained and shown."""

    def __init__(self, source: str, url: str, message: str = "") -> None:
        self.source = source
        self.url = url
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"{self.source}: {self.message or 'error'}: {self.url!r}"
        if self.__cause__ is not None:
            text += f": {type(self.__cause__).__name__}: {self.__cause__}"
        return text


class ParseError(AfaError):
    """A payload from a source is malformed; the item is skipped and counted, the run goes on."""


class ArchiveError(AfaError):
    """The archive file is missing, locked or from a newer version."""
