"""Whether an unsuccessful attempt is tried again: the campaign's `attempts` policy per outcome.

Shared by the dispatcher (outcomes a channel returns at once) and the voice channel (outcomes a
call's status callbacks bring later).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.campaign.definition import Campaign, Retry
from bot.channel.base import Status


@dataclass(frozen=True, slots=True)
class Verdict:
    """`retry_at` is None when the row fails for good."""

    reason: str
    retry_at: datetime | None


def retry_policy(campaign: Campaign, status: Status, retryable: bool = True) -> Retry | None:
    attempts = campaign.attempts
    if status == Status.NO_ANSWER:
        return attempts.no_answer
    if status == Status.BUSY:
        return attempts.busy
    if status == Status.VOICEMAIL:
        return attempts.voicemail
    if status == Status.FAILED and retryable:
        return attempts.failed
    return None  # a failure that will not get better


def verdict(
    campaign: Campaign, status: Status, attempts: int, now: datetime, retryable: bool = True
) -> Verdict:
    """After `attempts` attempts (this one included) ended in `status`: again when, or never."""
    policy = retry_policy(campaign, status, retryable)
    if policy is not None and attempts <= policy.max:
        return Verdict(status.value, now + timedelta(minutes=policy.delay_minutes))
    return Verdict(status.value, None)
