"""Routing one contact over a campaign's channels: the guard asked channel by channel, in order.

Pure: no database, no clock. `route` returns the first decision that acts (Send or Defer); a Skip
moves on to the next channel (an opt-out or a flag ends it at once), a Reroute to Telegram asks the
guard again for Telegram, and a Reroute to a manager -- or to a channel already tried -- ends as a
manager task. The dispatcher and the dry run both call it, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from bot.campaign.definition import Campaign
from bot.campaign.definition import Channel as ChannelName
from bot.campaign.guard import (
    MANAGER_TASK,
    Decision,
    Defer,
    GuardPolicy,
    Reason,
    Recipient,
    Reroute,
    Send,
    SendRequest,
    Skip,
    decide,
)
from bot.campaign.window import SendingWindow

WEEKDAY_NUMBERS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
FINAL_SKIPS = (Reason.OPTED_OUT, Reason.FLAGGED)
"""Skips that hold for every channel: no other channel is tried."""


def sending_window(campaign: Campaign) -> SendingWindow:
    window = campaign.window
    return SendingWindow(
        weekdays=frozenset(WEEKDAY_NUMBERS[day] for day in window.weekdays),
        start=window.start,
        end=window.end,
        holidays=frozenset(window.holidays),
        skip_holidays=window.skip_holidays,
    )


def route(
    recipient: Recipient,
    campaign: Campaign,
    policy: GuardPolicy,
    now: datetime,
    available: Collection[str],
    skip: Collection[str] = (),
) -> Decision:
    """The guard over `campaign.channels` in order, at `now`.

    `available` are the channels configured in this process (a listed channel that is not
    configured is skipped as having no address); `skip` are channels already found unreachable
    for this contact.
    """
    order: tuple[ChannelName, ...] = campaign.channels
    window = sending_window(campaign)
    tried: set[str] = set(skip)
    last: Decision | None = None
    queue: list[ChannelName] = [channel for channel in order if channel not in tried]
    while queue:
        channel = queue.pop(0)
        if channel in tried:
            continue
        tried.add(channel)
        request = SendRequest(
            campaign_id=campaign.id,
            purpose=campaign.purpose,
            channel=channel,
            channels_in_order=order,
            window=window,
            campaign_time_zone=campaign.schedule.time_zone,
            cap_days=campaign.frequency_cap.days,
            cap_exempt=campaign.frequency_cap.exempt,
        )
        decision = decide(recipient, request, policy, now)
        if isinstance(decision, Send) and channel not in available:
            last = Skip(Reason.NO_ADDRESS, f"no {channel} channel is configured")
            continue
        if isinstance(decision, Send | Defer):
            return decision
        if isinstance(decision, Skip):
            if decision.reason in FINAL_SKIPS:
                return decision
            last = decision
            continue
        if decision.to == MANAGER_TASK or decision.to in tried:
            return Reroute(MANAGER_TASK, decision.reason, decision.text)
        queue.insert(0, decision.to)
        last = decision
    if last is None:
        return Skip(Reason.NO_ADDRESS, "every channel of the campaign was unreachable")
    return last
