"""What finished conversations leave behind, whichever channel held them: the opt-outs and the
manager tasks (callbacks, handoffs, detractors), written in the caller's transaction. The
dispatcher passes a batch; a channel taking one reply passes one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo

from sqlalchemy import update
from sqlalchemy.orm import Session

from bot.campaign.tasks import (
    TaskSpec,
    answers_as_records,
    insert_tasks,
    tasks_from_conversation,
)
from bot.db.models import Customer
from bot.dialog.events import Action, Output
from bot.dialog.state import State


@dataclass(frozen=True, slots=True)
class Finished:
    outreach_id: int
    customer_id: int
    campaign_id: str
    state: State
    outputs: Sequence[Output]
    """The outputs of the last step (its actions may ask for a person)."""
    zone: tzinfo
    """The customer's zone: a callback time they said is read in it."""


def conversations_finished(session: Session, finished: Sequence[Finished], now: datetime) -> None:
    opted_out = [f.customer_id for f in finished if f.state.outcome == "opted_out"]
    if opted_out:
        session.execute(
            update(Customer)
            .where(Customer.id.in_(opted_out), Customer.opted_out_at.is_(None))
            .values(opted_out_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    specs: list[TaskSpec] = []
    for f in finished:
        specs += tasks_from_conversation(
            customer_id=f.customer_id,
            outreach_id=f.outreach_id,
            campaign_id=f.campaign_id,
            records=answers_as_records(f.state.answers),
            outcome=f.state.outcome,
            actions=[output for output in f.outputs if isinstance(output, Action)],
            zone=f.zone,
            now=now,
        )
    insert_tasks(session, specs, now)
