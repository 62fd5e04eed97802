"""A dry run: who a campaign would contact at a given moment, and what the guard would decide.

Nothing is written. The cohort is selected as the planner would (`select_cohort`, `cycle_of`,
`in_holdout`), and each member that would get a new `planned` row is passed through the same
decision the dispatcher takes at sending time (its recipient and channel order, the real guard),
with the moment of the dry run as `now`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from bot.app import App
from bot.campaign.dispatcher import Dispatcher
from bot.campaign.guard import Defer, GuardPolicy, Reason, Send, Skip
from bot.campaign.loader import LoadedCampaign
from bot.campaign.planner import cycle_of, in_holdout, select_cohort
from bot.channel.base import Channel
from bot.customers.zone import customer_zone
from bot.db.models import Customer
from bot.db.outreach import Outreach
from bot.dialog.library import Library

SEND = "send"
DEFERRED = "deferred"
CAPPED = "capped"
HELD_OUT = "held out"
BLOCKED = "blocked"
ALREADY_PLANNED = "already planned"
ORDER = (SEND, DEFERRED, CAPPED, HELD_OUT, BLOCKED, ALREADY_PLANNED)


@dataclass(frozen=True)
class DryRunLine:
    customer_id: int
    external_id: str
    name: str | None
    decision: str
    """One of SEND, DEFERRED, CAPPED, HELD_OUT, BLOCKED, ALREADY_PLANNED."""
    detail: str


@dataclass
class DryRun:
    campaign_id: str
    at: datetime
    lines: list[DryRunLine] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        counted = Counter(line.decision for line in self.lines)
        return {decision: counted[decision] for decision in ORDER if counted[decision]}


def dry_run(
    app: App,
    loaded: LoadedCampaign,
    at: datetime,
    channels: Mapping[str, Channel],
    policy: GuardPolicy | None = None,
) -> DryRun:
    """What a run of `loaded` planned at `at` and sent at once would do; reads only."""
    campaign = loaded.campaign
    members = select_cohort(app, campaign, at)
    judge = Dispatcher(
        app, {campaign.id: loaded}, Library(), channels, policy or GuardPolicy(), "dry-run"
    )
    result = DryRun(campaign.id, at)
    seen: set[tuple[int, str]] = set()
    with app.sessions() as session:
        existing = {
            (customer_id, cycle): state
            for customer_id, cycle, state in session.execute(
                select(Outreach.customer_id, Outreach.cycle, Outreach.state).where(
                    Outreach.campaign_id == campaign.id
                )
            )
        }
        for member in members:
            cycle = cycle_of(campaign, member, at)
            key = (member.customer_id, cycle)
            if key in seen:
                continue
            seen.add(key)
            customer = session.get(Customer, member.customer_id)
            assert customer is not None

            def line(decision: str, detail: str, who: Customer = customer) -> DryRunLine:
                return DryRunLine(who.id, who.external_id, who.name, decision, detail)

            if key in existing:
                result.lines.append(line(ALREADY_PLANNED, f"cycle {cycle}: {existing[key]}"))
                continue
            if in_holdout(campaign.id, member.customer_id, campaign.holdout_share):
                result.lines.append(line(HELD_OUT, "control group, never contacted"))
                continue
            recipient = judge._recipient(session, customer, row_id=-1)
            decision = judge._decide(recipient, campaign, at)
            zone = customer_zone(customer.time_zone, customer.phone, campaign.schedule.time_zone)
            if isinstance(decision, Send):
                local = decision.local_time
                detail = f"at {local:%H:%M} ({zone.key}) via {decision.channel}"
                result.lines.append(line(SEND, detail))
            elif isinstance(decision, Defer):
                until = decision.until.astimezone(zone)
                kind = CAPPED if decision.reason is Reason.FREQUENCY_CAP else DEFERRED
                detail = f"until {until:%Y-%m-%d %H:%M} ({zone.key}): {decision.reason.value}"
                result.lines.append(line(kind, detail))
            else:
                what = decision.reason.value if isinstance(decision, Skip) else "manager_task"
                result.lines.append(line(BLOCKED, f"{what}: {decision.text}"))
    return result
