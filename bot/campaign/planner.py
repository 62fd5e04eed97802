"""The planner: one run of a campaign turns its audience into outreach rows.

`plan_run(app, loaded, scheduled_for)` is idempotent twice over:

- per run: `campaign_runs` is unique on (campaign, scheduled_for); a run that exists is returned
  as it is, without selecting the audience again (a scheduler that fires twice, or a restart that
  replays a missed firing, plans nothing new);
- per contact: `outreach` is unique on (campaign, customer, cycle) and rows are inserted with
  `ON CONFLICT DO NOTHING`, so a customer already planned in this cycle by an earlier run is
  counted as `already_present`, never duplicated.

The cycle says what a contact is *about*, so that each thing is asked once:

| audience | cycle | asked once per |
| --- | --- | --- |
| post-order | the order's external id | order |
| lapsed | `lapse:<date of the last order>` | lapse (buying again and lapsing again is a new one) |
| welcome | `welcome` | customer |
| anniversary, birthday | `<year>` of the run's local date (campaign zone) | year |

The holdout (control group) is decided by a stable hash of campaign id + customer id, never by a
random draw: the same customer is in the control group of a campaign in every run and on every
node. Holdout rows are stored as `skipped` with reason `holdout` so the uplift report can count
them.

Worth winning back: a lapsed campaign with `economics` first stores the members whose own
win-back benefit (`not_worth_it`) does not exceed `cost_to_win_back` as `skipped` with reason
`not_worth_it`; the holdout is then drawn from the others only, so the control group and the
contacted group stay alike. Like every row, such a skip is final for its cycle.

Demo customers (tag `demo`) are planned like everyone else: the demo needs their rows. Whether a
row may actually be sent (demo, consent, window, caps) is the dispatcher's call, at send time,
through bot.campaign.guard.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Engine, Table, func, select
from sqlalchemy.orm import Session

from bot.analytics.period import minor_per_major, shop_lifetime_months
from bot.analytics.retention import customer_win_back_benefit
from bot.app import App
from bot.audience.anniversary import anniversary_cohort
from bot.audience.birthday import birthday_cohort
from bot.audience.cohort import Cohort, CohortMember
from bot.audience.exclusions import Exclusions
from bot.audience.lapse import LapseRule, lapsed_cohort
from bot.audience.post_order import post_order_cohort
from bot.audience.rhythm import frequency_recency_age
from bot.audience.welcome import welcome_cohort
from bot.campaign.definition import (
    AnniversaryAudience,
    Audience,
    Campaign,
    LapsedAudience,
    PostOrderAudience,
    WelcomeAudience,
)
from bot.campaign.loader import LoadedCampaign
from bot.campaign.states import HOLDOUT, PLANNED, SKIPPED
from bot.db.outreach import CampaignRun, Outreach
from bot.db.upsert import dialect_insert

OUTREACH: Table = Outreach.__table__  # type: ignore[assignment]
RUNS: Table = CampaignRun.__table__  # type: ignore[assignment]
UNIQUE_ROW = ("campaign_id", "customer_id", "cycle")
UNIQUE_RUN = ("campaign_id", "scheduled_for")
CHUNK = 5_000
"""Rows per INSERT batch."""
NOT_WORTH_IT = "not_worth_it"
"""skip_reason of customers whose win-back would cost more than it brings."""


@dataclass(frozen=True)
class RunSummary:
    run_id: int
    campaign_id: str
    scheduled_for: datetime
    planned: int
    """Rows this run inserted as `planned`."""
    held_out: int
    """Rows this run inserted as holdout (`skipped`, reason `holdout`)."""
    already_present: int
    """Cohort members whose (campaign, customer, cycle) row an earlier run had inserted."""
    created: bool
    """False when the run existed already and nothing was done (already_present is then 0)."""
    not_worth_it: int = 0
    """Rows this run inserted as `skipped`, reason `not_worth_it` (0 for a run found existing)."""


def in_holdout(campaign_id: str, customer_id: int, share: float) -> bool:
    """Stable: the first 8 bytes of sha256("<campaign>:<customer>") as a fraction in [0, 1)."""
    if share <= 0:
        return False
    digest = hashlib.sha256(f"{campaign_id}:{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def select_cohort(app: App, campaign: Campaign, as_of: datetime) -> list[CohortMember]:
    """The campaign's audience as of `as_of`, with its exclusions and class/priority filters."""
    return audience_cohort(
        app.engine, campaign.audience, as_of, campaign.schedule.time_zone
    ).members


def audience_cohort(engine: Engine, audience: Audience, as_of: datetime, zone: str) -> Cohort:
    """One audience definition -> its cohort; `audience preview` and the planner both use it."""
    params = audience.params
    exclusions = Exclusions(
        contacted_within_days=params.contacted_within, let_go=params.exclude_let_go
    )
    if isinstance(audience, LapsedAudience):
        rule = LapseRule(factor=audience.params.factor, min_orders=audience.params.min_orders)
        cohort = lapsed_cohort(engine, as_of, rule, exclusions)
        classes, priorities = audience.params.classes, audience.params.priorities
        if not classes and not priorities:
            return cohort
        kept = [
            m
            for m in cohort.members
            if (not classes or m.abc in classes) and (not priorities or m.priority in priorities)
        ]
        return replace(cohort, members=kept)
    if isinstance(audience, PostOrderAudience):
        return post_order_cohort(
            engine,
            as_of,
            min_days=audience.params.min_days,
            max_days=audience.params.max_days,
            exclusions=exclusions,
            default_zone=zone,
        )
    if isinstance(audience, WelcomeAudience):
        return welcome_cohort(
            engine,
            as_of,
            min_days=audience.params.min_days,
            max_days=audience.params.max_days,
            exclusions=exclusions,
            default_zone=zone,
        )
    if isinstance(audience, AnniversaryAudience):
        return anniversary_cohort(
            engine, as_of, years=audience.params.years, exclusions=exclusions, default_zone=zone
        )
    return birthday_cohort(
        engine,
        as_of,
        days_ahead=audience.params.days_ahead,
        exclusions=exclusions,
        default_zone=zone,
    )


def not_worth_it(
    app: App, campaign: Campaign, members: list[CohortMember], as_of: datetime
) -> set[int]:
    """Members of a lapsed campaign with `economics` whose win-back benefit <= its cost.

    Benefit: `customer_win_back_benefit` with the customer's rhythm as of `as_of` (orders,
    revenue, first and last order), the member's expected gap, the campaign's margin share and
    `lifetime_months` (or the shop's lifetime from last month's churn). When the lifetime cannot
    be told (no churn: unbounded; no customers) nobody is skipped.
    """
    economics = campaign.economics
    if economics is None or not isinstance(campaign.audience, LapsedAudience) or not members:
        return set()
    params = campaign.audience.params
    lifetime = economics.lifetime_months
    if lifetime is None:
        rule = LapseRule(factor=params.factor, min_orders=params.min_orders)
        lifetime = shop_lifetime_months(app.engine, as_of, rule)
        if lifetime is None:
            return set()
    ids = np.array([m.customer_id for m in members], dtype=np.int64)
    gaps = np.array([m.expected_gap_days for m in members], dtype=np.float64)
    rhythm = frequency_recency_age(app.engine, as_of)
    at = rhythm.positions(ids)
    benefit = customer_win_back_benefit(
        rhythm.orders[at].astype(np.float64),
        rhythm.revenue_minor[at].astype(np.float64),
        rhythm.first_order_epoch[at].astype(np.float64),
        rhythm.last_order_epoch[at].astype(np.float64),
        gaps,
        economics.margin,
        lifetime,
    )
    cost = economics.cost_to_win_back * minor_per_major(app.settings.default_currency)
    return set(ids[~(benefit > cost)].tolist())


def cycle_of(campaign: Campaign, member: CohortMember, scheduled_for: datetime) -> str:
    """What this contact is about; see the module's table."""
    kind = campaign.audience.kind
    if kind == "post-order":
        if member.order_external_id is None:  # pragma: no cover - post-order members carry it
            raise AssertionError(f"post-order member {member.customer_id} without an order")
        return member.order_external_id
    if kind == "lapsed":
        if member.last_order_at is None:  # pragma: no cover - lapsed members carry it
            raise AssertionError(f"lapsed member {member.customer_id} without a last order")
        return f"lapse:{member.last_order_at.date().isoformat()}"
    if kind == "welcome":
        return "welcome"
    return str(scheduled_for.astimezone(campaign.schedule.zone).year)


def plan_run(app: App, loaded: LoadedCampaign, scheduled_for: datetime) -> RunSummary:
    """Plan the run of `loaded` for `scheduled_for`; a run that exists is returned as it is."""
    campaign = loaded.campaign
    existing = _existing(app, campaign.id, scheduled_for)
    if existing is not None:
        return existing
    members = select_cohort(app, campaign, scheduled_for)
    skip = not_worth_it(app, campaign, members, scheduled_for)
    now = app.clock.now()
    with app.sessions.begin() as session:
        insert = dialect_insert(session)
        run_id = session.execute(
            insert(RUNS)
            .values(
                campaign_id=campaign.id,
                scheduled_for=scheduled_for,
                created_at=now,
                planned=0,
                held_out=0,
            )
            .on_conflict_do_nothing(index_elements=list(UNIQUE_RUN))
            .returning(RUNS.c.id)
        ).scalar_one_or_none()
        if run_id is None:  # another planner created it since _existing looked: nothing written
            raced = _summary_of(session, campaign.id, scheduled_for)
            assert raced is not None
            return raced
        rows = _rows(loaded, members, scheduled_for, run_id, now, skip)
        statement = insert(OUTREACH).on_conflict_do_nothing(index_elements=list(UNIQUE_ROW))
        for start in range(0, len(rows), CHUNK):
            session.execute(statement, rows[start : start + CHUNK])
        counts: dict[str | None, int] = {
            reason: count
            for reason, count in session.execute(
                select(OUTREACH.c.skip_reason, func.count())
                .where(OUTREACH.c.run_id == run_id)
                .group_by(OUTREACH.c.skip_reason)
            )
        }
        planned, held_out = counts.get(None, 0), counts.get(HOLDOUT, 0)
        unworthy = counts.get(NOT_WORTH_IT, 0)
        session.execute(
            RUNS.update().where(RUNS.c.id == run_id).values(planned=planned, held_out=held_out)
        )
    return RunSummary(
        run_id,
        campaign.id,
        scheduled_for,
        planned,
        held_out,
        len(rows) - planned - held_out - unworthy,
        created=True,
        not_worth_it=unworthy,
    )


def _existing(app: App, campaign_id: str, scheduled_for: datetime) -> RunSummary | None:
    with app.sessions() as session:
        return _summary_of(session, campaign_id, scheduled_for)


def _summary_of(session: Session, campaign_id: str, scheduled_for: datetime) -> RunSummary | None:
    run = session.scalars(
        select(CampaignRun).where(
            CampaignRun.campaign_id == campaign_id, CampaignRun.scheduled_for == scheduled_for
        )
    ).one_or_none()
    if run is None:
        return None
    return RunSummary(
        run.id, campaign_id, run.scheduled_for, run.planned, run.held_out, 0, created=False
    )


def _rows(
    loaded: LoadedCampaign,
    members: Iterable[CohortMember],
    scheduled_for: datetime,
    run_id: int,
    now: datetime,
    not_worth: AbstractSet[int] = frozenset(),
) -> list[dict[str, Any]]:
    campaign = loaded.campaign
    rows: dict[tuple[int, str], dict[str, Any]] = {}
    for member in members:
        cycle = cycle_of(campaign, member, scheduled_for)
        unworthy = member.customer_id in not_worth
        held = not unworthy and in_holdout(campaign.id, member.customer_id, campaign.holdout_share)
        rows.setdefault(
            (member.customer_id, cycle),
            {
                "campaign_id": campaign.id,
                "customer_id": member.customer_id,
                "cycle": cycle,
                "run_id": run_id,
                "state": SKIPPED if held or unworthy else PLANNED,
                "skip_reason": HOLDOUT if held else NOT_WORTH_IT if unworthy else None,
                "holdout": held,
                "channel": None,
                "attempts": 0,
                "next_attempt_at": None,
                "lease_owner": None,
                "lease_until": None,
                "script_id": campaign.script,
                "script_version": None,
                "conversation": None,
                "outcome": None,
                "converted_at": None,
                "created_at": now,
                "updated_at": now,
            },
        )
    return list(rows.values())
