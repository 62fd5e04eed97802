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
from bot.campaign.guard import Defer, GuardPolicy, Reason, Send, Skip
from bot.campaign.loader import LoadedCampaign
from bot.campaign.people import Person, load_people
from bot.campaign.planner import NOT_WORTH_IT, cycle_of, in_holdout, not_worth_it, select_cohort
from bot.campaign.route import route
from bot.channel.base import Channel
from bot.customers.zone import customer_zone
from bot.db.outreach import Outreach

SEND = "send"
DEFERRED = "deferred"
CAPPED = "capped"
HELD_OUT = "held out"
NOT_WORTH = "not worth it"
BLOCKED = "blocked"
ALREADY_PLANNED = "already planned"
ORDER = (SEND, DEFERRED, CAPPED, NOT_WORTH, HELD_OUT, BLOCKED, ALREADY_PLANNED)


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
    unworthy = not_worth_it(app, campaign, members, at)
    policy = policy or GuardPolicy()
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
        people = load_people(
            session,
            [member.customer_id for member in members],
            {campaign.id: loaded},
            app.settings.company_name,
            at,
        )
        for member in members:
            cycle = cycle_of(campaign, member, at)
            key = (member.customer_id, cycle)
            if key in seen or member.customer_id not in people:
                continue
            seen.add(key)
            person = people[member.customer_id]

            def line(decision: str, detail: str, who: Person = person) -> DryRunLine:
                customer_id = who.recipient.customer_id
                return DryRunLine(customer_id, who.external_id, who.name, decision, detail)

            if key in existing:
                result.lines.append(line(ALREADY_PLANNED, f"cycle {cycle}: {existing[key]}"))
                continue
            if member.customer_id in unworthy:
                detail = f"{NOT_WORTH_IT}: win-back benefit <= cost_to_win_back"
                result.lines.append(line(NOT_WORTH, detail))
                continue
            if in_holdout(campaign.id, member.customer_id, campaign.holdout_share):
                result.lines.append(line(HELD_OUT, "control group, never contacted"))
                continue
            recipient = person.recipient
            decision = route(recipient, campaign, policy, at, channels)
            zone = customer_zone(recipient.time_zone, recipient.phone, campaign.schedule.time_zone)
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
