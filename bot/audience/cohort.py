"""A cohort: the customers an audience selected, with the reason for each, and who was excluded."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from bot.audience.exclusions import Exclusions, value_exclusion


class CohortMember(NamedTuple):
    """One selected customer. A NamedTuple: cohorts can hold most of a million customers, and a
    tuple builds several times faster than a frozen dataclass."""

    customer_id: int
    external_id: str
    name: str | None
    reason: str
    """Why this customer is in the cohort, in words a manager reads."""
    orders: int | None = None
    last_order_at: datetime | None = None
    days_since_last_order: float | None = None
    expected_gap_days: float | None = None
    p_alive: float | None = None
    abc: str | None = None
    xyz: str | None = None
    priority: str | None = None
    order_external_id: str | None = None
    delivered_at: datetime | None = None


@dataclass(frozen=True)
class Cohort:
    kind: str
    as_of: datetime
    members: list[CohortMember]
    excluded: dict[str, int] = field(default_factory=dict)
    """Excluded customers counted by reason (see bot.audience.exclusions.REASONS)."""
    note: str | None = None
    """E.g. why P(alive) is not shown."""

    @property
    def excluded_total(self) -> int:
        return sum(self.excluded.values())


def split_excluded(
    kind: str,
    as_of: datetime,
    candidates: Iterable[tuple[CohortMember, str | None]],
    exclusions: Exclusions,
    note: str | None = None,
) -> Cohort:
    """Members whose exclusion reason is None stay; the others are counted by reason."""
    members: list[CohortMember] = []
    excluded: Counter[str] = Counter()
    for member, sql_reason in candidates:
        reason = value_exclusion(exclusions, sql_reason, member.priority)
        if reason is None:
            members.append(member)
        else:
            excluded[reason] += 1
    return Cohort(kind, as_of, members, dict(excluded), note)


COLUMNS = list(CohortMember._fields)


def write_cohort_csv(cohort: Cohort, path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for member in cohort.members:
            row = member._asdict()
            for key, value in row.items():
                if isinstance(value, datetime):
                    row[key] = value.isoformat()
                elif isinstance(value, float):
                    row[key] = f"{value:.4f}".rstrip("0").rstrip(".")
                elif value is None:
                    row[key] = ""
            writer.writerow(row)
