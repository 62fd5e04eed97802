"""The planner fills the outreach queue: idempotent per run and per (campaign, customer, cycle)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select

from bot.app import App
from bot.audience.cohort import CohortMember
from bot.audience.rhythm import refresh_rhythm
from bot.campaign.loader import LoadedCampaign, load_campaign
from bot.campaign.planner import cycle_of, in_holdout, plan_run
from bot.campaign.states import FINAL, MOVES, STATES, can_move
from bot.db.models import Customer, Order
from bot.db.outreach import CampaignRun, Outreach
from tests.audience_factory import T0, add_customer, add_order, at

RUN = at("2026-11-22")

CAMPAIGN = """\
id: {id}
title: Test campaign
audience:
  kind: {kind}
script: post_order_feedback
channels: [telegram]
purpose: survey
schedule:
  cron: "0 12 * * *"
  time_zone: Europe/Moscow
window:
  from: "10:00"
  to: "20:00"
holdout_share: {holdout}
"""


def campaign(
    tmp_path: Path, kind: str = "post-order", holdout: float = 0.0, id: str = "feedback"
) -> LoadedCampaign:
    path = tmp_path / f"{id}.yaml"
    path.write_text(CAMPAIGN.format(id=id, kind=kind, holdout=holdout), encoding="utf-8")
    return load_campaign(path)


def delivered(app: App, customer_id: int, day: datetime) -> str:
    """An order placed two days before `day` and delivered on `day`; its external id."""
    return add_order(app, customer_id, day - timedelta(days=2), delivered_at=day)


def rows(app: App) -> list[Outreach]:
    with app.sessions() as session:
        return list(session.scalars(select(Outreach).order_by(Outreach.id)))


def add_many(app: App, count: int, delivered_at: datetime) -> list[int]:
    """`count` customers with one order each, delivered at `delivered_at`, in one transaction."""
    with app.sessions.begin() as session:
        customers = [
            Customer(external_id=f"bulk{i}", tags=[], created_at=T0, updated_at=T0)
            for i in range(count)
        ]
        session.add_all(customers)
        session.flush()
        session.add_all(
            Order(
                external_id=f"bulk-order{i}",
                customer_id=customer.id,
                placed_at=delivered_at - timedelta(days=2),
                delivered_at=delivered_at,
                currency="RUB",
                status="delivered",
                amount_minor=100_00,
                items=[],
            )
            for i, customer in enumerate(customers)
        )
        return [customer.id for customer in customers]


def test_a_run_plans_the_cohort(app: App, tmp_path: Path) -> None:
    ids = [add_customer(app, f"c{i}") for i in range(3)]
    for customer_id in ids:
        delivered(app, customer_id, RUN - timedelta(days=3))
    late = add_customer(app, "too-late")
    delivered(app, late, RUN - timedelta(days=20))
    refresh_rhythm(app.engine)

    summary = plan_run(app, campaign(tmp_path), RUN)

    assert (summary.planned, summary.held_out, summary.already_present) == (3, 0, 0)
    assert summary.created
    planned = rows(app)
    assert sorted(r.customer_id for r in planned) == sorted(ids)
    assert {r.state for r in planned} == {"planned"}
    assert {r.run_id for r in planned} == {summary.run_id}
    assert {r.script_id for r in planned} == {"post_order_feedback"}
    assert all(r.attempts == 0 and not r.holdout and r.skip_reason is None for r in planned)
    with app.sessions() as session:
        run = session.get(CampaignRun, summary.run_id)
        assert run is not None
        assert (run.campaign_id, run.scheduled_for, run.planned, run.held_out) == (
            "feedback",
            RUN,
            3,
            0,
        )


def test_planning_the_same_run_twice_changes_nothing(app: App, tmp_path: Path) -> None:
    for i in range(3):
        delivered(app, add_customer(app, f"c{i}"), RUN - timedelta(days=3))
    refresh_rhythm(app.engine)
    loaded = campaign(tmp_path, holdout=0.3)
    first = plan_run(app, loaded, RUN)
    before = [(r.id, r.cycle, r.state, r.updated_at) for r in rows(app)]
    # A new customer joins the audience: the existing run still plans nothing more.
    delivered(app, add_customer(app, "newcomer"), RUN - timedelta(days=3))
    refresh_rhythm(app.engine)

    again = plan_run(app, loaded, RUN)

    assert not again.created
    assert again.run_id == first.run_id
    assert (again.planned, again.held_out) == (first.planned, first.held_out)
    assert again.already_present == 0
    assert [(r.id, r.cycle, r.state, r.updated_at) for r in rows(app)] == before
    with app.sessions() as session:
        assert session.scalar(select(func.count()).select_from(CampaignRun)) == 1


def test_a_new_run_adds_new_cycles_and_never_duplicates_a_contact(app: App, tmp_path: Path) -> None:
    loaded = campaign(tmp_path)
    stays = add_customer(app, "stays")
    buys_again = add_customer(app, "buys-again")
    delivered(app, stays, RUN - timedelta(days=3))
    delivered(app, buys_again, RUN - timedelta(days=3))
    refresh_rhythm(app.engine)
    first = plan_run(app, loaded, RUN)
    assert first.planned == 2

    newer = delivered(app, buys_again, RUN + timedelta(days=1))
    refresh_rhythm(app.engine)
    second = plan_run(app, loaded, RUN + timedelta(days=3))

    # "stays" is still in the window with the same order: already planned, not duplicated.
    assert (second.planned, second.held_out, second.already_present) == (1, 0, 1)
    planned = rows(app)
    assert len(planned) == 3
    keys = [(r.campaign_id, r.customer_id, r.cycle) for r in planned]
    assert len(set(keys)) == len(keys)
    assert [r.cycle for r in planned if r.run_id == second.run_id] == [newer]


def test_post_order_cycles_are_one_per_order(app: App, tmp_path: Path) -> None:
    loaded = campaign(tmp_path)
    customer = add_customer(app, "regular")
    first_order = delivered(app, customer, RUN - timedelta(days=3))
    refresh_rhythm(app.engine)
    plan_run(app, loaded, RUN)
    # The next day the same order is still in the 2..7-day window: asked once, not twice.
    assert plan_run(app, loaded, RUN + timedelta(days=1)).already_present == 1
    second_order = delivered(app, customer, RUN + timedelta(days=5))
    refresh_rhythm(app.engine)
    plan_run(app, loaded, RUN + timedelta(days=8))

    assert [(r.customer_id, r.cycle) for r in rows(app)] == [
        (customer, first_order),
        (customer, second_order),
    ]


def test_holdout_share_is_kept_stable_and_stored_as_skipped(app: App, tmp_path: Path) -> None:
    count, share = 2_000, 0.2
    ids = add_many(app, count, RUN - timedelta(days=3))
    refresh_rhythm(app.engine)
    loaded = campaign(tmp_path, holdout=share)

    summary = plan_run(app, loaded, RUN)

    assert summary.planned + summary.held_out == count
    # Binomial(2000, 0.2): sd ~ 18; 3.5 sd either side.
    assert abs(summary.held_out - count * share) < 65
    planned = rows(app)
    held = {r.customer_id for r in planned if r.holdout}
    assert len(held) == summary.held_out
    assert held == {i for i in ids if in_holdout("feedback", i, share)}
    for row in planned:
        if row.holdout:
            assert (row.state, row.skip_reason) == ("skipped", "holdout")
        else:
            assert (row.state, row.skip_reason) == ("planned", None)

    # Replanning from scratch (and planning a later run) puts the same customers in the holdout.
    with app.sessions.begin() as session:
        session.execute(delete(Outreach))
        session.execute(delete(CampaignRun))
    replanned = plan_run(app, loaded, RUN + timedelta(hours=1))
    assert replanned.held_out == summary.held_out
    assert {r.customer_id for r in rows(app) if r.holdout} == held
    later = plan_run(app, loaded, RUN + timedelta(days=1))
    assert (later.planned, later.held_out, later.already_present) == (0, 0, count)


def test_holdout_is_a_stable_hash_per_campaign() -> None:
    assert not any(in_holdout("c", i, 0.0) for i in range(1000))
    picked = [i for i in range(10_000) if in_holdout("c", i, 0.1)]
    assert picked == [i for i in range(10_000) if in_holdout("c", i, 0.1)]
    assert 900 < len(picked) < 1100
    other = {i for i in range(10_000) if in_holdout("other", i, 0.1)}
    assert other != set(picked)
    # A larger share keeps everyone a smaller share held out.
    assert set(picked) <= {i for i in range(10_000) if in_holdout("c", i, 0.2)}


def _member(**fields: object) -> CohortMember:
    return CohortMember(customer_id=1, external_id="x", name=None, reason="r", **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "member", "cycle"),
    [
        ("post-order", _member(order_external_id="o-17"), "o-17"),
        ("lapsed", _member(last_order_at=at("2026-03-04", 23)), "lapse:2026-03-04"),
        ("welcome", _member(), "welcome"),
        ("anniversary", _member(), "2026"),
        ("birthday", _member(), "2026"),
    ],
)
def test_cycles_per_audience(tmp_path: Path, kind: str, member: CohortMember, cycle: str) -> None:
    loaded = campaign(tmp_path, kind=kind)
    assert cycle_of(loaded.campaign, member, RUN) == cycle


def test_anniversary_cycle_is_the_year_in_the_campaign_zone(tmp_path: Path) -> None:
    # 31 Dec 22:00 UTC is already 1 January in Moscow.
    loaded = campaign(tmp_path, kind="anniversary")
    assert cycle_of(loaded.campaign, _member(), at("2026-12-31", 22)) == "2027"


def test_final_states_never_change() -> None:
    assert {"done", "failed", "skipped"} == FINAL
    for final in FINAL:
        assert not any(can_move(final, target) for target in STATES)
    assert set(MOVES) == set(STATES)


def test_allowed_moves() -> None:
    assert can_move("planned", "due")
    assert can_move("due", "sending")
    assert can_move("sending", "in_conversation")
    assert can_move("in_conversation", "done")
    assert can_move("sending", "retry")
    assert can_move("retry", "sending")
    assert can_move("planned", "skipped")
    assert not can_move("sending", "planned")
    assert not can_move("in_conversation", "sending")
    assert not can_move("planned", "planned")
    with pytest.raises(ValueError, match="unknown outreach state 'sent'"):
        can_move("sending", "sent")
