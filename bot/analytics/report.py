"""The campaign report: what the contacts gave, per campaign, script version and channel.

`aggregate` is a pure function over plain `ReportRow`s (one per outreach row), so it is tested
without a database; `bot.cli.report.load_rows` reads them from the outreach table.
Definitions (docs/reports.md):

- contacted: rows in `done` or `in_conversation`, not held out;
- reached: contacted rows where a conversation started (an answer recorded or an outcome stored);
- completed: `done` rows with an outcome; opted out: outcome `opted_out`;
- NPS and CSAT: bot.analytics.nps over the recorded `nps` (0-10) and `csat` (1-5) answers;
- reasons: counts and shares of the recorded `reason` answers;
- offers accepted: recorded `offer_accepted` true, or outcome `offer_accepted`;
- won back: converted contacted / contacted; holdout won back: converted holdout / holdout;
- uplift: bot.analytics.uplift with Newcombe's 95 % interval; None when a group is empty.

Holdout rows carry neither a script version nor a channel: every breakdown of a campaign is
compared against the campaign's whole holdout.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.analytics.nps import Csat, Nps, csat, nps
from bot.analytics.uplift import Uplift, uplift

CONTACTED = ("done", "in_conversation")
ALL = "all"
"""The breakdown of a campaign's own line."""


@dataclass(frozen=True)
class ReportRow:
    campaign_id: str
    script_version: str | None
    channel: str | None
    state: str
    holdout: bool
    outcome: str | None
    answers: Mapping[str, Any]
    converted: bool


@dataclass(frozen=True)
class ReasonShare:
    reason: str
    count: int
    share: float


@dataclass(frozen=True)
class Segment:
    campaign_id: str
    breakdown: str
    """`all`, `script_version` or `channel`."""
    value: str
    """The script version or channel (`-` when unknown); `all` for the campaign's own line."""
    contacted: int
    reached: int
    completed: int
    opted_out: int
    nps: Nps
    csat: Csat
    reasons: tuple[ReasonShare, ...]
    offers_accepted: int
    won_back: int
    won_back_rate: float | None
    holdout: int
    holdout_won_back: int
    holdout_rate: float | None
    uplift: Uplift | None


def _scores(rows: Iterable[ReportRow], name: str, low: int, high: int) -> list[int]:
    out: list[int] = []
    for row in rows:
        value = row.answers.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
            out.append(value)
    return out


def _reached(row: ReportRow) -> bool:
    return bool(row.answers) or row.outcome is not None


def _segment(
    campaign_id: str, breakdown: str, value: str, rows: list[ReportRow], held: list[ReportRow]
) -> Segment:
    reasons = Counter(
        str(row.answers["reason"]) for row in rows if row.answers.get("reason") not in (None, "")
    )
    total_reasons = sum(reasons.values())
    contacted = len(rows)
    won = sum(1 for row in rows if row.converted)
    held_won = sum(1 for row in held if row.converted)
    return Segment(
        campaign_id=campaign_id,
        breakdown=breakdown,
        value=value,
        contacted=contacted,
        reached=sum(1 for row in rows if _reached(row)),
        completed=sum(1 for row in rows if row.state == "done" and row.outcome is not None),
        opted_out=sum(1 for row in rows if row.outcome == "opted_out"),
        nps=nps(_scores(rows, "nps", 0, 10)),
        csat=csat(_scores(rows, "csat", 1, 5)),
        reasons=tuple(
            ReasonShare(reason, count, count / total_reasons)
            for reason, count in sorted(reasons.items(), key=lambda item: (-item[1], item[0]))
        ),
        offers_accepted=sum(
            1
            for row in rows
            if row.answers.get("offer_accepted") is True or row.outcome == "offer_accepted"
        ),
        won_back=won,
        won_back_rate=won / contacted if contacted else None,
        holdout=len(held),
        holdout_won_back=held_won,
        holdout_rate=held_won / len(held) if held else None,
        uplift=uplift(won, contacted, held_won, len(held)) if contacted and held else None,
    )


def aggregate(rows: Iterable[ReportRow]) -> list[Segment]:
    """Per campaign (sorted by id): its own line, then one per script version, one per channel."""
    contacted: dict[str, list[ReportRow]] = {}
    held: dict[str, list[ReportRow]] = {}
    for row in rows:
        if row.holdout:
            held.setdefault(row.campaign_id, []).append(row)
            contacted.setdefault(row.campaign_id, [])
        elif row.state in CONTACTED:
            contacted.setdefault(row.campaign_id, []).append(row)
    segments: list[Segment] = []
    for campaign_id in sorted(contacted):
        mine, control = contacted[campaign_id], held.get(campaign_id, [])
        segments.append(_segment(campaign_id, ALL, ALL, mine, control))
        for breakdown in ("script_version", "channel"):
            groups: dict[str, list[ReportRow]] = {}
            for row in mine:
                groups.setdefault(getattr(row, breakdown) or "-", []).append(row)
            for value in sorted(groups):
                segments.append(_segment(campaign_id, breakdown, value, groups[value], control))
    return segments


def _num(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def segment_dict(segment: Segment) -> dict[str, Any]:
    """A segment as plain JSON values; rates are fractions, NPS and CSAT share in percent."""
    up = segment.uplift
    return {
        "campaign": segment.campaign_id,
        "breakdown": segment.breakdown,
        "value": segment.value,
        "contacted": segment.contacted,
        "reached": segment.reached,
        "completed": segment.completed,
        "opted_out": segment.opted_out,
        "nps": _num(segment.nps.score, 1),
        "nps_answers": segment.nps.total,
        "csat_share": _num(segment.csat.share, 1),
        "csat_mean": _num(segment.csat.mean, 2),
        "csat_answers": segment.csat.total,
        "reasons": [
            {"reason": r.reason, "count": r.count, "share": _num(r.share)} for r in segment.reasons
        ],
        "offers_accepted": segment.offers_accepted,
        "won_back": segment.won_back,
        "won_back_rate": _num(segment.won_back_rate),
        "holdout": segment.holdout,
        "holdout_won_back": segment.holdout_won_back,
        "holdout_rate": _num(segment.holdout_rate),
        "uplift": None if up is None else _num(up.absolute),
        "uplift_low": None if up is None else _num(up.interval.low),
        "uplift_high": None if up is None else _num(up.interval.high),
    }
