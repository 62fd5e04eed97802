"""Manager tasks: what conversations and the guard create, the table, the store, the CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

import bot.db.models
import bot.db.outreach
import bot.db.tasks  # noqa: F401 - the models Alembic compares against
from bot.app import App
from bot.campaign.tasks import (
    TaskDoneError,
    TaskNotFoundError,
    TaskSpec,
    answers_as_records,
    complete_task,
    insert_tasks,
    postpone_task,
    rerouted_contact,
    tasks_from_conversation,
)
from bot.cli.app import app as cli
from bot.db.base import Base
from bot.db.models import Customer, Manager
from bot.db.outreach import CampaignRun, Outreach
from bot.db.tasks import ManagerTask
from bot.dialog import engine, model
from bot.dialog.events import Action, Answer, Output, Record
from bot.dialog.library import Library, load_library
from bot.settings import get_settings

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
MOSCOW = ZoneInfo("Europe/Moscow")
ROOT = Path(__file__).resolve().parents[1]


def conversation(
    records: list[Record] | None = None,
    outcome: str | None = "feedback_given",
    actions: list[Action] | None = None,
    zone: ZoneInfo | None = None,
) -> list[TaskSpec]:
    return tasks_from_conversation(
        customer_id=7,
        outreach_id=70,
        campaign_id="post_order_feedback",
        records=records or [],
        outcome=outcome,
        now=NOW,
        actions=actions or [],
        zone=zone,
    )


def kinds(specs: list[TaskSpec]) -> dict[str, TaskSpec]:
    by_kind = {spec.kind: spec for spec in specs}
    assert len(by_kind) == len(specs), "one task per kind"
    return by_kind


# --- the pure core -------------------------------------------------------------------------------


def test_a_booked_time_is_read_in_the_customer_zone() -> None:
    specs = kinds(
        conversation(
            [Record("callback_at", "2026-11-23T15:00:00")], outcome="callback_booked", zone=MOSCOW
        )
    )

    callback = specs["callback"]
    assert callback.due_at == datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    assert "2026-11-23 15:00 (Europe/Moscow time)" in callback.note
    assert (callback.customer_id, callback.outreach_id, callback.campaign_id) == (
        7,
        70,
        "post_order_feedback",
    )


def test_a_booked_time_with_an_offset_or_in_the_past() -> None:
    with_offset = kinds(conversation([Record("callback_at", "2026-11-24T09:30:00+05:00")]))
    past = kinds(conversation([Record("callback_at", "2026-11-01T10:00:00")], zone=MOSCOW))
    garbled = kinds(conversation([Record("callback_at", "when the moon is full")]))

    assert with_offset["callback"].due_at == datetime(2026, 11, 24, 4, 30, tzinfo=UTC)
    assert past["callback"].due_at == NOW
    assert garbled["callback"].due_at == NOW
    assert "when the moon is full" in garbled["callback"].note


def test_a_callback_without_a_time_is_due_in_an_hour_or_when_the_script_says() -> None:
    bare = kinds(conversation(outcome="callback_booked"))
    task = model.CreateTask(note="Match the price.", due_in_hours=24)
    scripted = kinds(conversation(outcome="callback_booked", actions=[Action("booked", task)]))

    assert bare["callback"].due_at == NOW + timedelta(hours=1)
    assert scripted["callback"].due_at == NOW + timedelta(hours=24)
    assert "Match the price." in scripted["callback"].note


def test_handoff_and_transfer_are_due_now() -> None:
    by_outcome = kinds(conversation(outcome="handed_off"))
    by_action = kinds(
        conversation(
            outcome="declined",
            actions=[Action("x", model.Transfer()), Action("x", model.Handoff())],
        )
    )

    assert by_outcome["handoff"].due_at == NOW
    assert by_outcome["handoff"].note == "conversation ended: handed_off"
    assert by_action["handoff"].due_at == NOW
    assert "transfer to manager" in by_action["handoff"].note


def test_a_detractor_gets_a_task_with_the_score_and_the_reason() -> None:
    records = [Record("nps", 3), Record("reason", "price"), Record("reason_text", "late courier")]

    detractor = kinds(conversation(records))["detractor"]

    assert detractor.due_at == NOW
    assert detractor.note == "NPS 3; reason: price; reason text: late courier"
    assert conversation([Record("nps", 7)]) == []
    assert conversation([Record("nps", 10)]) == []


def test_an_opted_out_customer_gets_no_task() -> None:
    records = [Record("nps", 2), Record("callback_at", "2026-11-23T15:00:00")]

    assert conversation(records, outcome="opted_out") == []
    assert conversation([*records, Record("opt_out", True)], outcome=None) == []


def test_a_rerouted_contact_is_due_now_with_the_reason() -> None:
    spec = rerouted_contact(
        customer_id=1, outreach_id=2, campaign_id="winback", reason="38-FZ art. 18", now=NOW
    )

    assert spec == TaskSpec("contact", 1, 2, "winback", NOW, "38-FZ art. 18")


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        tasks_from_conversation(
            customer_id=1,
            outreach_id=1,
            campaign_id="c",
            records=[],
            outcome=None,
            now=datetime(2026, 11, 22, 12, 0),  # noqa: DTZ001 - the point of the test
        )


@pytest.fixture(scope="module")
def library() -> Library:
    loaded = load_library(ROOT / "dialogs")
    assert loaded.errors == []
    return loaded


def test_every_starter_step_that_asks_for_a_human_creates_a_task(library: Library) -> None:
    """A step with create_task/handoff/transfer, or one ending callback_booked/handed_off."""
    human = (model.CreateTask, model.Handoff, model.Transfer)
    checked = 0
    for (script_id, _locale), loaded in library.scripts.items():
        for step_id, step in loaded.script.steps.items():
            asks_for_human = any(isinstance(a, human) for a in step.do) or step.end in (
                "callback_booked",
                "handed_off",
            )
            if not asks_for_human:
                continue
            outcome = step.end or ("feedback_given" if step.next is None else None)
            specs = conversation(outcome=outcome, actions=[Action(step_id, a) for a in step.do])
            assert specs, f"{script_id}.{step_id}: no task"
            checked += 1
    assert checked == 18  # winback 5, post_order_feedback 3, welcome 1; in two locales


def play(library: Library, script_id: str, locale: str, answers: list[str]) -> list[Output]:
    loaded = library.script(script_id, locale)
    pack = library.packs[locale]
    at = NOW.astimezone(MOSCOW)
    state, outputs = engine.start(loaded.script, loaded.version, pack)
    for text in answers:
        state, more = engine.advance(
            loaded.script, pack, state, Answer(text=text, at=at), version=loaded.version
        )
        outputs += more
    assert state.finished
    return outputs


def test_a_real_detractor_conversation_books_a_callback_and_a_detractor_task(
    library: Library,
) -> None:
    outputs = play(
        library,
        "post_order_feedback",
        "en",
        ["yes", "4", "the parcel was damaged", "yes", "tomorrow at 3 pm"],
    )
    ends = [o.outcome for o in outputs if hasattr(o, "outcome")]

    specs = kinds(
        conversation(
            [o for o in outputs if isinstance(o, Record)],
            outcome=ends[-1],
            actions=[o for o in outputs if isinstance(o, Action)],
            zone=MOSCOW,
        )
    )

    assert set(specs) == {"callback", "detractor"}
    assert specs["callback"].due_at == datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # 15:00 Moscow
    assert "Low score for the order" in specs["callback"].note
    assert specs["detractor"].note == "NPS 4; reason text: the parcel was damaged"


def test_answers_as_records_keeps_every_answer() -> None:
    assert answers_as_records({"nps": 5, "reason_text": "slow"}) == (
        Record("nps", 5),
        Record("reason_text", "slow"),
    )


# --- the table and the store (SQLite and PostgreSQL) ---------------------------------------------


def test_the_migrated_schema_matches_the_models(app: App) -> None:
    assert "manager_tasks" in inspect(app.engine).get_table_names()
    with app.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def seed(app: App) -> tuple[int, int, int]:
    """(customer with manager Ann, customer without a manager, an outreach row of the first)."""
    with app.sessions.begin() as session:
        ann = Manager(name="Ann")
        session.add(ann)
        session.flush()
        ivan = _customer("c1", "Ivan Petrov", "+79161234567", ann.id, "Europe/Moscow")
        bob = _customer("c2", "Bob Smith", "+12025550123", None, "America/New_York")
        session.add_all([ivan, bob])
        run = CampaignRun(campaign_id="winback", scheduled_for=NOW, created_at=NOW)
        session.add(run)
        session.flush()
        row = Outreach(
            campaign_id="winback",
            customer_id=ivan.id,
            cycle="lapse:2026-01-01",
            run_id=run.id,
            state="done",
            script_id="winback",
            created_at=NOW,
            updated_at=NOW,
        )
        other = Outreach(
            campaign_id="winback",
            customer_id=bob.id,
            cycle="lapse:2026-02-01",
            run_id=run.id,
            state="skipped",
            script_id="winback",
            created_at=NOW,
            updated_at=NOW,
        )
        session.add_all([row, other])
        session.flush()
        return ivan.id, bob.id, row.id


def _customer(
    external_id: str, name: str, phone: str, manager_id: int | None, zone: str
) -> Customer:
    return Customer(
        external_id=external_id,
        name=name,
        phone=phone,
        manager_id=manager_id,
        time_zone=zone,
        created_at=NOW,
        updated_at=NOW,
    )


def _outreach_of(session: Session, customer_id: int) -> int:
    return session.scalars(select(Outreach.id).where(Outreach.customer_id == customer_id)).one()


def test_inserting_the_same_tasks_twice_inserts_them_once(app: App) -> None:
    ivan, bob, outreach = seed(app)
    specs = [
        TaskSpec("callback", ivan, outreach, "winback", NOW + timedelta(hours=3), "call at 15:00"),
        TaskSpec("detractor", ivan, outreach, "winback", NOW, "NPS 2"),
        TaskSpec("detractor", ivan, outreach, "winback", NOW, "NPS 2 again in the same batch"),
    ]
    with app.sessions.begin() as session:
        bob_row = _outreach_of(session, bob)
        contact = rerouted_contact(
            customer_id=bob, outreach_id=bob_row, campaign_id="winback", reason="38-FZ", now=NOW
        )
        assert insert_tasks(session, [*specs, contact], NOW) == 3
    with app.sessions.begin() as session:
        assert insert_tasks(session, [*specs, contact], NOW + timedelta(minutes=5)) == 0
        assert insert_tasks(session, [], NOW) == 0
    with app.sessions() as session:
        rows = session.scalars(select(ManagerTask).order_by(ManagerTask.id)).all()
        ann = session.scalars(select(Manager.id)).one()
        assert [(r.kind, r.customer_id, r.manager_id, r.state) for r in rows] == [
            ("callback", ivan, ann, "open"),
            ("detractor", ivan, ann, "open"),
            ("contact", bob, None, "open"),
        ]
        assert rows[0].due_at == NOW + timedelta(hours=3)
        assert rows[0].created_at == NOW and rows[1].note == "NPS 2"


def test_insert_does_not_commit_and_refuses_unknown_kinds(app: App) -> None:
    ivan, _, outreach = seed(app)
    with app.sessions() as session:
        insert_tasks(session, [TaskSpec("callback", ivan, outreach, "winback", NOW, "x")], NOW)
        session.rollback()
        assert session.scalars(select(ManagerTask)).all() == []
        with pytest.raises(ValueError, match="unknown task kind 'email'"):
            insert_tasks(session, [TaskSpec("email", ivan, outreach, "winback", NOW, "x")], NOW)


def test_done_and_later(app: App) -> None:
    ivan, _, outreach = seed(app)
    with app.sessions.begin() as session:
        insert_tasks(session, [TaskSpec("callback", ivan, outreach, "winback", NOW, "call")], NOW)
    with app.sessions.begin() as session:
        task_id = session.scalars(select(ManagerTask.id)).one()
        postpone_task(session, task_id, NOW + timedelta(days=1), NOW + timedelta(minutes=1))
    with app.sessions.begin() as session:
        complete_task(session, task_id, NOW + timedelta(hours=1))
    with app.sessions.begin() as session:
        complete_task(session, task_id, NOW + timedelta(hours=2))  # no-op
        with pytest.raises(TaskDoneError, match=f"task {task_id}: is already done"):
            postpone_task(session, task_id, NOW + timedelta(days=2), NOW)
        with pytest.raises(TaskNotFoundError, match="task 999: no such task"):
            complete_task(session, 999, NOW)
        with pytest.raises(TaskNotFoundError):
            postpone_task(session, 999, NOW, NOW)
    with app.sessions() as session:
        task = session.get_one(ManagerTask, task_id)
        assert (task.state, task.done_at, task.updated_at) == (
            "done",
            NOW + timedelta(hours=1),
            NOW + timedelta(hours=1),
        )
        assert task.due_at == NOW + timedelta(days=1)


# --- the CLI -------------------------------------------------------------------------------------


@pytest.fixture
def cli_app(
    app: App, db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[App]:
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.chdir(tmp_path)  # no stray .env from the checkout
    get_settings.cache_clear()
    yield app
    get_settings.cache_clear()


def test_the_tasks_commands(cli_app: App) -> None:
    ivan, bob, outreach = seed(cli_app)
    with cli_app.sessions.begin() as session:
        bob_row = _outreach_of(session, bob)
        insert_tasks(
            session,
            [
                TaskSpec("callback", ivan, outreach, "winback", NOW + timedelta(hours=3), "call"),
                TaskSpec("contact", bob, bob_row, "winback", NOW, "38-FZ: a manager calls"),
            ],
            NOW,
        )
        ids = dict(session.execute(select(ManagerTask.kind, ManagerTask.id)).all())
    runner = CliRunner()

    table = runner.invoke(cli, ["tasks", "list"])
    as_json = runner.invoke(cli, ["tasks", "list", "--format", "json"])
    anns = runner.invoke(cli, ["tasks", "list", "--manager", "Ann", "--format", "json"])
    unknown = runner.invoke(cli, ["tasks", "list", "--manager", "Zoe"])

    assert table.exit_code == 0, table.output
    assert "Ivan Petrov" in table.output and "+79161234567" in table.output
    assert "2026-11-22 18:00" in table.output  # 15:00 UTC in Moscow
    assert "2026-11-22 07:00" in table.output  # 12:00 UTC in New York
    rows = json.loads(as_json.output)
    assert [(r["kind"], r["customer"]) for r in rows] == [
        ("contact", "Bob Smith"),
        ("callback", "Ivan Petrov"),
    ]
    assert rows[1]["due_local"] == "2026-11-22T18:00:00+03:00"
    assert rows[1]["manager"] == "Ann" and rows[0]["manager"] == ""
    assert [r["customer"] for r in json.loads(anns.output)] == ["Ivan Petrov"]
    assert unknown.exit_code != 0
    assert "no manager 'Zoe'; known: 1 Ann" in str(unknown.exception)

    done = runner.invoke(cli, ["tasks", "done", str(ids["contact"])])
    again = runner.invoke(cli, ["tasks", "done", str(ids["contact"])])
    later = runner.invoke(cli, ["tasks", "later", str(ids["callback"]), "--at", "2099-01-05 10:30"])
    bad = runner.invoke(cli, ["tasks", "later", str(ids["callback"]), "--at", "tomorrow"])
    past = runner.invoke(cli, ["tasks", "later", str(ids["callback"]), "--at", "2000-01-01 10:00"])
    missing = runner.invoke(cli, ["tasks", "done", "999"])
    after = runner.invoke(cli, ["tasks", "list", "--format", "json"])
    everything = runner.invoke(cli, ["tasks", "list", "--all"])

    assert done.exit_code == 0 and again.exit_code == 0, done.output + again.output
    assert later.exit_code == 0, later.output
    assert "due 2099-01-05 10:30 Europe/Moscow (2099-01-05T07:30:00+00:00)" in later.output
    assert bad.exit_code != 0 and "is not a local time" in str(bad.exception)
    assert past.exit_code != 0 and "is not in the future" in str(past.exception)
    assert missing.exit_code != 0 and "task 999: no such task" in str(missing.exception)
    assert [(r["kind"], r["due_at"]) for r in json.loads(after.output)] == [
        ("callback", "2099-01-05T07:30:00+00:00")
    ]
    assert everything.exit_code == 0 and "done" in everything.output


def test_an_empty_list(cli_app: App) -> None:
    result = CliRunner().invoke(cli, ["tasks", "list"])

    assert result.exit_code == 0, result.output
    assert "no open tasks" in result.output
