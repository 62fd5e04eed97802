"""The channel tests' shop: customers with a delivered order, and outreach rows as the planner
would insert them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.app import App
from bot.campaign.loader import LoadedCampaign
from bot.db.models import Consent, Customer, Order
from bot.db.outreach import CampaignRun, Outreach

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def queue(app: App, loaded: LoadedCampaign, *customer_ids: int) -> None:
    """Outreach rows `planned` for the campaign (what plan_run inserts)."""
    with app.sessions.begin() as session:
        run_row = CampaignRun(
            campaign_id=loaded.campaign.id, scheduled_for=NOW, created_at=NOW, planned=0
        )
        session.add(run_row)
        session.flush()
        for customer_id in customer_ids:
            session.add(
                Outreach(
                    campaign_id=loaded.campaign.id,
                    customer_id=customer_id,
                    cycle=f"c{customer_id}",
                    run_id=run_row.id,
                    state="planned",
                    script_id=loaded.campaign.script,
                    created_at=NOW,
                    updated_at=NOW,
                )
            )


def customer(
    app: App,
    name: str,
    *,
    locale: str = "ru",
    phone: str | None = None,
    chat: int | None = None,
    zone: str = "Europe/Moscow",
    marketing: bool = False,
    items: tuple[dict[str, str], ...] = ({"name": "Кофе"},),
) -> int:
    """A customer with one order delivered 3 days ago (the post-order campaigns' audience)."""
    with app.sessions.begin() as session:
        row = Customer(
            external_id=name,
            name=name,
            first_name=name,
            phone=phone,
            telegram_chat_id=chat,
            locale=locale,
            time_zone=zone,
            tags=[],
            created_at=NOW - timedelta(days=400),
            updated_at=NOW - timedelta(days=400),
        )
        session.add(row)
        session.flush()
        session.add(
            Order(
                external_id=f"{name}-order",
                customer_id=row.id,
                placed_at=NOW - timedelta(days=5),
                delivered_at=NOW - timedelta(days=3),
                currency="RUB",
                status="delivered",
                amount_minor=1990_00,
                items=list(items),
            )
        )
        if marketing:
            session.add(
                Consent(
                    customer_id=row.id,
                    channel="telegram",
                    purpose="marketing",
                    granted=True,
                    at=NOW - timedelta(days=30),
                    source="checkout form",
                )
            )
        return row.id
