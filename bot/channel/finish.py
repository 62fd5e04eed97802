"""What a finished conversation leaves behind, whichever channel held it: the opt-out and the
manager tasks (callbacks, handoffs, detractors), written in the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo

from sqlalchemy import update
from sqlalchemy.orm import Session

from bot.campaign.tasks import answers_as_records, insert_tasks, tasks_from_conversation
from bot.db.models import Customer
from bot.dialog.events import Action, Output
from bot.dialog.state import State


def conversation_finished(
    session: Session,
    *,
    outreach_id: int,
    customer_id: int,
    campaign_id: str,
    state: State,
    outputs: Sequence[Output],
    zone: tzinfo,
    now: datetime,
) -> None:
    if state.outcome == "opted_out":
        session.execute(
            update(Customer)
            .where(Customer.id == customer_id, Customer.opted_out_at.is_(None))
            .values(opted_out_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    specs = tasks_from_conversation(
        customer_id=customer_id,
        outreach_id=outreach_id,
        campaign_id=campaign_id,
        records=answers_as_records(state.answers),
        outcome=state.outcome,
        actions=[output for output in outputs if isinstance(output, Action)],
        zone=zone,
        now=now,
    )
    insert_tasks(session, specs, now)
