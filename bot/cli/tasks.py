"""`boomerang tasks ...`: what managers have to do (callbacks, handoffs, detractors, rerouted
contacts), marking a task done and moving it to a later time. See docs/tasks.md."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from bot.app import App, open_app
from bot.campaign.tasks import TaskNotFoundError, complete_task, postpone_task
from bot.customers.zone import customer_zone
from bot.db.models import Customer, Manager
from bot.db.tasks import ManagerTask
from bot.errors import InputError

app = typer.Typer(
    help="Manager tasks: callbacks, handoffs, detractors, contacts handed to a person.",
    no_args_is_help=True,
)

LOCAL_FORMAT = "%Y-%m-%d %H:%M"


class Format(StrEnum):
    table = "table"
    json = "json"


@dataclass(frozen=True, slots=True)
class TaskLine:
    """One task as listed: the row, its customer, its manager, the due time in the customer zone."""

    id: int
    kind: str
    state: str
    due_at: datetime
    due_local: datetime
    customer_id: int
    customer: str
    phone: str
    manager: str
    campaign_id: str
    note: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "state": self.state,
            "due_at": self.due_at.isoformat(),
            "due_local": self.due_local.isoformat(),
            "time_zone": str(self.due_local.tzinfo),
            "customer_id": self.customer_id,
            "customer": self.customer,
            "phone": self.phone,
            "manager": self.manager,
            "campaign": self.campaign_id,
            "note": self.note,
        }


def find_manager(app: App, value: str) -> int:
    """A manager's id from `--manager`: an id, or a name (managers have no e-mail column)."""
    with app.sessions() as session:
        if value.isdigit():
            found = session.get(Manager, int(value))
        else:
            found = session.scalars(select(Manager).where(Manager.name == value)).first()
        if found is None:
            known = ", ".join(f"{m.id} {m.name}" for m in session.scalars(select(Manager)))
            raise InputError("--manager", f"no manager {value!r}; known: {known or 'none'}")
        return found.id


def task_lines(
    app: App, manager_id: int | None = None, include_done: bool = False
) -> list[TaskLine]:
    """Tasks by due time (open ones only unless `include_done`), optionally of one manager."""
    query = (
        select(ManagerTask, Customer, Manager.name)
        .join(Customer, ManagerTask.customer_id == Customer.id)
        .outerjoin(Manager, ManagerTask.manager_id == Manager.id)
        .order_by(ManagerTask.due_at, ManagerTask.id)
    )
    if not include_done:
        query = query.where(ManagerTask.state == "open")
    if manager_id is not None:
        query = query.where(ManagerTask.manager_id == manager_id)
    default_zone = app.settings.default_time_zone
    with app.sessions() as session:
        return [
            TaskLine(
                id=task.id,
                kind=task.kind,
                state=task.state,
                due_at=task.due_at,
                due_local=task.due_at.astimezone(_zone(customer, default_zone)),
                customer_id=customer.id,
                customer=customer.name or customer.first_name or customer.external_id,
                phone=customer.phone or "",
                manager=manager or "",
                campaign_id=task.campaign_id,
                note=task.note,
            )
            for task, customer, manager in session.execute(query)
        ]


def _zone(customer: Customer, default: str) -> ZoneInfo:
    return customer_zone(customer.time_zone, customer.phone, default)


def show_tasks(lines: list[TaskLine], now: datetime, include_done: bool) -> None:
    console = Console(width=160)
    if not lines:
        console.print("no tasks" if include_done else "no open tasks")
        return
    table = Table(show_lines=False)
    headers = ["id", "due (customer's time)", "kind", "customer", "phone", "manager", "note"]
    if include_done:
        headers.insert(3, "state")
    for header in headers:
        table.add_column(header, overflow="fold")
    for line in lines:
        due = f"{line.due_local:{LOCAL_FORMAT}} {line.due_local.tzname() or ''}".rstrip()
        if line.state == "open" and line.due_at <= now:
            due += " (due)"
        cells = [str(line.id), due, line.kind, line.customer, line.phone, line.manager, line.note]
        if include_done:
            cells.insert(3, line.state)
        table.add_row(*cells)
    console.print(table)
    console.print(f"{len(lines)} tasks")


@app.command("list")
def list_tasks(
    manager: str | None = typer.Option(None, "--manager", help="Only this manager's (id or name)."),
    include_done: bool = typer.Option(False, "--all", help="Done tasks too."),
    output: Format = typer.Option(Format.table, "--format", help="table or json."),
) -> None:
    """Open tasks by due time: customer, phone, kind, due in the customer's local time, note."""
    opened = open_app()
    try:
        manager_id = None if manager is None else find_manager(opened, manager)
        lines = task_lines(opened, manager_id, include_done)
        now = opened.clock.now()
    finally:
        opened.engine.dispose()
    if output == Format.json:
        typer.echo(json.dumps([line.as_dict() for line in lines], ensure_ascii=False, indent=2))
    else:
        show_tasks(lines, now, include_done)


@app.command("done")
def done(
    task_id: int = typer.Argument(..., help="The task's id (`boomerang tasks list`)."),
) -> None:
    """Mark a task done (again: nothing changes)."""
    opened = open_app()
    try:
        with opened.sessions.begin() as session:
            complete_task(session, task_id, opened.clock.now())
    finally:
        opened.engine.dispose()
    typer.echo(f"task {task_id} done")


@app.command("later")
def later(
    task_id: int = typer.Argument(..., help="The task's id (`boomerang tasks list`)."),
    at: str = typer.Option(..., "--at", help='"YYYY-MM-DD HH:MM" in the customer\'s local time.'),
) -> None:
    """Move an open task to a later time, given in the customer's local time."""
    try:
        wall = datetime.strptime(at.strip(), LOCAL_FORMAT)  # noqa: DTZ007 - the customer's zone
    except ValueError as error:
        raise InputError("--at", f"{at!r} is not a local time (YYYY-MM-DD HH:MM)") from error
    opened = open_app()
    try:
        now = opened.clock.now()
        with opened.sessions.begin() as session:
            task = session.get(ManagerTask, task_id)
            if task is None:
                raise TaskNotFoundError(task_id)
            customer = session.get(Customer, task.customer_id)
            assert customer is not None  # the foreign key
            zone = _zone(customer, opened.settings.default_time_zone)
            due = wall.replace(tzinfo=zone).astimezone(UTC)
            if due <= now:
                raise InputError("--at", f"{at} {zone.key} is not in the future")
            postpone_task(session, task_id, due, now)
    finally:
        opened.engine.dispose()
    typer.echo(f"task {task_id} due {wall:{LOCAL_FORMAT}} {zone.key} ({due.isoformat()})")
