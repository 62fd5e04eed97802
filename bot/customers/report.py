"""What an import did: counts, notes, and the bad rows with file, line, column, value and reason."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from bot.errors import RowError


@dataclass(frozen=True)
class BadRow:
    error: RowError
    value: str = ""
    """The offending cell as written in the file (empty when the whole row is at fault)."""

    def __str__(self) -> str:
        return str(self.error)


@dataclass
class ImportReport:
    path: Path
    kind: str  # "customers" or "orders"
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    bad_rows: list[BadRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    changed_customer_ids: set[int] = field(default_factory=set)
    """Orders imports: customers whose orders were created or changed (for the rhythm refresh)."""

    @property
    def failed(self) -> int:
        return len(self.bad_rows)

    @property
    def ok(self) -> bool:
        return not self.bad_rows

    def bad(self, line: int, column: str | None, reason: str, value: str = "") -> None:
        self.bad_rows.append(BadRow(RowError(str(self.path), line, column, reason), value))

    def summary(self) -> str:
        return (
            f"{self.path}: {self.kind}: {self.created} created, {self.updated} updated, "
            f"{self.unchanged} unchanged, {self.failed} failed"
        )


def write_errors_csv(reports: list[ImportReport], target: Path) -> None:
    """All bad rows as CSV (file,line,column,value,reason); UTF-8 with BOM so Excel reads it."""
    with target.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["file", "line", "column", "value", "reason"])
        for report in reports:
            for bad in report.bad_rows:
                error = bad.error
                writer.writerow(
                    [error.path, error.line, error.column or "", bad.value, error.reason]
                )
