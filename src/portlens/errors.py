"""One exception tree for everything a user can get wrong: a `PortlensError` carries a one-line
message (and, where it helps, the file and line it is about). The command line catches the base
class and prints the message; library callers catch it the same way.

Messages from the library name what is wrong, never a command-line option: the front end that
knows which option fed a value adds that itself.
"""

from __future__ import annotations


class PortlensError(Exception):
    """Base class: a one-line message for the user, optionally located in a file (and line)."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line

    def __str__(self) -> str:
        if self.file is None or self.message.startswith(f"{self.file}:"):
            return self.message
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.message}"


class UsageError(PortlensError, ValueError):
    """Arguments that do not fit together or a value of the wrong shape."""


class SourceError(PortlensError, ValueError):
    """A file (or table) cannot be read as the requested source."""


class StoreError(PortlensError, RuntimeError):
    """The store cannot be opened or used."""


class ConfigError(PortlensError, ValueError):
    """A monitor configuration that cannot be used; `line`/`column` say where."""

    def __init__(self, message: str, line: int | None = None, column: str | None = None, *,
                 file: str | None = None):
        super().__init__(message, file=file, line=line)
        self.column = column


class NoData(PortlensError):
    """The data holds nothing the rule can read (no sessions, no summary rows)."""
