"""The compliance guard: may this message go to this customer by this channel right now?

A pure core: no database, no clock. The dispatcher builds a `Recipient` and a `SendRequest` from its
rows, passes the moment of sending, and acts on the `Decision`. The checks run in a fixed order
(docs/compliance.md): opt-out, flagged, jurisdiction (38-FZ art. 18), address, consent, frequency
cap, local window. Every decision other than `Send` carries a machine-readable reason and a text,
and is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Literal
from zoneinfo import ZoneInfo

import phonenumbers

from bot.campaign.window import SendingWindow, is_open, next_opening
from bot.customers.zone import customer_zone

logger = logging.getLogger(__name__)

Purpose = Literal["survey", "service", "marketing"]
Channel = Literal["telegram", "voice"]
MANAGER_TASK: Literal["manager_task"] = "manager_task"


class Reason(StrEnum):
    """Why a message was not sent now; stable codes for logs, metrics and the outreach row."""

    OPTED_OUT = "opted_out"
    FLAGGED = "flagged"
    ROBOT_MARKETING_BANNED = "robot_marketing_banned"
    NO_ADDRESS = "no_address"
    CONSENT_WITHDRAWN = "consent_withdrawn"
    NO_CONSENT = "no_consent"
    FREQUENCY_CAP = "frequency_cap"
    OUTSIDE_WINDOW = "outside_window"
    WINDOW_NEVER_OPENS = "window_never_opens"


@dataclass(frozen=True)
class ConsentEntry:
    """One consent ledger entry in force: granted or withdrawn, when, and where it came from."""

    granted: bool
    at: datetime
    source: str


@dataclass(frozen=True)
class ContactRecord:
    """A past contact of the customer by any campaign, for the frequency cap."""

    at: datetime
    campaign_id: str
    purpose: Purpose
    exempt_from_cap: bool = False
    """Contacts of cap-exempt campaigns (a post-order survey) don't count against other caps."""


@dataclass(frozen=True)
class Recipient:
    """What the guard needs to know about a customer, as plain data."""

    customer_id: int
    phone: str | None = None
    """E.164, e.g. +79123456789."""
    time_zone: str | None = None
    opted_out_at: datetime | None = None
    flagged: str | None = None
    telegram_chat_id: int | None = None
    consents: Mapping[tuple[str, str], ConsentEntry] = field(
        default_factory=lambda: MappingProxyType({})
    )
    """The entry in force per (channel, purpose); build it with `consents_in_force`."""
    last_contacts: Sequence[ContactRecord] = ()


@dataclass(frozen=True)
class SendRequest:
    """One intended send: a campaign's message to one customer by one channel."""

    campaign_id: str
    purpose: Purpose
    channel: Channel
    channels_in_order: tuple[Channel, ...]
    window: SendingWindow
    campaign_time_zone: str
    cap_days: int | None = None
    cap_exempt: bool = False


def _default_consents() -> Mapping[str, bool]:
    return MappingProxyType({"service": True, "survey": True, "marketing": False})


@dataclass(frozen=True)
class GuardPolicy:
    """The configurable rules; the defaults and their reasons are in docs/compliance.md."""

    consent_defaults: Mapping[str, bool] = field(default_factory=_default_consents)
    """Per purpose, when the ledger has no entry; marketing needs explicit consent (38-FZ 18(1))."""
    voice_hours: tuple[time, time] = (time(8, 0), time(21, 0))
    """Local hours for voice calls, intersected with every campaign window."""
    robot_marketing_blocked_calling_codes: frozenset[int] = frozenset({7})
    """Country calling codes where robot voice marketing is banned: +7 (Russia and Kazakhstan)."""


@dataclass(frozen=True)
class Send:
    channel: Channel
    local_time: datetime
    """The moment of sending in the customer's zone (for the log and the conversation)."""


@dataclass(frozen=True)
class Defer:
    until: datetime
    """UTC; the dispatcher tries again then (and re-checks everything)."""
    reason: Reason
    text: str


@dataclass(frozen=True)
class Skip:
    """Final for this channel: the dispatcher moves on to the next channel in order, if any."""

    reason: Reason
    text: str


@dataclass(frozen=True)
class Reroute:
    """Not by this channel: send by `to` instead (decided again by the guard), or a manager task."""

    to: Channel | Literal["manager_task"]
    reason: Reason
    text: str


Decision = Send | Defer | Skip | Reroute


def consents_in_force(
    entries: Iterable[tuple[str, str, ConsentEntry]],
) -> dict[tuple[str, str], ConsentEntry]:
    """The ledger entry in force per (channel, purpose): the newest; on a tie, the later listed."""
    in_force: dict[tuple[str, str], ConsentEntry] = {}
    for channel, purpose, entry in entries:
        current = in_force.get((channel, purpose))
        if current is None or entry.at >= current.at:
            in_force[(channel, purpose)] = entry
    return in_force


def decide(
    recipient: Recipient, request: SendRequest, policy: GuardPolicy, now: datetime
) -> Decision:
    """Whether `request` may go to `recipient` at `now` (aware), and if not, what instead."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be an aware datetime, got {now!r}")
    now = now.astimezone(UTC)
    decision = _decide(recipient, request, policy, now)
    if not isinstance(decision, Send):
        logger.info(
            "guard: %s customer %s campaign %s channel %s: %s (%s)",
            type(decision).__name__.lower(),
            recipient.customer_id,
            request.campaign_id,
            request.channel,
            decision.reason.value,
            decision.text,
            extra={
                "decision": type(decision).__name__.lower(),
                "reason": decision.reason.value,
                "customer_id": recipient.customer_id,
                "campaign_id": request.campaign_id,
                "channel": request.channel,
            },
        )
    return decision


def _decide(
    recipient: Recipient, request: SendRequest, policy: GuardPolicy, now: datetime
) -> Decision:
    channel, purpose = request.channel, request.purpose
    if recipient.opted_out_at is not None:
        return Skip(Reason.OPTED_OUT, f"opted out at {recipient.opted_out_at.isoformat()}")
    if recipient.flagged:
        return Skip(Reason.FLAGGED, f"flagged: {recipient.flagged}")

    if channel == "voice" and purpose == "marketing" and recipient.phone:
        code = _calling_code(recipient.phone)
        if code in policy.robot_marketing_blocked_calling_codes:
            return _robot_marketing_reroute(recipient, request, policy, code)

    if channel == "telegram" and recipient.telegram_chat_id is None:
        return Skip(Reason.NO_ADDRESS, "no Telegram chat: the customer has not started the bot")
    if channel == "voice" and not recipient.phone:
        return Skip(Reason.NO_ADDRESS, "no phone number")

    consent = _consent(recipient, channel, purpose, policy)
    if consent is not None:
        return consent

    zone = customer_zone(recipient.time_zone, recipient.phone, request.campaign_time_zone)
    voice_hours = policy.voice_hours if channel == "voice" else None

    cap_until = _cap_until(recipient.last_contacts, request, now)
    if cap_until is not None:
        until = next_opening(cap_until, zone, request.window, voice_hours)
        if until is None:
            return _never_opens(zone, cap_until)
        return Defer(
            until,
            Reason.FREQUENCY_CAP,
            f"contacted within {request.cap_days} days; the cap ends {cap_until.isoformat()}",
        )

    if is_open(now, zone, request.window, voice_hours):
        return Send(channel, now.astimezone(zone))
    opening = next_opening(now, zone, request.window, voice_hours)
    if opening is None:
        return _never_opens(zone, now)
    local = now.astimezone(zone)
    return Defer(
        opening,
        Reason.OUTSIDE_WINDOW,
        f"local time {local:%a %Y-%m-%d %H:%M} {zone.key} is outside the window; "
        f"opens {opening.astimezone(zone):%a %Y-%m-%d %H:%M}",
    )


def _robot_marketing_reroute(
    recipient: Recipient, request: SendRequest, policy: GuardPolicy, code: int
) -> Reroute:
    law = f"robot voice marketing to +{code} numbers is banned (38-FZ art. 18)"
    telegram_ok = (
        "telegram" in request.channels_in_order
        and recipient.telegram_chat_id is not None
        and _consent(recipient, "telegram", "marketing", policy) is None
    )
    if telegram_ok:
        return Reroute("telegram", Reason.ROBOT_MARKETING_BANNED, f"{law}; sending by Telegram")
    return Reroute(MANAGER_TASK, Reason.ROBOT_MARKETING_BANNED, f"{law}; a manager calls instead")


def _consent(recipient: Recipient, channel: str, purpose: str, policy: GuardPolicy) -> Skip | None:
    """None when consent for (channel, purpose) is in force, else the Skip saying why not."""
    entry = recipient.consents.get((channel, purpose))
    if entry is not None:
        if entry.granted:
            return None
        return Skip(
            Reason.CONSENT_WITHDRAWN,
            f"{purpose} by {channel} withdrawn at {entry.at.isoformat()} ({entry.source})",
        )
    if policy.consent_defaults.get(purpose, False):
        return None
    return Skip(Reason.NO_CONSENT, f"no consent on record for {purpose} by {channel}")


def _cap_until(
    contacts: Sequence[ContactRecord], request: SendRequest, now: datetime
) -> datetime | None:
    """When the frequency cap ends, if it is in effect at `now`."""
    if request.cap_exempt or not request.cap_days:
        return None
    counted = [c.at for c in contacts if not c.exempt_from_cap]
    if not counted:
        return None
    until = max(counted).astimezone(UTC) + timedelta(days=request.cap_days)
    return until if until > now else None


def _calling_code(phone: str) -> int | None:
    try:
        code: int | None = phonenumbers.parse(phone, None).country_code
    except phonenumbers.NumberParseException:
        code = None
    if code is None and phone.strip().startswith("+7"):
        return 7  # fail closed: a malformed +7... number is not robot-called for marketing
    return code


def _never_opens(zone: ZoneInfo, after: datetime) -> Skip:
    return Skip(
        Reason.WINDOW_NEVER_OPENS,
        f"the sending window does not open within the horizon after {after.isoformat()} "
        f"({zone.key})",
    )
