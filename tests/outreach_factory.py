"""Outreach rows as the planner would insert them, for channel tests that pick their customers."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.app import App
from bot.campaign.loader import LoadedCampaign
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
