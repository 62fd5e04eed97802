"""The managers' chat end to end: real aiogram against the Bot API emulator (bot.testing).

Tasks are inserted as the conversations insert them (bot.campaign.tasks); `ManagersChat.notify`
posts them to the managers' chat, and presses on its buttons come back as real Telegram updates
(the emulator's `press`, read with aiogram's `get_updates`) into `ManagersChat.handle_press`.
The emulator simulates private chats only, so the managers' group is a simulated user whose chat id
is the configured managers' chat id (a group's negative id) -- Мария, who presses the buttons.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiogram import Bot
from aiogram.types import CallbackQuery
from sqlalchemy import select

from bot.app import App
from bot.campaign.tasks import TaskSpec, insert_tasks
from bot.channel.telegram.managers import (
    FOOTER_ROOM,
    LATER_BY,
    MAX_TEXT,
    ManagersChat,
    callback_data,
    cut,
    read_callback,
    units,
)
from bot.channel.telegram.sender import Pace, Sender
from bot.channel.telegram.service import make_bot
from bot.db.models import Customer, Order
from bot.db.outreach import CampaignRun, Outreach
from bot.db.tasks import ManagerTask
from bot.testing.telegram import BotApiEmulator, SentMessage, SimUser

TOKEN = "123456:TEST-TOKEN"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
MANAGERS = -1001234567890
"""The managers' group (a supergroup's id is negative)."""


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(scenario())


@pytest.fixture
def tg(app: App) -> App:
    settings = app.settings.model_copy(
        update={"telegram_token": TOKEN, "telegram_managers_chat": MANAGERS}
    )
    return replace(app, settings=settings)


@contextlib.asynccontextmanager
async def telegram(app: App) -> AsyncIterator[tuple[BotApiEmulator, Bot, ManagersChat]]:
    async with BotApiEmulator(token=TOKEN, rate=None, chat_interval=None) as api:
        bot = make_bot(TOKEN, api.base_url)
        try:
            chat_id = app.settings.telegram_managers_chat
            assert chat_id is not None
            yield api, bot, ManagersChat(app, Sender(bot, Pace(None, 0)), chat_id)
        finally:
            await bot.session.close()


def managers_room(api: BotApiEmulator) -> SimUser:
    """The managers' chat, as the emulator can have it: a chat whose id is the group's, and
    Мария, who presses there."""
    room = api.user(MANAGERS, "Мария")
    room.started = True  # the bot was added to the group
    return room


async def press(api: BotApiEmulator, bot: Bot, user: SimUser, message_id: int, data: str) -> Any:
    """The user presses the button; the callback query as aiogram reads it from getUpdates."""
    sent = await api.press(user, message_id, data)
    updates = await bot.get_updates(timeout=0)
    assert updates
    await bot.get_updates(offset=updates[-1].update_id + 1, timeout=0)  # confirm them
    found = [u.callback_query for u in updates if u.callback_query is not None]
    query = next(q for q in found if q.id == sent["id"])
    assert isinstance(query, CallbackQuery)
    return query


def data_of(message: SentMessage) -> list[str]:
    return [str(button["callback_data"]) for button in message.buttons()]


def seed(
    app: App,
    name: str,
    *,
    phone: str = "+79161234567",
    chat: int | None = None,
    orders: int = 2,
    answers: dict[str, Any] | None = None,
) -> tuple[int, int]:
    """(customer id, outreach id): a customer with orders and a finished conversation."""
    with app.sessions.begin() as session:
        customer = Customer(
            external_id=name[:40],
            name=name,
            first_name=name.split()[0],
            phone=phone,
            telegram_chat_id=chat,
            locale="ru",
            time_zone="Europe/Moscow",
            tags=[],
            created_at=NOW - timedelta(days=400),
            updated_at=NOW - timedelta(days=400),
        )
        session.add(customer)
        session.flush()
        for index in range(orders):
            session.add(
                Order(
                    external_id=f"{name[:40]}-{index}",
                    customer_id=customer.id,
                    placed_at=NOW - timedelta(days=5 + 30 * index),
                    currency="RUB",
                    status="delivered",
                    amount_minor=1990_00 + 100_00 * index,
                    items=[],
                )
            )
        run_row = CampaignRun(
            campaign_id=f"feedback {customer.id}", scheduled_for=NOW, created_at=NOW, planned=1
        )
        session.add(run_row)
        session.flush()
        outreach = Outreach(
            campaign_id=f"feedback {customer.id}",
            customer_id=customer.id,
            cycle=f"{name[:40]}-0",
            run_id=run_row.id,
            state="done",
            script_id="post_order_feedback",
            conversation={"answers": answers or {}},
            outcome="callback_booked",
            created_at=NOW,
            updated_at=NOW,
        )
        session.add(outreach)
        session.flush()
        return customer.id, outreach.id


def add_task(
    app: App,
    kind: str,
    customer_id: int,
    outreach_id: int,
    due_at: datetime,
    note: str,
    at: datetime,
) -> int:
    spec = TaskSpec(kind, customer_id, outreach_id, "feedback", due_at, note)
    with app.sessions.begin() as session:
        assert insert_tasks(session, [spec], at) == 1
        return session.scalars(
            select(ManagerTask.id).where(
                ManagerTask.outreach_id == outreach_id, ManagerTask.kind == kind
            )
        ).one()


def task(app: App, task_id: int) -> ManagerTask:
    with app.sessions() as session:
        found = session.get(ManagerTask, task_id)
        assert found is not None
        return found


def two_tasks(app: App) -> tuple[int, int]:
    """(detractor task, callback task): Анна's low score first, Борис's callback a minute on."""
    anna, anna_talk = seed(
        app,
        "Анна Петрова",
        chat=501,
        answers={"nps": 3, "reason": "price", "reason_text": "дорого  и\nдолго", "opt_in": None},
    )
    boris, boris_talk = seed(
        app, "Борис Орлов", phone="+79167654321", orders=1, answers={"callback_at": "tomorrow"}
    )
    detractor = add_task(
        app, "detractor", anna, anna_talk, NOW, "NPS 3; reason: price", NOW - timedelta(minutes=2)
    )
    callback = add_task(
        app,
        "callback",
        boris,
        boris_talk,
        datetime(2026, 11, 23, 12, 0, tzinfo=UTC),
        "call back at 2026-11-23 15:00 (Europe/Moscow time)",
        NOW - timedelta(minutes=1),
    )
    return detractor, callback


# --- posting ---


def test_tasks_are_posted_once_with_history_and_buttons(tg: App) -> None:
    detractor, callback = two_tasks(tg)

    async def scenario() -> None:
        async with telegram(tg) as (api, _bot, chat):
            managers_room(api)
            assert await chat.notify() == 2
            assert await chat.notify() == 0  # nothing new: each task is posted once
            first, second = api.sent(MANAGERS)
            assert len(api.sent(MANAGERS)) == 2

            assert first.text.startswith(f"⚠️ Низкая оценка · задача #{detractor}")
            assert "Срок: 22.11.2026 15:00 (Europe/Moscow) — уже пора" in first.text
            assert "Клиент: Анна Петрова" in first.text
            assert "Телефон: +79161234567" in first.text
            assert "Telegram: привязан" in first.text
            assert "Заметка: NPS 3; reason: price" in first.text
            assert "Последние заказы (2 из 2):" in first.text
            assert "• 17.11.2026 — 1\xa0990\xa0₽" in first.text
            assert "• 18.10.2026 — 2\xa0090\xa0₽" in first.text
            assert "• NPS: 3" in first.text
            assert "• Причина: price" in first.text
            assert "• Своими словами: дорого и долго" in first.text
            assert "opt_in" not in first.text  # an empty answer is not shown
            assert data_of(first) == [f"t:done:{detractor}", f"t:later:{detractor}"]
            assert [b["text"] for b in first.buttons()] == ["✅ Готово", "⏰ Перезвонить позже"]

            assert second.text.startswith(f"📞 Перезвонить · задача #{callback}")
            assert "Срок: 23.11.2026 15:00 (Europe/Moscow)\n" in second.text
            assert "Telegram: не привязан" in second.text
            assert "• Когда перезвонить: tomorrow" in second.text
            assert data_of(second) == [f"t:done:{callback}", f"t:later:{callback}"]

            for task_id, message in ((detractor, first), (callback, second)):
                row = task(tg, task_id)
                assert row.notified_at == NOW
                assert row.notified_message_id == message.message_id

            # A task created later is posted by the next call, and only it.
            customer_id, talk = seed(tg, "Вера Смирнова", phone="+79160000000", orders=0)
            late = add_task(tg, "handoff", customer_id, talk, NOW, "", NOW)
            assert await chat.notify() == 1
            assert len(api.sent(MANAGERS)) == 3
            text = api.last_sent(MANAGERS).text
            assert text.startswith(f"🙋 Нужен менеджер · задача #{late}")
            assert "Заказов нет" in text
            assert "Заметка" not in text

    run(scenario)


def test_done_tasks_are_not_posted_and_limit_counts(tg: App) -> None:
    detractor, callback = two_tasks(tg)
    with tg.sessions.begin() as session:
        session.get(ManagerTask, detractor).state = "done"  # type: ignore[union-attr]

    async def scenario() -> None:
        async with telegram(tg) as (api, _bot, chat):
            managers_room(api)
            assert await chat.notify(limit=0) == 0
            assert await chat.notify(limit=1) == 1
            assert [m.text.split(" · ")[0] for m in api.sent(MANAGERS)] == ["📞 Перезвонить"]
            assert task(tg, detractor).notified_at is None

    run(scenario)


def test_a_claim_survives_a_crash_and_a_refusal_is_retried(tg: App) -> None:
    detractor, callback = two_tasks(tg)

    async def scenario() -> None:
        async with telegram(tg) as (api, _bot, chat):
            managers_room(api)

            # Telegram refuses the post (400): nothing was posted, the claim is released and the
            # run stops; the next call posts it.
            api.fail_next(MANAGERS, 400, "Bad Request: chat not found")
            assert await chat.notify() == 0
            assert api.sent(MANAGERS) == []
            assert task(tg, detractor).notified_at is None

            # A crash between the claim and the answer: the claim is committed, the task is
            # never posted again.
            real_send = chat.sender.send

            async def crash(*args: Any) -> Any:
                raise RuntimeError("the process died here")

            chat.sender.send = crash  # type: ignore[method-assign]
            with pytest.raises(RuntimeError):
                await chat.notify()
            chat.sender.send = real_send  # type: ignore[method-assign]
            lost = task(tg, detractor)
            assert lost.notified_at == NOW and lost.notified_message_id is None

            assert await chat.notify() == 1
            (only,) = api.sent(MANAGERS)
            assert data_of(only)[0] == f"t:done:{callback}"

    run(scenario)


def test_a_long_history_is_cut_to_telegrams_limit(tg: App) -> None:
    answers: dict[str, Any] = {"nps": 1, "reason_text": "очень плохо 😡 " * 400}
    answers.update({f"q{index}": "ответ " * 80 for index in range(40)})
    customer_id, talk = seed(tg, "Анна " + "Долгая" * 49, orders=30, answers=answers)
    task_id = add_task(tg, "detractor", customer_id, talk, NOW, "NPS 1; " + "x" * 990, NOW)

    async def scenario() -> None:
        async with telegram(tg) as (api, bot, chat):
            room = managers_room(api)
            assert await chat.notify() == 1
            message = api.last_sent(MANAGERS)
            assert units(message.text) <= MAX_TEXT - FOOTER_ROOM
            assert message.text.endswith("…")
            assert "Последние заказы (5 из 30):" in message.text
            assert len(message.text.split("\n")[2]) <= len("Клиент: ") + 200

            query = await press(api, bot, room, message.message_id, f"t:done:{task_id}")
            assert await chat.handle_press(query)
            edited = api.last_sent(MANAGERS)
            assert units(edited.text) <= MAX_TEXT
            assert edited.text.endswith("\n\n✅ Готово — Мария")
            assert task(tg, task_id).state == "done"

    run(scenario)


def test_cut_counts_utf16_units() -> None:
    assert cut("abc", 3) == "abc"
    assert cut("abcd", 3) == "ab…"
    assert units("😡") == 2
    assert cut("a😡b", 3) == "a…"
    assert units(cut("😡" * 3000, MAX_TEXT)) <= MAX_TEXT


def test_callback_data_fits_and_reads_back() -> None:
    data = callback_data("later", 2**62)
    assert len(data.encode()) <= 64
    assert read_callback(data) == ("later", 2**62)
    assert read_callback("t:done:12") == ("done", 12)
    for bad in ("t:done", "t:drop:1", "t:done:x", "a:done:1", "t:done:1:2", "t:done:-1"):
        assert read_callback(bad) is None


# --- the buttons ---


def test_done_completes_the_task_and_edits_the_message(tg: App) -> None:
    detractor, _ = two_tasks(tg)

    async def scenario() -> None:
        async with telegram(tg) as (api, bot, chat):
            room = managers_room(api)
            await chat.notify()
            message = api.sent(MANAGERS)[0]
            before = message.text
            query = await press(api, bot, room, message.message_id, f"t:done:{detractor}")
            assert await chat.handle_press(query) is True

            row = task(tg, detractor)
            assert row.state == "done" and row.done_at == NOW
            edited = api.sent(MANAGERS)[0]
            assert edited.text == before + "\n\n✅ Готово — Мария"
            assert edited.buttons() == []
            assert edited.edits[-1]["method"] == "editMessageText"
            assert api.callback_answers[-1].text == "Готово"

    run(scenario)


def test_call_later_moves_the_due_time_by_two_hours(tg: App) -> None:
    detractor, callback = two_tasks(tg)

    async def scenario() -> None:
        async with telegram(tg) as (api, bot, chat):
            room = managers_room(api)
            await chat.notify()
            first, second = api.sent(MANAGERS)

            # Due tomorrow at 15:00 Moscow: two hours later the same day.
            query = await press(api, bot, room, second.message_id, f"t:later:{callback}")
            assert await chat.handle_press(query)
            row = task(tg, callback)
            assert row.state == "open"
            assert row.due_at == datetime(2026, 11, 23, 12, 0, tzinfo=UTC) + LATER_BY
            assert api.callback_answers[-1].text == "Перенесено на 23.11.2026 17:00"
            edited = api.sent(MANAGERS)[1]
            assert edited.text.endswith("\n\n⏰ Позже, до 23.11.2026 17:00 — Мария")
            # The task is still open: its buttons stay.
            assert data_of(edited) == [f"t:done:{callback}", f"t:later:{callback}"]

            # Due now: two hours from now.
            query = await press(api, bot, room, first.message_id, f"t:later:{detractor}")
            assert await chat.handle_press(query)
            assert task(tg, detractor).due_at == NOW + timedelta(hours=2)

            # Then done from the same message; a press on a finished task changes nothing.
            query = await press(api, bot, room, first.message_id, f"t:done:{detractor}")
            assert await chat.handle_press(query)
            assert task(tg, detractor).state == "done"
            assert api.sent(MANAGERS)[0].text.endswith("— Мария\n\n✅ Готово — Мария")

    run(scenario)


def test_presses_on_finished_and_unknown_tasks_are_answered_politely(tg: App) -> None:
    detractor, callback = two_tasks(tg)

    async def scenario() -> None:
        async with telegram(tg) as (api, bot, chat):
            room = managers_room(api)
            await chat.notify()
            first, second = api.sent(MANAGERS)
            with tg.sessions.begin() as session:  # done with `boomerang tasks done`
                session.get(ManagerTask, callback).state = "done"  # type: ignore[union-attr]
            query = await press(api, bot, room, second.message_id, f"t:later:{callback}")
            assert await chat.handle_press(query)
            assert api.callback_answers[-1].text == "Эта задача уже выполнена"
            assert api.sent(MANAGERS)[1].buttons() == []
            assert task(tg, callback).due_at == datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

            stray = await chat.sender.send(MANAGERS, "old", chat.buttons(999_999))
            assert hasattr(stray, "message_id")
            query = await press(api, bot, room, stray.message_id, "t:done:999999")
            assert await chat.handle_press(query)
            assert api.callback_answers[-1].text == "Такой задачи нет"

    run(scenario)


def test_a_press_outside_the_managers_chat_changes_nothing(tg: App) -> None:
    detractor, _ = two_tasks(tg)

    async def scenario() -> None:
        async with telegram(tg) as (api, bot, chat):
            managers_room(api)
            await chat.notify()
            customer = api.user(501, "Анна")
            customer.started = True
            keyboard = chat.buttons(detractor)
            keyboard["inline_keyboard"].append([{"text": "x", "callback_data": "a:1:abcd1234:0"}])
            stray = await chat.sender.send(customer.id, "forwarded", keyboard)
            assert hasattr(stray, "message_id")

            query = await press(api, bot, customer, stray.message_id, f"t:done:{detractor}")
            assert await chat.handle_press(query) is True
            assert api.callback_answers[-1].text == "Эти кнопки работают только в чате менеджеров"
            assert task(tg, detractor).state == "open"
            assert api.last_sent(customer.id).edits == []
            assert api.sent(MANAGERS)[0].edits == []

            # Not a managers' button: left to the caller, not answered.
            answered = len(api.callback_answers)
            query = await press(api, bot, customer, stray.message_id, "a:1:abcd1234:0")
            assert await chat.handle_press(query) is False
            assert len(api.callback_answers) == answered

    run(scenario)


def test_english_by_the_default_locale(tg: App) -> None:
    settings = tg.settings.model_copy(update={"default_locale": "en"})
    en = replace(tg, settings=settings)
    detractor, _ = two_tasks(en)

    async def scenario() -> None:
        async with telegram(en) as (api, bot, chat):
            room = managers_room(api)
            await chat.notify()
            first = api.sent(MANAGERS)[0]
            assert first.text.startswith(f"⚠️ Low score · task #{detractor}")
            assert "Due: 2026-11-22 15:00 (Europe/Moscow) — now" in first.text
            assert "Telegram: linked" in first.text
            assert "• 2026-11-17 — RUB1,990" in first.text
            assert "• Reason: price" in first.text
            assert [b["text"] for b in first.buttons()] == ["✅ Done", "⏰ Call later"]
            query = await press(api, bot, room, first.message_id, f"t:done:{detractor}")
            await chat.handle_press(query)
            assert api.sent(MANAGERS)[0].text.endswith("\n\n✅ Done — Мария")
            assert api.callback_answers[-1].text == "Done"

    run(scenario)


def test_overlapping_notifiers_post_each_task_once(tg: App) -> None:
    two_tasks(tg)

    async def scenario() -> None:
        async with telegram(tg) as (api, _bot, chat):
            managers_room(api)
            other = ManagersChat(tg, chat.sender, MANAGERS)
            counts = await asyncio.gather(chat.notify(), other.notify(), chat.notify())
            assert sum(counts) == 2
            assert len(api.sent(MANAGERS)) == 2

    run(scenario)
