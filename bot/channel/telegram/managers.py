"""The managers' chat: open manager tasks posted to a Telegram group, worked with two buttons.

`ManagersChat.notify` posts every open task not yet posted (callbacks, handoffs, detractors,
rerouted contacts; bot.campaign.tasks), oldest first, as one message: the kind, the due time in the
customer's local time, the customer's name, phone and Telegram state, the task's note, their last
orders and the answers of the conversation the task came from. Two inline buttons, callback data
`t:done:<task id>` and `t:later:<task id>`, complete the task or postpone it; the message is then
edited to say who did what. See docs/telegram.md, "Managers' chat".

At most once, even across a crash. A task is **claimed before it is posted**, like the outbox
(bot.channel.telegram.conversations): one transaction picks the oldest open task with no
`notified_at` and sets `notified_at` with an UPDATE conditioned on it still being NULL (the
condition makes two notifiers -- two processes, or two overlapping calls -- claim a task once:
the loser updates no row and takes the next one), and commits; only then is the message sent, and
a second transaction stores `notified_message_id`. A crash after the claim and before (or during)
the post leaves `notified_at` without a message id: whether Telegram got it is unknown, and the
task is never posted again -- it is still listed by `boomerang tasks list`. Posting first and
marking afterwards would instead post twice after a crash between the two.

A post Telegram refused (403: the bot is not in the group; 400: e.g. a wrong chat id) was not
posted at all: the claim is released (`notified_at` back to NULL) and the run stops, so the next
call tries again, from the same task. A post that failed for the network or a Telegram outage
(`Unavailable`, after the sender's own retries) may or may not have arrived: the claim stays (at
most once wins) and the run stops.

"Call later" moves the task to two hours after the later of now and its due time (`LATER_BY`): a
callback booked for tomorrow stays tomorrow, just later; an overdue task comes back in two hours,
when a manager who could not reach the customer tries again. The buttons stay on the message after
"call later" (the task is still open: it can be done or postponed again from there); "done" takes
them off.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Final
from zoneinfo import ZoneInfo

from aiogram.types import CallbackQuery, InaccessibleMessage, Message
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bot.app import App
from bot.campaign.tasks import complete_task, postpone_task
from bot.channel.telegram.sender import Blocked, Rejected, Sender, Sent
from bot.customers.zone import customer_zone
from bot.db.models import Customer, Manager, Order
from bot.db.outreach import Outreach
from bot.db.tasks import ManagerTask
from bot.db.telegram import TelegramChat
from bot.dialog.template_filters import money_filter

logger = logging.getLogger(__name__)

PREFIX = "t"
DONE = "done"
LATER = "later"
LATER_BY = timedelta(hours=2)
""""Call later": two hours after the later of now and the due time (module docstring)."""
MAX_TEXT = 4096
"""Telegram's limit for a message's text, in UTF-16 code units."""
FOOTER_ROOM = 400
"""Left free in a posted message for the lines the buttons append ("✅ Done — Maria")."""
ORDERS_SHOWN = 5
ANSWER_MAX = 300
"""One conversation answer (a free text) is cut to this many characters."""
NAME_MAX = 200

TEXTS: Final[dict[str, dict[str, str]]] = {
    "ru": {
        "callback": "📞 Перезвонить",
        "handoff": "🙋 Нужен менеджер",
        "detractor": "⚠️ Низкая оценка",
        "contact": "☎️ Связаться вместо робота",
        "task": "задача",
        "due": "Срок",
        "overdue": "уже пора",
        "customer": "Клиент",
        "phone": "Телефон",
        "no_phone": "нет",
        "telegram": "Telegram",
        "tg_linked": "привязан",
        "tg_blocked": "заблокировал бота",
        "tg_none": "не привязан",
        "manager": "Менеджер",
        "note": "Заметка",
        "orders": "Последние заказы ({shown} из {total})",
        "no_orders": "Заказов нет",
        "answers": "Ответы в разговоре",
        "done_button": "✅ Готово",
        "later_button": "⏰ Перезвонить позже",
        "done_line": "✅ Готово — {who}",
        "later_line": "⏰ Позже, до {due} — {who}",
        "done_ack": "Готово",
        "later_ack": "Перенесено на {due}",
        "already_done": "Эта задача уже выполнена",
        "unknown": "Такой задачи нет",
        "not_allowed": "Эти кнопки работают только в чате менеджеров",
        "someone": "менеджер",
        "date": "%d.%m.%Y",
        "time": "%d.%m.%Y %H:%M",
    },
    "en": {
        "callback": "📞 Call back",
        "handoff": "🙋 Needs a manager",
        "detractor": "⚠️ Low score",
        "contact": "☎️ Contact instead of the robot",
        "task": "task",
        "due": "Due",
        "overdue": "now",
        "customer": "Customer",
        "phone": "Phone",
        "no_phone": "none",
        "telegram": "Telegram",
        "tg_linked": "linked",
        "tg_blocked": "blocked the bot",
        "tg_none": "not linked",
        "manager": "Manager",
        "note": "Note",
        "orders": "Last orders ({shown} of {total})",
        "no_orders": "No orders",
        "answers": "Answers in the conversation",
        "done_button": "✅ Done",
        "later_button": "⏰ Call later",
        "done_line": "✅ Done — {who}",
        "later_line": "⏰ Later, by {due} — {who}",
        "done_ack": "Done",
        "later_ack": "Moved to {due}",
        "already_done": "This task is already done",
        "unknown": "There is no such task",
        "not_allowed": "These buttons work only in the managers' chat",
        "someone": "a manager",
        "date": "%Y-%m-%d",
        "time": "%Y-%m-%d %H:%M",
    },
}
ANSWER_LABELS: Final[dict[str, dict[str, str]]] = {
    "ru": {
        "nps": "NPS",
        "reason": "Причина",
        "reason_text": "Своими словами",
        "callback_at": "Когда перезвонить",
        "csat": "Оценка",
    },
    "en": {
        "nps": "NPS",
        "reason": "Reason",
        "reason_text": "In their words",
        "callback_at": "When to call",
        "csat": "Score",
    },
}


@dataclass(frozen=True, slots=True)
class TaskView:
    """What a task's message shows, read from the database (plain values)."""

    task_id: int
    kind: str
    due_at: datetime
    zone: ZoneInfo
    customer: str
    phone: str | None
    telegram: str
    """linked, blocked or none."""
    manager: str | None
    note: str
    orders: Sequence[tuple[datetime, int, str]]
    """The last orders, newest first: (placed_at, amount_minor, currency)."""
    order_count: int
    answers: Mapping[str, Any]


def callback_data(action: str, task_id: int) -> str:
    return f"{PREFIX}:{action}:{task_id}"


def read_callback(data: str) -> tuple[str, int] | None:
    """(action, task id) of a managers' button; None when the data is not a valid one."""
    parts = data.split(":")
    if len(parts) != 3 or parts[0] != PREFIX or parts[1] not in (DONE, LATER):
        return None
    if not parts[2].isdigit() or len(parts[2]) > 19:
        return None
    return parts[1], int(parts[2])


def units(text: str) -> int:
    """The length Telegram counts: UTF-16 code units (an emoji outside the BMP counts two)."""
    return len(text.encode("utf-16-le")) // 2


def cut(text: str, limit: int) -> str:
    """`text` within `limit` UTF-16 units, ending with "…" when it was cut."""
    if units(text) <= limit:
        return text
    kept: list[str] = []
    used = 0
    for char in text:
        width = 2 if ord(char) > 0xFFFF else 1
        if used + width > limit - 1:
            break
        kept.append(char)
        used += width
    return "".join(kept).rstrip() + "…"


def task_text(view: TaskView, locale: str, now: datetime) -> str:
    """The message of one task, within MAX_TEXT - FOOTER_ROOM (cut at the end: the answers)."""
    say = _texts(locale)
    due = view.due_at.astimezone(view.zone)
    due_line = f"{say['due']}: {due.strftime(say['time'])} ({view.zone.key})"
    if view.due_at <= now:
        due_line += f" — {say['overdue']}"
    telegram = say[f"tg_{view.telegram}"]
    lines = [
        f"{say.get(view.kind, view.kind)} · {say['task']} #{view.task_id}",
        due_line,
        f"{say['customer']}: {cut(view.customer, NAME_MAX)}",
        f"{say['phone']}: {view.phone or say['no_phone']}",
        f"{say['telegram']}: {telegram}",
    ]
    if view.manager:
        lines.append(f"{say['manager']}: {cut(view.manager, NAME_MAX)}")
    if view.note.strip():
        lines.append(f"{say['note']}: {view.note.strip()}")
    lines.append("")
    if view.orders:
        lines.append(say["orders"].format(shown=len(view.orders), total=view.order_count) + ":")
        money = money_filter(locale)
        for placed_at, amount_minor, currency in view.orders:
            day = placed_at.astimezone(view.zone).strftime(say["date"])
            lines.append(f"• {day} — {money(Decimal(amount_minor) / 100, currency)}")
    else:
        lines.append(say["no_orders"])
    shown = [(name, value) for name, value in view.answers.items() if _shown(value)]
    if shown:
        labels = ANSWER_LABELS.get(locale, ANSWER_LABELS["en"])
        lines += ["", say["answers"] + ":"]
        for name, value in shown:
            lines.append(f"• {labels.get(name, name)}: {cut(_value(value), ANSWER_MAX)}")
    return cut("\n".join(lines), MAX_TEXT - FOOTER_ROOM)


def with_line(text: str, line: str) -> str:
    """`text` with `line` appended after a blank line, within MAX_TEXT (the text is cut)."""
    room = MAX_TEXT - units(line) - 2
    return f"{cut(text, room)}\n\n{line}"


class ManagersChat:
    """Posts open manager tasks to the managers' chat and handles its buttons."""

    def __init__(self, app: App, sender: Sender, chat_id: int) -> None:
        self.app = app
        self.sender = sender
        self.chat_id = chat_id
        self.locale = app.settings.default_locale if app.settings.default_locale in TEXTS else "en"

    # --- posting ---

    async def notify(self, limit: int = 50) -> int:
        """Post up to `limit` open, not yet posted tasks, oldest first; returns how many were
        posted. Each is claimed (committed) before it is sent: at most once (module docstring)."""
        posted = 0
        for _ in range(limit):
            claimed = self._claim_next()
            if claimed is None:
                break
            task_id, text = claimed
            result = await self.sender.send(self.chat_id, text, self.buttons(task_id))
            if isinstance(result, Sent):
                self._posted(task_id, result.message_id)
                posted += 1
                continue
            if isinstance(result, Blocked | Rejected):
                self._release(task_id)
                logger.warning(
                    "telegram: the managers' chat %s refused task %s: %s; retried next time",
                    self.chat_id,
                    task_id,
                    result.description,
                )
            else:
                logger.warning(
                    "telegram: task %s may not have reached the managers' chat %s (%s); "
                    "not posted again",
                    task_id,
                    self.chat_id,
                    result.description,
                )
            break
        return posted

    def buttons(self, task_id: int) -> dict[str, Any]:
        say = _texts(self.locale)
        return {
            "inline_keyboard": [
                [
                    {"text": say["done_button"], "callback_data": callback_data(DONE, task_id)},
                    {"text": say["later_button"], "callback_data": callback_data(LATER, task_id)},
                ]
            ]
        }

    def _claim_next(self) -> tuple[int, str] | None:
        """Claim the oldest open task not posted yet and render it, in one committed
        transaction; None when there is none."""
        now = self.app.clock.now()
        with self.app.sessions.begin() as session:
            while True:
                task = session.scalars(
                    select(ManagerTask)
                    .where(ManagerTask.state == "open", ManagerTask.notified_at.is_(None))
                    .order_by(ManagerTask.created_at, ManagerTask.id)
                    .limit(1)
                ).first()
                if task is None:
                    return None
                claimed = session.execute(
                    update(ManagerTask)
                    .where(ManagerTask.id == task.id, ManagerTask.notified_at.is_(None))
                    .values(notified_at=now)
                    .execution_options(synchronize_session=False)
                )
                if claimed.rowcount == 1:  # type: ignore[attr-defined]
                    return task.id, task_text(self._view(session, task), self.locale, now)
                session.expire(task)  # another notifier took it: the next one

    def _posted(self, task_id: int, message_id: int) -> None:
        with self.app.sessions.begin() as session:
            session.execute(
                update(ManagerTask)
                .where(ManagerTask.id == task_id)
                .values(notified_message_id=message_id)
                .execution_options(synchronize_session=False)
            )

    def _release(self, task_id: int) -> None:
        with self.app.sessions.begin() as session:
            session.execute(
                update(ManagerTask)
                .where(ManagerTask.id == task_id, ManagerTask.notified_message_id.is_(None))
                .values(notified_at=None)
                .execution_options(synchronize_session=False)
            )

    def _view(self, session: Session, task: ManagerTask) -> TaskView:
        customer = session.get(Customer, task.customer_id)
        if customer is None:  # the foreign key cascades: a task never outlives its customer
            raise LookupError(f"task {task.id}: no customer {task.customer_id}")
        settings = self.app.settings
        zone = customer_zone(customer.time_zone, customer.phone, settings.default_time_zone)
        manager = session.get(Manager, task.manager_id) if task.manager_id is not None else None
        orders = [
            (placed_at, amount, currency)
            for placed_at, amount, currency in session.execute(
                select(Order.placed_at, Order.amount_minor, Order.currency)
                .where(Order.customer_id == customer.id)
                .order_by(Order.placed_at.desc(), Order.id.desc())
                .limit(ORDERS_SHOWN)
            )
        ]
        count = session.scalar(
            select(func.count()).select_from(Order).where(Order.customer_id == customer.id)
        )
        answers: Mapping[str, Any] = {}
        if task.outreach_id is not None:
            conversation = session.scalar(
                select(Outreach.conversation).where(Outreach.id == task.outreach_id)
            )
            stored = (conversation or {}).get("answers")
            if isinstance(stored, Mapping):
                answers = stored
        return TaskView(
            task_id=task.id,
            kind=task.kind,
            due_at=task.due_at,
            zone=zone,
            customer=customer.name or customer.first_name or customer.external_id,
            phone=customer.phone,
            telegram=self._telegram_state(session, customer.telegram_chat_id),
            manager=manager.name if manager is not None else None,
            note=task.note,
            orders=orders,
            order_count=int(count or 0),
            answers=answers,
        )

    @staticmethod
    def _telegram_state(session: Session, chat_id: int | None) -> str:
        if chat_id is None:
            return "none"
        blocked = session.scalar(
            select(TelegramChat.blocked_at).where(TelegramChat.chat_id == chat_id)
        )
        return "blocked" if blocked is not None else "linked"

    # --- the buttons ---

    async def handle_press(self, query: CallbackQuery) -> bool:
        """Handle a press on a managers' button; False when the data is not ours (`t:`)."""
        data = query.data or ""
        if not data.startswith(f"{PREFIX}:"):
            return False
        say = _texts(self.locale)
        message = query.message
        if message is None or message.chat.id != self.chat_id:
            await self.sender.answer_callback(query.id, say["not_allowed"])
            return True
        parsed = read_callback(data)
        if parsed is None:
            await self.sender.answer_callback(query.id, say["unknown"])
            return True
        action, task_id = parsed
        who = query.from_user.first_name or say["someone"]
        now = self.app.clock.now()
        outcome: tuple[str, str, dict[str, Any] | None] | None
        with self.app.sessions.begin() as session:
            task = session.get(ManagerTask, task_id)
            if task is None or task.state == "done":
                outcome = None
            elif action == DONE:
                complete_task(session, task_id, now)
                outcome = say["done_line"].format(who=who), say["done_ack"], None
            else:
                due = max(task.due_at, now) + LATER_BY
                postpone_task(session, task_id, due, now)
                local = self._local(session, task, due).strftime(say["time"])
                outcome = (
                    say["later_line"].format(due=local, who=who),
                    say["later_ack"].format(due=local),
                    self.buttons(task_id),
                )
            known = task is not None
        if outcome is None:
            await self.sender.answer_callback(
                query.id, say["already_done"] if known else say["unknown"]
            )
            await self.sender.remove_keyboard(self.chat_id, message.message_id)
            return True
        line, ack, keyboard = outcome
        await self.sender.answer_callback(query.id, ack)
        await self._edit(message, line, keyboard)
        return True

    def _local(self, session: Session, task: ManagerTask, moment: datetime) -> datetime:
        customer = session.get(Customer, task.customer_id)
        default = self.app.settings.default_time_zone
        zone = (
            customer_zone(customer.time_zone, customer.phone, default)
            if customer is not None
            else ZoneInfo(default)
        )
        return moment.astimezone(zone)

    async def _edit(
        self,
        message: Message | InaccessibleMessage,
        line: str,
        keyboard: dict[str, Any] | None,
    ) -> None:
        """The message with `line` appended and `keyboard` (None: no buttons)."""
        if not isinstance(message, Message) or not message.text:
            # Too old for Telegram to show (InaccessibleMessage): only the buttons can change.
            if keyboard is None:
                await self.sender.remove_keyboard(self.chat_id, message.message_id)
            return
        text = with_line(message.text, line)
        result = await self.sender.edit_text(self.chat_id, message.message_id, text, keyboard)
        if not isinstance(result, Sent):
            logger.warning(
                "telegram: editing task message %s failed: %s", message.message_id, result
            )


def _texts(locale: str) -> dict[str, str]:
    return TEXTS.get(locale, TEXTS["en"])


def _shown(value: Any) -> bool:
    if value is None:
        return False
    return not (isinstance(value, str) and not value.strip())


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "✓" if value else "✗"
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value)
    return " ".join(str(value).split())
