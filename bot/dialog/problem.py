"""A problem found in a script or locale pack: where it is (file, line, step) and what is wrong."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, order=True)
class Problem:
    file: str
    line: int
    message: str
    step: str | None = None
    severity: Severity = "error"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}"
        if self.step is not None:
            return f"{where}: step '{self.step}': {self.message}"
        return f"{where}: {self.message}"
