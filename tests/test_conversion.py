"""Conversion attribution: the first non-void order after a contact, within the window, converts."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from bot.app import App
from bot.campaign.conversion import attribute_conversions
from bot.campaign.definition import Campaign
from bot.campaign.loader import load_campaign
from bot.db.models import Customer, Order
from bot.db.outreach import CampaignRun, Outreach
from tests.conftest import NOW

CAMPAIGN = """\
id: {id}
title: Test campaign
audience:
  kind: {kind}
script: winback
channels: [telegram]
purpose: survey
schedule:
  cron: "0 12 * * *"
  time_zone: Europe/Moscow
window:
  from: "10:00"
  to: "20:00"
attribution_days: 30
"""
CONTACT = NOW - timedelta(days=40)
"""When every row below was contacted (or held out)."""


def campaign(tmp_path: Path, id: str = "winback", kind: str = "lapsed") -> Campaign:
    path = tmp_path / f"{id}.yaml"
    path.write_text(CAMPAIGN.format(id=id, kind=kind), encoding="utf-8")
    return load_campaign(path).campaign


def row(
    app: App,
    name: str,
    campaign_id: str = "winback",
    *,
    state: str = "done",
    holdout: bool = False,
    orders: tuple[tuple[timedelta, str], ...] = (),
) -> int:
    """A customer with one outreach row contacted at CONTACT and orders at CONTACT + offset."""
    with app.sessions.begin() as session:
        customer = Customer(external_id=name, created_at=CONTACT, updated_at=CONTACT)
        session.add(customer)
        run = session.scalar(select(CampaignRun).where(CampaignRun.campaign_id == campaign_id))
        if run is None:
            run = CampaignRun(campaign_id=campaign_id, scheduled_for=CONTACT, created_at=CONTACT)
            session.add(run)
        session.flush()
        session.add(
            Outreach(
                campaign_id=campaign_id,
                customer_id=customer.id,
                cycle="2026-10",
                run_id=run.id,
                state="skipped" if holdout else state,
                skip_reason="holdout" if holdout else None,
                holdout=holdout,
                script_id="winback",
                created_at=CONTACT - (timedelta(0) if holdout else timedelta(hours=2)),
                contacted_at=None if holdout else CONTACT,
                # updated_at moves with every later write: attribution must not read it.
                updated_at=CONTACT + timedelta(days=3),
            )
        )
        for i, (offset, status) in enumerate(orders):
            session.add(
                Order(
                    external_id=f"{name}-{i}",
                    customer_id=customer.id,
                    placed_at=CONTACT + offset,
                    currency="RUB",
                    status=status,
                    items=[],
                )
            )
        return customer.id


def converted(app: App) -> dict[str, datetime | None]:
    with app.sessions() as session:
        found = session.execute(
            select(Customer.external_id, Outreach.converted_at).join(
                Outreach, Outreach.customer_id == Customer.id
            )
        )
        return {name: at for name, at in found}


def won_back(app: App) -> dict[str, datetime | None]:
    with app.sessions() as session:
        found = session.execute(select(Customer.external_id, Customer.won_back_at))
        return {name: at for name, at in found}


def test_orders_inside_the_window_convert_contacted_and_holdout_rows(
    app: App, tmp_path: Path
) -> None:
    day = timedelta(days=1)
    row(app, "inside", orders=((-5 * day, "delivered"), (10 * day, "placed"), (20 * day, "paid")))
    row(app, "talking", state="in_conversation", orders=((1 * day, "placed"),))
    row(app, "last_day", orders=((30 * day, "delivered"),))
    row(app, "too_late", orders=((30 * day + timedelta(seconds=1), "delivered"),))
    row(app, "before", orders=((-timedelta(minutes=1), "delivered"),))
    row(app, "cancelled", orders=((5 * day, "cancelled"),))
    row(app, "cancelled_then_paid", orders=((5 * day, "cancelled"), (6 * day, "paid")))
    row(app, "failed", state="failed", orders=((2 * day, "paid"),))
    row(app, "held_inside", holdout=True, orders=((2 * day, "paid"),))
    row(app, "held_too_late", holdout=True, orders=((31 * day, "paid"),))
    row(app, "held_cancelled", holdout=True, orders=((2 * day, "cancelled"),))
    row(app, "survey", "feedback", orders=((2 * day, "paid"),))
    row(app, "other_campaign", "unknown", orders=((2 * day, "paid"),))
    campaigns = [campaign(tmp_path), campaign(tmp_path, "feedback", "post-order")]

    first = attribute_conversions(app, NOW, campaigns)

    assert converted(app) == {
        "inside": CONTACT + 10 * day,
        "talking": CONTACT + day,
        "last_day": CONTACT + 30 * day,
        "too_late": None,
        "before": None,
        "cancelled": None,
        "cancelled_then_paid": CONTACT + 6 * day,
        "failed": None,
        "held_inside": CONTACT + 2 * day,
        "held_too_late": None,
        "held_cancelled": None,
        "survey": CONTACT + 2 * day,
        "other_campaign": None,
    }
    assert first.converted == {"winback": 5, "feedback": 1}
    # Won back: converted contacted rows of the win-back campaign only, not holdout, not a survey.
    marked = {name for name, at in won_back(app).items() if at is not None}
    assert marked == {"inside", "talking", "last_day", "cancelled_then_paid"}
    assert won_back(app)["inside"] == CONTACT + 10 * day
    assert first.won_back == 4

    again = attribute_conversions(app, NOW, campaigns)

    assert again.converted == {"winback": 0, "feedback": 0} and again.won_back == 0
    assert converted(app)["inside"] == CONTACT + 10 * day


def test_orders_after_now_and_an_existing_won_back_are_left_alone(app: App, tmp_path: Path) -> None:
    day = timedelta(days=1)
    row(app, "future", orders=((41 * day, "paid"),))
    earlier = row(app, "earlier", orders=((3 * day, "paid"),))
    with app.sessions.begin() as session:
        customer = session.get(Customer, earlier)
        assert customer is not None
        customer.won_back_at = CONTACT - 100 * day

    result = attribute_conversions(app, CONTACT + 20 * day, [campaign(tmp_path)])

    assert converted(app) == {"future": None, "earlier": CONTACT + 3 * day}
    assert result.won_back == 0
    assert won_back(app)["earlier"] == CONTACT - 100 * day
