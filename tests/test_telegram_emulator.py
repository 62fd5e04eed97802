"""The Bot API emulator (bot.testing.telegram) driven by real aiogram."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.filters import CommandStart
from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)
from aiohttp import ClientSession, web

from bot.testing.telegram import BotApiEmulator, Limiter, WebhookDelivery

TOKEN = "123:ABC"


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(scenario())


@contextlib.asynccontextmanager
async def emulated(**options: Any) -> AsyncIterator[tuple[BotApiEmulator, Bot]]:
    async with BotApiEmulator(token=TOKEN, username="boomerang_test_bot", **options) as api:
        bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(api.base_url)))
        try:
            yield api, bot
        finally:
            await bot.session.close()


def keyboard(*data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=d.title(), callback_data=d) for d in data]]
    )


def test_get_me_and_send_message_with_keyboards() -> None:
    async def scenario() -> None:
        async with emulated(chat_interval=None) as (api, bot):
            me = await bot.get_me()
            assert (me.id, me.username, me.is_bot) == (123, "boomerang_test_bot", True)
            anna = api.user(1001, first_name="Анна")
            await api.start(anna)

            sent = await bot.send_message(
                1001, "Как вам заказ?", reply_markup=keyboard("yes", "no")
            )
            assert sent.chat.id == 1001 and sent.text == "Как вам заказ?"
            assert sent.reply_markup is not None
            assert sent.reply_markup.inline_keyboard[0][1].callback_data == "no"

            contact_kb = ReplyKeyboardMarkup(
                keyboard=[[KeyboardButton(text="Поделиться номером", request_contact=True)]],
                resize_keyboard=True,
                one_time_keyboard=True,
            )
            second = await bot.send_message(1001, "Ваш номер?", reply_markup=contact_kb)
            assert second.reply_markup is None  # Telegram echoes only inline keyboards
            third = await bot.send_message(1001, "Спасибо", reply_markup=ReplyKeyboardRemove())

            messages = api.sent(1001)
            assert [m.message_id for m in messages] == [
                sent.message_id,
                second.message_id,
                third.message_id,
            ]
            assert messages[0].buttons()[0] == {"text": "Yes", "callback_data": "yes"}
            assert messages[1].reply_markup is not None
            button = messages[1].reply_markup["keyboard"][0][0]
            assert button == {"text": "Поделиться номером", "request_contact": True}
            assert messages[2].reply_markup == {"remove_keyboard": True}
            assert api.calls_to("sendMessage")[0].status == 200

    run(scenario)


def test_updates_from_simulated_users() -> None:
    async def scenario() -> None:
        async with emulated() as (api, bot):
            anna = api.user(1001, first_name="Анна", username="anna")
            await api.start(anna, payload="tok123")
            await api.say(anna, "Привет")
            updates = await bot.get_updates()
            assert [u.message.text for u in updates if u.message] == ["/start tok123", "Привет"]
            start = updates[0].message
            assert start is not None and start.from_user is not None
            assert start.from_user.username == "anna" and start.from_user.language_code == "ru"
            assert start.entities is not None and start.entities[0].type == "bot_command"
            assert start.entities[0].length == 6

            # getUpdates keeps updates until an offset confirms them.
            assert len(await bot.get_updates()) == 2
            last = updates[-1].update_id
            assert await bot.get_updates(offset=last + 1) == []

            sent = await bot.send_message(1001, "Оценка?", reply_markup=keyboard("5", "1"))
            query = await api.press(anna, sent.message_id, "5")
            await api.share_contact(anna, "79161234567")
            updates = await bot.get_updates(offset=last + 1)
            callback = updates[0].callback_query
            assert callback is not None and callback.data == "5"
            assert callback.id == query["id"] and callback.from_user.id == 1001
            assert isinstance(callback.message, Message)
            assert callback.message.message_id == sent.message_id
            contact = updates[1].message
            assert contact is not None and contact.contact is not None
            assert contact.contact.phone_number == "79161234567"
            assert contact.contact.user_id == 1001

            assert await bot.answer_callback_query(callback.id, text="Спасибо!")
            assert api.callback_answers[0].text == "Спасибо!"
            assert api.callback_answers[0].data == "5"
            with pytest.raises(TelegramBadRequest, match="query is too old"):
                await bot.answer_callback_query(callback.id)

            with pytest.raises(LookupError):
                await api.press(anna, sent.message_id, "7")
            with pytest.raises(LookupError):
                await api.press(anna, 999, "5")

    run(scenario)


def test_one_message_per_second_to_a_chat_is_enforced_with_429() -> None:
    async def scenario() -> None:
        async with emulated(rate=30.0, chat_interval=1.0) as (api, bot):
            await api.start(api.user(1001))
            await api.start(api.user(1002))
            await bot.send_message(1001, "one")
            with pytest.raises(TelegramRetryAfter) as caught:
                await bot.send_message(1001, "two")
            assert caught.value.retry_after == 1
            assert "Too Many Requests: retry after 1" in str(caught.value)
            await bot.send_message(1002, "another chat is fine")
            assert [m.text for m in api.sent(1001)] == ["one"]  # the 429 had no effect
            assert api.too_many_requests == 1
            assert api.calls_to("sendMessage")[1].status == 429

    run(scenario)


def test_the_bot_wide_rate_is_enforced_with_429() -> None:
    async def scenario() -> None:
        async with emulated(rate=3.0, chat_interval=None) as (api, bot):
            for chat in range(1, 5):
                await api.start(api.user(chat))
            for chat in range(1, 4):
                await bot.send_message(chat, "hi")
            with pytest.raises(TelegramRetryAfter) as caught:
                await bot.send_message(4, "hi")
            assert caught.value.retry_after == 1
            assert api.sent(4) == [] and api.too_many_requests == 1

    run(scenario)


def test_limiter_retry_after_counts_down_and_none_disables() -> None:
    limiter = Limiter(rate=2.0, chat_interval=5.0)
    assert limiter.wait(1, 100.0) == 0.0
    limiter.record(1, 100.0)
    limiter.record(2, 100.2)
    assert limiter.wait(3, 100.5) == pytest.approx(0.5)  # 2 in the last second
    assert limiter.wait(1, 101.5) == pytest.approx(3.5)  # 5 s between two to one chat
    assert limiter.wait(3, 101.5) == 0.0
    free = Limiter(rate=None, chat_interval=None)
    for _ in range(1000):
        free.record(1, 0.0)
    assert free.wait(1, 0.0) == 0.0


def test_errors_blocked_not_started_unknown_chat_empty_text() -> None:
    async def scenario() -> None:
        async with emulated(chat_interval=None) as (api, bot):
            anna = api.user(1001)
            api.user(1002)  # never pressed Start
            with pytest.raises(TelegramForbiddenError, match="can't initiate conversation"):
                await bot.send_message(1002, "hi")
            with pytest.raises(TelegramBadRequest, match="chat not found"):
                await bot.send_message(5555, "hi")
            await api.start(anna)
            with pytest.raises(TelegramBadRequest, match="message text is empty"):
                await bot.send_message(1001, "")
            with pytest.raises(TelegramBadRequest, match="can't parse entities"):
                await bot.send_message(1001, "<blink>x</blink>", parse_mode="HTML")

            change = await api.block(anna)
            assert change["new_chat_member"]["status"] == "kicked"
            with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
                await bot.send_message(1001, "hi")
            updates = await bot.get_updates()
            member = updates[-1].my_chat_member
            assert member is not None and member.new_chat_member.status == "kicked"
            assert member.old_chat_member.status == "member"
            with pytest.raises(RuntimeError):
                await api.say(anna, "blocked users cannot write")

            api.unblock(anna)
            await bot.send_message(1001, "welcome back")

            api.fail_next(1001, 500, "Internal Server Error")
            with pytest.raises(Exception, match="Internal Server Error"):
                await bot.send_message(1001, "boom")
            await bot.send_message(1001, "the fault was used once")
            assert [m.text for m in api.sent(1001)] == ["welcome back", "the fault was used once"]

    run(scenario)


def test_edit_and_delete() -> None:
    async def scenario() -> None:
        async with emulated(chat_interval=None) as (api, bot):
            anna = api.user(1001)
            await api.start(anna)
            sent = await bot.send_message(1001, "<b>Вопрос</b>", parse_mode="HTML")
            record = api.sent(1001)[0]
            assert record.text == "Вопрос" and record.raw_text == "<b>Вопрос</b>"
            assert record.entities == [{"type": "bold", "offset": 0, "length": 6}]

            edited = await bot.edit_message_text(
                "Ответ?", chat_id=1001, message_id=sent.message_id, reply_markup=keyboard("a")
            )
            assert isinstance(edited, Message) and edited.edit_date is not None
            with pytest.raises(TelegramBadRequest, match="message is not modified"):
                await bot.edit_message_text(
                    "Ответ?", chat_id=1001, message_id=sent.message_id, reply_markup=keyboard("a")
                )
            await bot.edit_message_reply_markup(
                chat_id=1001, message_id=sent.message_id, reply_markup=keyboard("b")
            )
            with pytest.raises(LookupError):
                await api.press(anna, sent.message_id, "a")  # that button is gone
            await api.press(anna, sent.message_id, "b")
            record = api.sent(1001)[0]
            assert record.text == "Ответ?" and record.buttons()[0]["callback_data"] == "b"
            assert [e["method"] for e in record.edits] == [
                "editMessageText",
                "editMessageReplyMarkup",
            ]

            assert await bot.delete_message(1001, sent.message_id)
            assert api.sent(1001)[0].deleted
            with pytest.raises(TelegramBadRequest, match="message to delete not found"):
                await bot.delete_message(1001, sent.message_id)
            with pytest.raises(TelegramBadRequest, match="message to edit not found"):
                await bot.edit_message_text("x", chat_id=1001, message_id=sent.message_id)

            assert await bot.send_chat_action(1001, "typing")
            assert api.chat_actions == [(1001, "typing")]

    run(scenario)


def test_long_polling_returns_as_soon_as_an_update_arrives() -> None:
    async def scenario() -> None:
        async with emulated() as (api, bot):
            anna = api.user(1001)

            async def later() -> None:
                await asyncio.sleep(0.2)
                await api.say(anna, "я тут")

            task = asyncio.create_task(later())
            began = time.monotonic()
            updates = await bot.get_updates(timeout=10)
            await task
            assert time.monotonic() - began < 3
            assert [u.message.text for u in updates if u.message] == ["я тут"]

            began = time.monotonic()
            offset = updates[0].update_id + 1
            assert await bot.get_updates(offset=offset, timeout=1) == []
            assert time.monotonic() - began >= 0.9

    run(scenario)


def test_webhook_delivery_with_secret_retries_and_redelivery() -> None:
    async def scenario() -> None:
        received: list[tuple[dict[str, Any], str | None]] = []
        answers = [500]  # the first delivery fails, the rest succeed

        async def hook(request: web.Request) -> web.Response:
            received.append(
                (await request.json(), request.headers.get("X-Telegram-Bot-Api-Secret-Token"))
            )
            return web.Response(status=answers.pop(0) if answers else 200)

        app = web.Application()
        app.router.add_post("/hook", hook)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            async with emulated(webhook_backoff=0.01) as (api, bot):
                url = f"http://127.0.0.1:{port}/hook"
                assert await bot.set_webhook(url, secret_token="s3cret", drop_pending_updates=True)
                info = await bot.get_webhook_info()
                assert info.url == url and info.pending_update_count == 0
                with pytest.raises(TelegramConflictError):
                    await bot.get_updates()

                message = await api.say(api.user(1001), "hello")
                await api.idle()
                assert [(u["message"]["text"], s) for u, s in received] == [
                    ("hello", "s3cret"),
                    ("hello", "s3cret"),
                ]
                update_id = received[0][0]["update_id"]
                assert received[0][0]["message"]["message_id"] == message["message_id"]
                assert api.webhook_deliveries == [
                    WebhookDelivery(update_id, 500),
                    WebhookDelivery(update_id, 200),
                ]
                assert (await bot.get_webhook_info()).last_error_message is not None

                await api.deliver_again(update_id)
                await api.idle()
                assert received[-1][0] == received[0][0]

                assert await bot.delete_webhook()
                await api.say(api.user(1001), "polling again")
                assert [u.message.text for u in await bot.get_updates() if u.message] == [
                    "polling again"
                ]
        finally:
            await runner.cleanup()

    run(scenario)


def test_webhook_connection_errors_are_retried_then_given_up() -> None:
    async def scenario() -> None:
        async with emulated(webhook_backoff=0.01, webhook_attempts=3) as (api, bot):
            await bot.set_webhook("http://127.0.0.1:9/nowhere")
            await api.say(api.user(7), "hi")
            await api.idle()
            assert [d.status for d in api.webhook_deliveries] == [None, None, None]
            assert all(d.error for d in api.webhook_deliveries)

    run(scenario)


def test_wrong_token_unknown_method_and_raw_bodies() -> None:
    async def scenario() -> None:
        async with BotApiEmulator(token=TOKEN) as api:
            wrong = Bot(
                "999:WRONG", session=AiohttpSession(api=TelegramAPIServer.from_base(api.base_url))
            )
            try:
                with pytest.raises(TelegramUnauthorizedError):
                    await wrong.get_me()
            finally:
                await wrong.session.close()
            await api.start(api.user(42))
            async with ClientSession() as http:
                base = f"{api.base_url}/bot{TOKEN}"
                async with http.post(f"{base}/noSuchMethod") as response:
                    assert response.status == 404
                    assert await response.json() == {
                        "ok": False,
                        "error_code": 404,
                        "description": "Not Found",
                    }
                markup = {"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}
                async with http.post(
                    f"{base}/sendMessage",
                    json={"chat_id": 42, "text": "json", "reply_markup": markup},
                ) as response:
                    body = await response.json()
                    assert body["ok"] and body["result"]["reply_markup"] == markup
                async with http.get(f"{base}/getChat", params={"chat_id": "42"}) as response:
                    body = await response.json()
                    assert body["result"]["type"] == "private"
                async with http.post(
                    f"{base}/sendMessage", data={"chat_id": "42", "text": "x", "reply_markup": "{"}
                ) as response:
                    assert response.status == 400
                    assert (await response.json())["error_code"] == 400
                async with http.post(
                    f"{base}/setMyCommands",
                    data={"commands": json.dumps([{"command": "start", "description": "Начать"}])},
                ) as response:
                    assert (await response.json())["result"] is True
            assert api.commands["default|"] == [{"command": "start", "description": "Начать"}]

    run(scenario)


def test_a_real_aiogram_dispatcher_answers_start_with_a_deep_link() -> None:
    async def scenario() -> None:
        async with emulated() as (api, bot):
            dp = Dispatcher()

            @dp.message(CommandStart(deep_link=True))
            async def on_start(message: Message) -> None:
                payload = (message.text or "").split(maxsplit=1)[1]
                await message.answer(f"linked {payload}")

            polling = asyncio.create_task(
                dp.start_polling(
                    bot, handle_signals=False, close_bot_session=False, polling_timeout=1
                )
            )
            try:
                await api.start(api.user(1001), payload="abc")
                for _ in range(100):
                    if api.sent(1001):
                        break
                    await asyncio.sleep(0.05)
                assert [m.text for m in api.sent(1001)] == ["linked abc"]
            finally:
                await dp.stop_polling()
                await polling

    run(scenario)


def test_runs_as_a_process_with_a_control_api() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.testing.telegram", "--port", "0", "--token", TOKEN],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")

        async def scenario() -> None:
            async with ClientSession() as http:
                async with http.post(
                    f"{base_url}/_emulator/users/5/say", json={"text": "hi", "first_name": "Ivan"}
                ) as response:
                    assert (await response.json())["ok"]
                async with http.post(f"{base_url}/bot{TOKEN}/getUpdates") as response:
                    updates = (await response.json())["result"]
                    assert updates[0]["message"]["from"]["first_name"] == "Ivan"
                async with http.get(f"{base_url}/_emulator/stats") as response:
                    assert (await response.json())["result"]["updates"] == 1

        run(scenario)
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def test_deliver_again_in_polling_mode_returns_a_confirmed_update_once() -> None:
    async def scenario() -> None:
        async with emulated() as (api, bot):
            await api.say(api.user(1001), "один раз")
            first = await bot.get_updates()
            offset = first[0].update_id + 1
            assert await bot.get_updates(offset=offset) == []
            await api.deliver_again(first[0].update_id)
            again = await bot.get_updates(offset=offset)
            assert [u.update_id for u in again] == [first[0].update_id]
            assert await bot.get_updates(offset=offset) == []

    run(scenario)
