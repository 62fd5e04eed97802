"""Exceptions Boomerang raises on purpose.

BoomerangError
├── ConfigError            settings or environment are unusable
├── DatabaseError          the database cannot be opened or migrated
└── InputError             bad input from a user file; carries where it is
    └── RowError           one bad row of an import (file, line, column, reason)
"""

from __future__ import annotations


class BoomerangError(Exception):
    """Base of every error Boomerang raises deliberately."""


class ConfigError(BoomerangError):
    pass


class DatabaseError(BoomerangError):
    pass


class InputError(BoomerangError):
    """Bad input; `where` names the place (file:line or file:line:column)."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


class RowError(InputError):
    def __init__(self, path: str, line: int, column: str | None, reason: str) -> None:
        where = f"{path}:{line}" + (f" [{column}]" if column else "")
        super().__init__(where, reason)
        self.path = path
        self.line = line
        self.column = column
