"""Manager tasks from conversations and from the guard: a pure core and the store functions.

`tasks_from_conversation` reads what a finished (or abandoned) conversation recorded and how it
ended, and names the tasks a person must do; `rerouted_contact` is the task for a contact the
compliance guard handed to a manager. Neither reads a clock or a database. `insert_tasks`,
`complete_task` and `postpone_task` write the rows (bot.db.tasks.ManagerTask) inside the caller's
transaction. See docs/tasks.md.

Which conversations ask for a person (the starter scripts in dialogs/):

- a `callback_at` record (post_order_feedback: a detractor names a time) -> `callback` due then;
- the outcome `callback_booked` without a time (winback's price match, senior call, competitor
  terms, delivery to a new city; post_order_feedback's "any time") -> `callback` due after the
  script's `create_task.due_in_hours`, or in an hour when the script gave none;
- the outcome `handed_off` (or `handoff`/`transfer`), or a `handoff`/`transfer` action (welcome's
  problem with the first order) -> `handoff` due now;
- a `create_task` action in a conversation that ended otherwise (post_order_feedback's review link,
  winback's complaint without a call) -> `handoff` due after its `due_in_hours`;
- an `nps` record of 0-6 -> `detractor` due now, with the score and the reason in the note.

A conversation that ended with an opt-out creates nothing: the customer asked not to be contacted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from bot.db.models import Customer
from bot.db.tasks import KINDS, ManagerTask
from bot.db.upsert import dialect_insert
from bot.dialog import model
from bot.dialog.events import Action, JsonValue, Record
from bot.errors import InputError

CALLBACK_WITHOUT_TIME = timedelta(hours=1)
"""A callback booked without a time (and without the script's `due_in_hours`) is due this soon."""
DETRACTOR_MAX = 6
HANDOFF_OUTCOMES = frozenset({"handed_off", "handoff", "transfer", "transferred"})
OPTED_OUT = "opted_out"
NOTE_MAX = 1000
"""Notes are a short why; a long free-text answer is cut to this many characters."""
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """A task to create: what, for whom, from which contact, when, and why."""

    kind: str
    customer_id: int
    outreach_id: int | None
    campaign_id: str
    due_at: datetime
    """Aware, UTC."""
    note: str


class TaskNotFoundError(InputError):
    """No manager task has this id."""

    def __init__(self, task_id: int) -> None:
        super().__init__(f"task {task_id}", "no such task (see `boomerang tasks list --all`)")
        self.task_id = task_id


class TaskDoneError(InputError):
    """The task is already done; it cannot be postponed."""

    def __init__(self, task_id: int) -> None:
        super().__init__(f"task {task_id}", "is already done")
        self.task_id = task_id


# --- the pure core -------------------------------------------------------------------------------


def answers_as_records(answers: Mapping[str, JsonValue]) -> tuple[Record, ...]:
    """A stored conversation's answers (`State.answers`) as Records: an asynchronous conversation's
    last Delivery holds only the last turn's outputs, while its state holds every answer."""
    return tuple(Record(name, value) for name, value in answers.items())


def tasks_from_conversation(
    *,
    customer_id: int,
    outreach_id: int,
    campaign_id: str,
    records: Sequence[Record],
    outcome: str | None,
    now: datetime,
    actions: Sequence[Action] = (),
    zone: tzinfo | None = None,
) -> list[TaskSpec]:
    """The tasks a conversation asks for (module docstring), at most one per kind.

    `records` are the engine's Record outputs (a later record of a field wins), `outcome` the End
    outcome (None while the talk goes on), `actions` the engine's Action outputs (their
    `create_task` notes and `due_in_hours` go into the tasks), `zone` the customer's time zone: a
    `callback_at` the customer gave is a local wall time (bot.dialog.when) and is read in it (UTC
    when no zone is given). `now` must be aware.
    """
    now = _utc(now, "now")
    answers: dict[str, JsonValue] = {}
    for record in records:
        answers[record.field] = record.value
    if outcome == OPTED_OUT or answers.get("opt_out") is True:
        return []
    created = [a.action for a in actions if isinstance(a.action, model.CreateTask)]
    script_notes = [task.note for task in created if task.note]
    handoffs = [a.action for a in actions if isinstance(a.action, model.Handoff | model.Transfer)]
    spec = _Spec(customer_id, outreach_id, campaign_id)
    out: list[TaskSpec] = []

    callback = _callback(answers.get("callback_at"), now, zone)
    if callback is not None:
        due, said = callback
        out.append(spec("callback", due, [f"call back at {said}", *script_notes]))
    elif outcome == "callback_booked":
        hours = [task.due_in_hours for task in created]
        due = now + (timedelta(hours=min(hours)) if hours else CALLBACK_WITHOUT_TIME)
        out.append(spec("callback", due, ["callback booked, no time given", *script_notes]))
    called_back = bool(out)
    if outcome in HANDOFF_OUTCOMES or handoffs:
        notes = [_handoff_note(action) for action in handoffs]
        notes += [] if called_back else script_notes
        out.append(spec("handoff", now, notes or [_ended(outcome)]))
    elif created and not called_back:
        due = now + timedelta(hours=min(task.due_in_hours for task in created))
        out.append(spec("handoff", due, script_notes or [_ended(outcome)]))

    score = _nps(answers.get("nps"))
    if score is not None and score <= DETRACTOR_MAX:
        out.append(spec("detractor", now, [f"NPS {score}", *_reasons(answers)]))
    return out


def rerouted_contact(
    *, customer_id: int, outreach_id: int, campaign_id: str, reason: str, now: datetime
) -> TaskSpec:
    """The task for a contact the guard handed to a manager (`Reroute("manager_task")`), due now;
    `reason` is the guard's text, e.g. "38-FZ art. 18 ...; a manager calls instead"."""
    return TaskSpec(
        kind="contact",
        customer_id=customer_id,
        outreach_id=outreach_id,
        campaign_id=campaign_id,
        due_at=_utc(now, "now"),
        note=_note([reason or "rerouted to a manager"]),
    )


@dataclass(frozen=True, slots=True)
class _Spec:
    customer_id: int
    outreach_id: int
    campaign_id: str

    def __call__(self, kind: str, due_at: datetime, notes: list[str]) -> TaskSpec:
        return TaskSpec(
            kind, self.customer_id, self.outreach_id, self.campaign_id, due_at, _note(notes)
        )


def _callback(value: JsonValue, now: datetime, zone: tzinfo | None) -> tuple[datetime, str] | None:
    """(due, the time as the customer gave it) for a recorded `callback_at`, None without one.

    A time in the past is due now; a value that is not a time is kept in the note and due now.
    """
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    if not text:
        return None
    try:
        wall = datetime.fromisoformat(text)
    except ValueError:
        return now, f'"{text}" (not a time; call as soon as possible)'
    if wall.tzinfo is None:
        local = wall.replace(tzinfo=zone or UTC)
        said = f"{wall:%Y-%m-%d %H:%M} ({_zone_name(zone)} time)"
    else:
        local = wall
        said = f"{wall:%Y-%m-%d %H:%M %z}"
    return max(local.astimezone(UTC), now), said


def _zone_name(zone: tzinfo | None) -> str:
    if zone is None:
        return "UTC"
    key = getattr(zone, "key", None)
    return key if isinstance(key, str) else "the customer's"


def _nps(value: JsonValue) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    try:
        return int(value)
    except ValueError:
        return None


def _reasons(answers: Mapping[str, JsonValue]) -> list[str]:
    out: list[str] = []
    for name in ("reason", "reason_text"):
        value = answers.get(name)
        if isinstance(value, str) and value.strip():
            out.append(f"{name.replace('_', ' ')}: {value.strip()}")
    return out


def _handoff_note(action: model.Handoff | model.Transfer) -> str:
    if isinstance(action, model.Transfer):
        return f"transfer to {action.to}"
    return action.note or "handoff"


def _ended(outcome: str | None) -> str:
    return f"conversation ended: {outcome}" if outcome else "conversation asked for a manager"


def _note(parts: Iterable[str]) -> str:
    text = "; ".join(dict.fromkeys(p.strip() for p in parts if p.strip()))
    return text if len(text) <= NOTE_MAX else text[: NOTE_MAX - 1] + "…"


def _utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime for {name}: {moment!r}; pass an aware instant")
    return moment.astimezone(UTC)


# --- the store -----------------------------------------------------------------------------------


def insert_tasks(session: Session, specs: Iterable[TaskSpec], now: datetime) -> int:
    """Insert the tasks; one per (outreach_id, kind) ever, so repeating a call inserts nothing.

    `manager_id` is the customer's responsible manager now. Uses the dialect's
    `INSERT ... ON CONFLICT DO NOTHING` (SQLite and PostgreSQL). Returns the rows inserted; does not
    commit: the caller's transaction decides.
    """
    now = _utc(now, "now")
    unique: dict[tuple[int | None, str] | int, TaskSpec] = {}
    for index, spec in enumerate(specs):
        if spec.kind not in KINDS:
            raise ValueError(f"unknown task kind {spec.kind!r}; known: {', '.join(KINDS)}")
        _utc(spec.due_at, "due_at")
        key = (spec.outreach_id, spec.kind) if spec.outreach_id is not None else index
        unique.setdefault(key, spec)
    todo = list(unique.values())
    if not todo:
        return 0
    managers = _managers(session, {spec.customer_id for spec in todo})
    rows: list[dict[str, Any]] = [
        {
            "kind": spec.kind,
            "customer_id": spec.customer_id,
            "outreach_id": spec.outreach_id,
            "campaign_id": spec.campaign_id,
            "manager_id": managers.get(spec.customer_id),
            "due_at": _utc(spec.due_at, "due_at"),
            "note": spec.note,
            "state": "open",
            "done_at": None,
            "created_at": now,
            "updated_at": now,
        }
        for spec in todo
    ]
    table = cast(Table, ManagerTask.__table__)
    statement = (
        dialect_insert(session)(table)
        .on_conflict_do_nothing(index_elements=["outreach_id", "kind"])
        .returning(table.c.id)
    )
    # One cached statement, executed for many rows ("insertmanyvalues" batches them); RETURNING
    # (SQLite 3.35+, PostgreSQL) names exactly the rows inserted, where rowcount of an
    # INSERT ... ON CONFLICT is not reliable across drivers.
    return len(session.connection().execute(statement, rows).all())


def _managers(session: Session, customer_ids: set[int]) -> dict[int, int | None]:
    found: dict[int, int | None] = {}
    ids = sorted(customer_ids)
    for start in range(0, len(ids), _CHUNK):
        query = select(Customer.id, Customer.manager_id).where(
            Customer.id.in_(ids[start : start + _CHUNK])
        )
        found.update(
            {customer_id: manager_id for customer_id, manager_id in session.execute(query)}
        )
    return found


def complete_task(session: Session, task_id: int, now: datetime) -> None:
    """Mark the task done; a task already done stays as it was. Unknown id: TaskNotFoundError."""
    task = _task(session, task_id)
    if task.state == "done":
        return
    now = _utc(now, "now")
    task.state = "done"
    task.done_at = now
    task.updated_at = now
    session.flush()


def postpone_task(session: Session, task_id: int, due_at: datetime, now: datetime) -> None:
    """Move an open task's due time. Unknown id: TaskNotFoundError; a done task: TaskDoneError."""
    task = _task(session, task_id)
    if task.state == "done":
        raise TaskDoneError(task_id)
    task.due_at = _utc(due_at, "due_at")
    task.updated_at = _utc(now, "now")
    session.flush()


def _task(session: Session, task_id: int) -> ManagerTask:
    task = session.get(ManagerTask, task_id)
    if task is None:
        raise TaskNotFoundError(task_id)
    return task
