"""Try a dialog script in a terminal: what the bot would send on a chat or say on a call.

`run` drives the pure engine with answers from a list (non-interactive) or typed at a prompt, and
writes what a channel would do: rendered texts, buttons or the phrases/keys a call expects, the
outcomes recorded and the end. `try_command` is the `boomerang dialogs try` command.

Answers: an empty answer or "-" is silence (NoInput), "/hangup" hangs up. On a call a digits-only
answer is DTMF; in a chat an answer equal to a button's label or an option id is a button press.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import typer

from bot.clock import SystemClock
from bot.dialog import engine, model
from bot.dialog.events import (
    Action,
    Answer,
    Ask,
    End,
    Event,
    HangUp,
    NoInput,
    Output,
    Record,
    Say,
    StopConfirmation,
)
from bot.dialog.library import load_locale_pack
from bot.dialog.loader import LoadedScript, load_script
from bot.dialog.locale_pack import LocalePack
from bot.dialog.renderer import render, spoken
from bot.dialog.say import say_text
from bot.dialog.state import State
from bot.settings import get_settings

Channel = Literal["telegram", "voice"]
Writer = Callable[[str], None]
SILENCE = ("", "-")
HANG_UP = "/hangup"
ROW = 6
"""Buttons per row in chat: NPS 0..10 goes on two rows."""


def run(
    loaded: LoadedScript,
    pack: LocalePack,
    context: Mapping[str, object],
    channel: Channel,
    answers: Sequence[str] | None,
    out: Writer,
    prompt: Callable[[], str] | None = None,
    now: datetime | None = None,
) -> State:
    """Play a conversation and write it to `out`; returns the last state.

    Answers come from `answers`, or from `prompt` (default: input()) when `answers` is None. With a
    list, the run stops when the list is used up even if the conversation is still waiting.
    """
    script = loaded.script
    out(f"== {script.id} ({script.locale}, version {loaded.version}) on {channel}")
    state, outputs = engine.start(script, loaded.version, pack)
    last_ask = _show(loaded, pack, context, channel, outputs, out)
    supply = _answers(answers, prompt or (lambda: input("you> ")))
    while not state.finished:
        reply = next(supply, None)
        if reply is None:
            out(f"(no more answers: waiting at step {state.step})")
            break
        out(f"you: {reply}" if reply.strip() not in SILENCE else "you: (silence)")
        event = to_event(reply, channel, last_ask, now)
        state, outputs = engine.advance(script, pack, state, event, version=loaded.version)
        last_ask = _show(loaded, pack, context, channel, outputs, out) or last_ask
    if state.answers:
        recorded = ", ".join(
            f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in state.answers.items()
        )
        out(f"== recorded: {recorded}")
    if state.finished:
        out(f"== outcome: {state.outcome}")
    return state


def to_event(reply: str, channel: Channel, ask: Ask | None, now: datetime | None = None) -> Event:
    """What a channel would make of a typed or spoken reply (`now`: when it arrived, local)."""
    text = reply.strip()
    if text in SILENCE:
        return NoInput()
    if text.lower() == HANG_UP:
        return HangUp()
    if channel == "voice":
        if all(c.isdigit() or c in "*#" for c in text) and text.isascii():
            return Answer(digits=text, at=now)
        return Answer(text=text, at=now)
    if ask is not None:
        folded = text.casefold()
        for option in ask.options:
            if folded in (option.label.casefold(), option.id.casefold()):
                return Answer(choice=option.id, at=now)
    return Answer(text=text, at=now)


def _answers(answers: Sequence[str] | None, prompt: Callable[[], str]) -> Iterator[str]:
    if answers is not None:
        yield from answers
        return
    while True:
        try:
            yield prompt()
        except EOFError:
            return


def _show(
    loaded: LoadedScript,
    pack: LocalePack,
    context: Mapping[str, object],
    channel: Channel,
    outputs: list[Output],
    out: Writer,
) -> Ask | None:
    voice = channel == "voice"
    asked: Ask | None = None
    for output in outputs:
        if isinstance(output, Say):
            text = say_text(loaded, pack, context, output)
            out(f"bot: {spoken(text) if voice else text}")
        elif isinstance(output, StopConfirmation):
            out(f"bot: {pack.stop_confirmation}")
        elif isinstance(output, Ask):
            asked = output
            for line in _ask_lines(output, voice):
                out(line)
        elif isinstance(output, Action):
            out(f"action: {_action(loaded, context, output)}")
        elif isinstance(output, Record):
            out(f"record: {output.field} = {json.dumps(output.value, ensure_ascii=False)}")
        elif isinstance(output, End):
            out(f"end: {output.outcome}")
    return asked


def _ask_lines(ask: Ask, voice: bool) -> list[str]:
    if voice:
        lines = []
        if ask.expected_phrases:
            lines.append("expects: " + " / ".join(ask.expected_phrases))
        else:
            lines.append(f"expects: any {ask.kind} (full vocabulary)")
        keys = [f"{o.dtmf}={o.label}" for o in ask.options if o.dtmf]
        if ask.kind == "scale" and ask.options:
            lines.append(f"keys: {ask.options[0].id}..{ask.options[-1].id} (the number)")
        elif keys:
            lines.append("keys: " + ", ".join(keys))
        return lines
    if not ask.options:
        return [f"(waits for a {ask.kind} message)"]
    buttons = [f"[{o.label}]" for o in ask.options]
    if ask.kind == "scale" and len(buttons) > ROW:
        half = (len(buttons) + 1) // 2
        rows = [buttons[:half], buttons[half:]]
    else:
        rows = [buttons]
    return [" ".join(row) for row in rows]


def _action(loaded: LoadedScript, context: Mapping[str, object], output: Action) -> str:
    action = output.action
    fields = action.model_dump(exclude={"kind"})
    do = loaded.script.steps[output.step].do
    index = do.index(action) if action in do else -1  # the opt-out after a stop phrase is not
    if index < 0:
        pass
    elif isinstance(action, model.IssueOffer):
        fields["code"] = render(loaded, output.step, f"do.{index}.code", context)
    elif isinstance(action, model.CreateTask | model.Handoff) and action.note:
        fields["note"] = render(loaded, output.step, f"do.{index}.note", context)
    shown = " ".join(f"{k}={v}" for k, v in fields.items())
    return f"{action.kind} {shown}".strip()


# --- the command ---------------------------------------------------------------------------------


def find_script(script: str, locale: str | None, folder: Path = Path("dialogs")) -> Path:
    """A script file: `script` itself when it is a file, else `dialogs/<id>.<locale>.yaml`."""
    path = Path(script)
    if path.is_file():
        return path
    candidates = sorted(folder.glob(f"{script}.*.yaml"))
    if locale is not None:
        candidates = [c for c in candidates if c.name == f"{script}.{locale}.yaml"]
    if not candidates:
        raise typer.BadParameter(f"no script file {script!r} (looked in {folder}/)")
    ru = [c for c in candidates if c.name.endswith(".ru.yaml")]
    return (ru or candidates)[0]


def find_pack(script_path: Path, locale: str) -> LocalePack:
    for folder in (script_path.parent / "_locale", Path("dialogs") / "_locale"):
        path = folder / f"{locale}.yaml"
        if path.is_file():
            return load_locale_pack(path)
    raise typer.BadParameter(f"no locale pack _locale/{locale}.yaml next to {script_path}")


def customer_context(customer_ref: str, base: Mapping[str, object]) -> dict[str, object]:
    """The render context of a customer from the database, over `base` for the other names.

    `customer_ref` is the shop's external id, or Boomerang's numeric id.
    """
    from sqlalchemy import select

    from bot.app import open_app
    from bot.db.models import Customer, Order

    app = open_app()
    context = dict(base)
    with app.sessions() as session:
        customer = session.scalars(
            select(Customer).where(Customer.external_id == customer_ref)
        ).first()
        if customer is None and customer_ref.isdigit():
            customer = session.get(Customer, int(customer_ref))
        if customer is None:
            raise typer.BadParameter(f"no customer {customer_ref!r} (external or numeric id)")
        context["customer_id"] = customer.id
        context["first_name"] = customer.first_name or customer.name or ""
        context["company_name"] = app.settings.company_name
        if customer.manager is not None:
            context["manager_name"] = customer.manager.name
        order = session.scalars(
            select(Order)
            .where(Order.customer_id == customer.id)
            .order_by(Order.placed_at.desc())
            .limit(1)
        ).first()
        if order is not None:
            context["order_number"] = order.external_id
            context["last_order_date"] = order.placed_at.date()
            context["last_order_amount"] = Decimal(order.amount_minor) / 100
            context["last_order_items"] = tuple(
                str(item.get("name", "")) for item in order.items if isinstance(item, dict)
            )
            context["days_since_last_order"] = (app.clock.now() - order.placed_at).days
    app.engine.dispose()
    return context


def _json_context(path: Path) -> dict[str, object]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise typer.BadParameter(f"{path} must hold a JSON object")
    for key, value in list(data.items()):
        if isinstance(value, list):
            data[key] = tuple(value)
        elif isinstance(value, str) and len(value) == 10 and value[4:5] == "-":
            with contextlib.suppress(ValueError):
                data[key] = date.fromisoformat(value)
    return data


def try_command(
    script: str = typer.Argument(..., help="A script file, or a script id in dialogs/."),
    customer: str | None = typer.Option(
        None, "--customer", help="Render with this customer's data (external or numeric id)."
    ),
    context_file: Path | None = typer.Option(
        None, "--context", help="Render with the names in this JSON object file."
    ),
    channel: str = typer.Option("telegram", "--channel", help="telegram or voice."),
    answers: str | None = typer.Option(
        None, "--answers", help='Comma-separated answers, e.g. "да,8,дорого"; default: ask.'
    ),
    locale: str | None = typer.Option(None, "--locale", help="ru or en, for a script id."),
) -> None:
    """Play a script in the terminal as the customer would see or hear it."""
    if channel not in ("telegram", "voice"):
        raise typer.BadParameter("--channel must be telegram or voice")
    from bot.dialog.context import sample_context

    path = find_script(script, locale)
    loaded = load_script(path)
    pack = find_pack(path, loaded.script.locale)
    base: dict[str, object] = dict(sample_context(loaded.script.locale, loaded.script.variables))
    if context_file is not None:
        base.update(_json_context(context_file))
    context = customer_context(customer, base) if customer is not None else base
    replies = [a.strip() for a in answers.split(",")] if answers is not None else None
    settings = get_settings()
    # Relative callback times ("завтра в три") are read against the local time the answer arrived.
    local_now = SystemClock().now().astimezone(ZoneInfo(settings.default_time_zone))
    run(
        loaded,
        pack,
        context,
        "voice" if channel == "voice" else "telegram",
        replies,
        typer.echo,
        now=local_now,
    )
