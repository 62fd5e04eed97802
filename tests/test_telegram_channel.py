"""The Telegram channel end to end: real aiogram against the Bot API emulator (bot.testing).

Campaign rows go through the real dispatcher into `TelegramService.channel`; customers answer
through the emulator (buttons, text, contacts, /stop, blocking); the service reads updates by long
polling (`poll_once`) or the webhook route, and every result is checked in the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from bot.app import App
from bot.campaign.dispatcher import Dispatcher
from bot.campaign.guard import GuardPolicy
from bot.campaign.loader import LoadedCampaign, load_campaign
from bot.channel.base import Contact, Delivery
from bot.channel.simulated import Persona, SimulatedChannel
from bot.channel.telegram.links import make_token, secret_from_settings
from bot.channel.telegram.sender import Pace, Sender
from bot.channel.telegram.service import SECRET_HEADER, WEBHOOK_PATH, TelegramService, make_bot
from bot.clock import FixedClock
from bot.db.models import Consent, Customer
from bot.db.outreach import Outreach
from bot.db.tasks import ManagerTask
from bot.db.telegram import TelegramChat, TelegramMessage, TelegramUpdate
from bot.dialog.library import Library, load_library
from bot.testing.telegram import BotApiEmulator, SimUser
from bot.web import web_app
from tests.outreach_factory import customer, queue

DIALOGS = Path(__file__).resolve().parent.parent / "dialogs"
TOKEN = "123456:TEST-TOKEN"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
"""A Sunday, 15:00 in Moscow and 12:00 in London: inside the campaigns' windows."""

CAMPAIGN = """\
id: {id}
title: {id}
audience: {{kind: {kind}}}
script: {script}
channels: [{channels}]
purpose: {purpose}
schedule: {{cron: "0 12 * * *", time_zone: Europe/Moscow}}
window: {{from: "09:00", to: "21:00"}}
frequency_cap: {{days: 0}}
"""


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(scenario())


@pytest.fixture
def tg(app: App) -> App:
    """The test app with a bot token (it also signs the deep links) and a shop name."""
    settings = app.settings.model_copy(
        update={
            "telegram_token": TOKEN,
            "telegram_bot_username": "boomerang_test_bot",
            "telegram_webhook_secret": "s3cret-Token_1",
            "company_name": "Зерно",
        }
    )
    return replace(app, settings=settings)


@pytest.fixture(scope="module")
def library() -> Library:
    loaded = load_library(DIALOGS)
    assert not loaded.errors
    return loaded


@contextlib.asynccontextmanager
async def telegram(
    app: App, library: Library, *, pace: Pace | None = None, **limits: Any
) -> AsyncIterator[tuple[BotApiEmulator, TelegramService]]:
    options: dict[str, Any] = {"rate": None, "chat_interval": None, **limits}
    async with BotApiEmulator(token=TOKEN, **options) as api:
        bot = make_bot(TOKEN, api.base_url)
        service = TelegramService(app, library, bot, Sender(bot, pace or Pace(None, 0)))
        try:
            yield api, service
        finally:
            await service.close()


async def pump(service: TelegramService) -> None:
    """Read and process every update waiting (long polling without the wait)."""
    while await service.poll_once(0):
        pass


def campaign(
    tmp_path: Path,
    id: str,
    script: str,
    *,
    kind: str = "post-order",
    channels: str = "telegram",
    purpose: str = "survey",
) -> LoadedCampaign:
    path = tmp_path / f"{id}.yaml"
    text = CAMPAIGN.format(id=id, script=script, kind=kind, channels=channels, purpose=purpose)
    path.write_text(text, encoding="utf-8")
    return load_campaign(path)


def dispatcher(
    app: App, library: Library, service: TelegramService, *loaded: LoadedCampaign, **extra: Any
) -> Dispatcher:
    channels = {"telegram": service.channel, **extra}
    return Dispatcher(
        app, {c.campaign.id: c for c in loaded}, library, channels, GuardPolicy(), "w"
    )


def row(app: App, customer_id: int) -> Outreach:
    with app.sessions() as session:
        found = session.scalars(
            select(Outreach).where(Outreach.customer_id == customer_id).order_by(Outreach.id)
        ).all()
    assert len(found) == 1, found
    return found[0]


def button(api: BotApiEmulator, user: SimUser, label: str) -> tuple[int, str]:
    """(message id, callback data) of the button labelled `label` on the last message."""
    message = api.last_sent(user.id)
    for candidate in message.buttons():
        if candidate["text"] == label:
            return message.message_id, str(candidate["callback_data"])
    raise AssertionError(f"no button {label!r} in {[b['text'] for b in message.buttons()]}")


async def press(api: BotApiEmulator, service: TelegramService, user: SimUser, label: str) -> None:
    message_id, data = button(api, user, label)
    await api.press(user, message_id, data)
    await pump(service)


async def say(api: BotApiEmulator, service: TelegramService, user: SimUser, text: str) -> None:
    await api.say(user, text)
    await pump(service)


def texts(api: BotApiEmulator, user: SimUser) -> list[str]:
    return [message.text for message in api.sent(user.id)]


# --- linking ---


def test_linking_by_token_by_phone_and_unknown_users_kept(tg: App, library: Library) -> None:
    anna = customer(tg, "Анна", phone="+79161234567")
    boris = customer(tg, "Борис", phone="+79167654321")
    token = make_token(
        anna, secret_from_settings(tg.settings), NOW + timedelta(days=30), b"nonce-01"
    )

    async def scenario() -> None:
        async with telegram(tg, library) as (api, service):
            a, b, c = api.user(501), api.user(502), api.user(503, "Carl", "en")
            await api.start(a, token)
            await pump(service)
            assert "Готово, Анна!" in api.last_sent(a.id).text
            # /start without a token: the contact button, then the shared number links Boris.
            await api.start(b)
            await pump(service)
            keyboard = api.last_sent(b.id).reply_markup
            assert keyboard is None or "inline_keyboard" not in keyboard
            request = api.calls_to("sendMessage")[-1].params["reply_markup"]
            assert "request_contact" in str(request)
            await api.share_contact(b, "79167654321")  # Telegram apps often drop the "+"
            await pump(service)
            assert "Готово, Борис!" in api.last_sent(b.id).text
            # Someone we don't know: a polite answer, kept as an unlinked contact.
            await api.start(c)
            await pump(service)
            await api.share_contact(c, "+14155550134")
            await pump(service)
            assert "found no customer" in api.last_sent(c.id).text
            # The same token again, from another chat: refused, the link stands.
            await api.start(c, token)
            await pump(service)
            assert "no longer works" in api.last_sent(c.id).text

    run(scenario)
    with tg.sessions() as session:
        chats = {c.chat_id: c for c in session.scalars(select(TelegramChat))}
        linked = {i: c for i, c in session.execute(select(Customer.id, Customer.telegram_chat_id))}
    assert linked == {anna: 501, boris: 502}
    assert (chats[503].customer_id, chats[503].phone) == (None, "+14155550134")


# --- whole conversations ---


def test_feedback_conversation_in_russian_with_buttons_and_text(
    tg: App, library: Library, tmp_path: Path
) -> None:
    anna = customer(tg, "Анна", chat=601)
    loaded = campaign(tmp_path, "feedback", "post_order_feedback")
    queue(tg, loaded, anna)

    async def scenario() -> None:
        async with telegram(tg, library) as (api, service):
            user = api.user(601)
            await api.start(user)
            await pump(service)
            summary = await dispatcher(tg, library, service, loaded).tick()
            assert (summary.sent, summary.in_conversation) == (1, 1)
            first = api.last_sent(user.id)
            assert "Здравствуйте, Анна! Это Зерно" in first.text
            assert [b["text"] for b in first.buttons()] == ["Да", "Нет"]
            await press(api, service, user, "Да")
            nps = api.last_sent(user.id)
            rows = nps.reply_markup["inline_keyboard"] if nps.reply_markup else []
            assert [[b["text"] for b in r] for r in rows] == [
                ["0", "1", "2", "3", "4", "5"],
                ["6", "7", "8", "9", "10"],
            ]
            # The answered question's keyboard is gone, and the press was acknowledged.
            assert api.sent(user.id)[-2].buttons() == []
            assert len(api.callback_answers) == 1
            await press(api, service, user, "9")
            assert "отзыв" in api.last_sent(user.id).text
            await say(api, service, user, "нет")  # typed, not pressed
            assert "порекомендуете нас другу" in api.last_sent(user.id).text
            await say(api, service, user, "да, конечно")
            assert f"FRIEND-{anna}" in api.last_sent(user.id).text
            # A press on an old question's button changes nothing.
            old = api.sent(user.id)[1]
            assert old.buttons() == []

    run(scenario)
    done = row(tg, anna)
    assert (done.state, done.outcome, done.channel) == ("done", "feedback_given", "telegram")
    assert done.conversation is not None
    answers = done.conversation["answers"]
    assert (answers["nps"], answers["review_agreed"], answers["referral_agreed"]) == (
        9,
        False,
        True,
    )
    with tg.sessions() as session:
        stored = session.scalars(
            select(TelegramMessage.seq).where(TelegramMessage.outreach_id == done.id)
        ).all()
        assert sorted(stored) == list(range(len(stored))) and len(stored) == 5
        states = set(session.scalars(select(TelegramMessage.state)))
    assert states == {"sent"}


def test_feedback_conversation_in_english_books_a_callback(
    tg: App, library: Library, tmp_path: Path
) -> None:
    john = customer(tg, "John", locale="en", chat=602, zone="Europe/London", phone="+447700900123")
    loaded = campaign(tmp_path, "feedback", "post_order_feedback")
    queue(tg, loaded, john)

    async def scenario() -> None:
        async with telegram(tg, library) as (api, service):
            user = api.user(602, "John", "en")
            await api.start(user)
            await pump(service)
            await dispatcher(tg, library, service, loaded).tick()
            assert "Hello John!" in api.last_sent(user.id).text
            await press(api, service, user, "Yes")
            await press(api, service, user, "4")
            await say(api, service, user, "the delivery took too long")
            await press(api, service, user, "Yes")
            await say(api, service, user, "tomorrow at 3 pm")
            assert "A manager will call you then" in api.last_sent(user.id).text

    run(scenario)
    done = row(tg, john)
    assert (done.state, done.outcome) == ("done", "callback_booked")
    assert done.conversation is not None
    assert done.conversation["answers"]["nps"] == 4
    with tg.sessions() as session:
        tasks = {t.kind: t for t in session.scalars(select(ManagerTask))}
    # 15:00 London tomorrow (GMT in November) = 15:00 UTC; and the detractor's follow-up.
    assert tasks["callback"].due_at == datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
    assert "NPS 4" in tasks["detractor"].note


@pytest.mark.parametrize(
    ("locale", "chat", "yes", "reason", "offer_words"),
    [
        ("ru", 701, "Да", "дороговато", "по коду"),
        ("en", 702, "Yes", "too expensive", "code"),
    ],
)
def test_winback_conversation_from_reason_to_offer(
    tg: App,
    library: Library,
    tmp_path: Path,
    locale: str,
    chat: int,
    yes: str,
    reason: str,
    offer_words: str,
) -> None:
    who = customer(tg, "Вера", locale=locale, chat=chat, marketing=True)
    loaded = campaign(tmp_path, "winback", "winback", kind="lapsed", purpose="marketing")
    queue(tg, loaded, who)

    async def scenario() -> None:
        async with telegram(tg, library) as (api, service):
            user = api.user(chat, "Вера", locale)
            await api.start(user)
            await pump(service)
            await dispatcher(tg, library, service, loaded).tick()
            await press(api, service, user, yes)
            assert len(api.last_sent(user.id).buttons()) == 8  # the reasons, one per row
            await say(api, service, user, reason)  # free text through the matcher
            offer = api.last_sent(user.id).text
            assert offer_words in offer and f"BACK-{who}" in offer and "15%" in offer
            await press(api, service, user, yes)

    run(scenario)
    done = row(tg, who)
    assert (done.state, done.outcome) == ("done", "offer_accepted")
    assert done.conversation is not None
    assert done.conversation["answers"]["reason"] == "price"
    assert done.conversation["answers"]["offer_accepted"] is True


# --- restarts and pinned versions ---


def test_an_answer_after_a_restart_continues_on_the_pinned_script_version(
    tg: App, library: Library, tmp_path: Path
) -> None:
    folder = tmp_path / "dialogs"
    shutil.copytree(DIALOGS, folder)
    before = load_library(folder)
    anna = customer(tg, "Анна", chat=801)
    loaded = campaign(tmp_path, "feedback", "post_order_feedback")
    queue(tg, loaded, anna)

    async def first_run(api: BotApiEmulator) -> None:
        bot = make_bot(TOKEN, api.base_url)
        service = TelegramService(tg, before, bot, Sender(bot, Pace(None, 0)))
        try:
            await api.start(api.user(801))
            await pump(service)
            await dispatcher(tg, before, service, loaded).tick()
        finally:
            await service.close()

    async def scenario() -> None:
        async with BotApiEmulator(token=TOKEN, rate=None, chat_interval=None) as api:
            await first_run(api)
            # The manager edits the script while the customer thinks it over; the service restarts.
            script = folder / "post_order_feedback.ru.yaml"
            text = script.read_text(encoding="utf-8")
            script.write_text(
                text.replace("Оцените от 0 до 10", "Новая версия: оцените от 0 до 10"),
                encoding="utf-8",
            )
            after = load_library(folder)
            assert (
                after.scripts[("post_order_feedback", "ru")].version != row(tg, anna).script_version
            )
            bot = make_bot(TOKEN, api.base_url)
            service = TelegramService(tg, after, bot, Sender(bot, Pace(None, 0)))
            try:
                await service.recover()
                user = api.user(801)
                message_id, data = button(api, user, "Да")
                await api.press(user, message_id, data)
                await pump(service)
                asked = api.last_sent(user.id).text
                assert asked.startswith("Оцените от 0 до 10"), asked  # the old version's words
            finally:
                await service.close()

    run(scenario)
    assert row(tg, anna).state == "in_conversation"


# --- opt-out ---


def test_opt_out_by_command_by_words_and_by_blocking(
    tg: App, library: Library, tmp_path: Path
) -> None:
    ids = [customer(tg, f"c{i}", chat=900 + i) for i in range(4)]
    loaded = campaign(tmp_path, "feedback", "post_order_feedback")
    queue(tg, loaded, *ids)

    async def scenario() -> None:
        async with telegram(tg, library) as (api, service):
            users = [api.user(900 + i) for i in range(4)]
            for user in users:
                await api.start(user)
            await pump(service)
            await dispatcher(tg, library, service, loaded).tick()
            await say(api, service, users[0], "/stop")
            await say(api, service, users[1], "не пишите мне больше")  # inside the conversation
            await api.block(users[2])
            await pump(service)
            await press(api, service, users[3], "Нет")  # ends the conversation: declined
            await say(api, service, users[3], "стоп")  # outside any conversation
            for user in (users[0], users[1], users[3]):
                assert "больше не будем" in api.last_sent(user.id).text.lower() or (
                    api.last_sent(user.id).text != ""
                )

    run(scenario)
    with tg.sessions() as session:
        opted = {i: at for i, at in session.execute(select(Customer.id, Customer.opted_out_at))}
        withdrawn = session.scalars(
            select(Consent.purpose).where(Consent.customer_id == ids[2], Consent.granted.is_(False))
        ).all()
    assert [opted[i] is not None for i in ids] == [True, True, False, True]
    assert sorted(withdrawn) == ["marketing", "service", "survey"]
    outcomes = [(row(tg, i).state, row(tg, i).outcome) for i in ids]
    assert outcomes == [
        ("done", "opted_out"),
        ("done", "opted_out"),
        ("done", "hung_up"),
        ("done", "declined"),
    ]


# --- limits and failures ---


class Recording:
    """A voice channel that records who it was asked to call."""

    name = "voice"

    def __init__(self) -> None:
        self.inner = SimulatedChannel(Persona("yes"), seed=1, now=NOW, name="voice")
        self.customers: list[int] = []

    async def start_conversation(self, contact: Contact) -> Delivery:
        self.customers.append(contact.customer_id)
        return await self.inner.start_conversation(contact)


def test_a_blocked_user_falls_back_to_the_campaigns_next_channel(
    tg: App, library: Library, tmp_path: Path
) -> None:
    who = customer(tg, "Глеб", chat=1001, phone="+79160000001")
    loaded = campaign(tmp_path, "feedback", "post_order_feedback", channels="telegram, voice")
    queue(tg, loaded, who)
    voice = Recording()

    async def scenario() -> None:
        async with telegram(tg, library) as (api, service):
            user = api.user(1001)
            await api.start(user)
            await pump(service)
            await api.block(user)  # the update is not read yet: the dispatcher meets the 403
            worker = dispatcher(tg, library, service, loaded, voice=voice)
            first = await worker.tick()
            assert first.retry == 1 and voice.customers == []
            second = await worker.tick()
            assert second.done == 1

    run(scenario)
    assert voice.customers == [who]
    done = row(tg, who)
    assert (done.state, done.channel, done.attempts) == ("done", "voice", 2)


def test_a_429_is_waited_out_exactly_and_the_message_sent_once(
    tg: App, library: Library, tmp_path: Path
) -> None:
    who = customer(tg, "Дина", chat=1101)
    loaded = campaign(tmp_path, "feedback", "post_order_feedback")
    queue(tg, loaded, who)

    async def scenario() -> None:
        async with telegram(tg, library, pace=Pace(30.0, 1.0), rate=30.0, chat_interval=1.0) as (
            api,
            service,
        ):
            user = api.user(1101)
            await api.start(user)
            await pump(service)
            await asyncio.sleep(1.1)  # the welcome message's chat interval is over
            api.fail_next(1101, 429, "Too Many Requests: retry after 1", retry_after=1)
            started = time.monotonic()
            await dispatcher(tg, library, service, loaded).tick()
            waited = time.monotonic() - started
            sends = [
                c for c in api.calls_to("sendMessage") if str(c.params.get("chat_id")) == "1101"
            ]
            assert [c.status for c in sends][-2:] == [429, 200]
            assert service.sender.retry_after_waits == 1
            assert waited >= 1.0
            assert len([m for m in api.sent(1101) if "Это Зерно" in m.text]) == 1

    run(scenario)
    assert row(tg, who).state == "in_conversation"


# --- webhook and duplicates ---


def test_webhook_rejects_a_wrong_or_missing_secret_and_processes_a_duplicate_once(
    tg: App, library: Library
) -> None:
    anna = customer(tg, "Анна")
    token = make_token(
        anna, secret_from_settings(tg.settings), NOW + timedelta(days=1), b"nonce-02"
    )

    async def scenario() -> None:
        async with telegram(tg, library) as (api, service):
            update = {
                "update_id": 77,
                "message": {
                    "message_id": 1,
                    "date": int(NOW.timestamp()),
                    "chat": {"id": 1201, "type": "private", "first_name": "Анна"},
                    "from": {"id": 1201, "is_bot": False, "first_name": "Анна"},
                    "text": f"/start {token}",
                    "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
                },
            }
            api.user(1201)
            api.users[1201].started = True
            transport = httpx.ASGITransport(app=web_app(telegram=service))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                missing = await client.post(WEBHOOK_PATH, json=update)
                wrong = await client.post(
                    WEBHOOK_PATH, json=update, headers={SECRET_HEADER: "guess"}
                )
                assert (missing.status_code, wrong.status_code) == (403, 403)
                with tg.sessions() as session:
                    assert session.scalar(select(func.count()).select_from(TelegramUpdate)) == 0
                right = {SECRET_HEADER: "s3cret-Token_1"}
                bad = await client.post(WEBHOOK_PATH, content=b"{not json", headers=right)
                assert bad.status_code == 400
                first = await client.post(WEBHOOK_PATH, json=update, headers=right)
                again = await client.post(WEBHOOK_PATH, json=update, headers=right)
                assert (first.status_code, again.status_code) == (200, 200)
            # Processed once: one welcome, one link use; the duplicate by polling changes nothing.
            assert len(api.sent(1201)) == 1
            await api.say(api.users[1201], "привет")
            await pump(service)
            update_id = max(api.updates)
            await api.deliver_again(update_id)
            await pump(service)
            assert len(api.sent(1201)) == 2

    run(scenario)
    with tg.sessions() as session:
        stored = session.scalars(select(TelegramUpdate.update_id)).all()
        linked = session.scalar(select(Customer.telegram_chat_id).where(Customer.id == anna))
    assert 77 in stored and linked == 1201


def test_webhook_mode_refuses_to_start_without_a_secret(tg: App, library: Library) -> None:
    settings = tg.settings.model_copy(
        update={"telegram_webhook_secret": None, "public_url": "https://shop.example"}
    )
    from bot.channel.telegram.service import TelegramConfigError

    service = TelegramService.from_settings(replace(tg, settings=settings), library)
    try:
        with pytest.raises(TelegramConfigError, match="BOOMERANG_TELEGRAM_WEBHOOK_SECRET"):
            service.check_webhook_settings()
    finally:
        run(service.close)


def test_a_quiet_conversation_is_reminded_then_closed_by_the_script(
    tg: App, library: Library, tmp_path: Path
) -> None:
    who = customer(tg, "Ева", chat=1301)
    loaded = campaign(tmp_path, "feedback", "post_order_feedback")
    queue(tg, loaded, who)
    clock = tg.clock
    assert isinstance(clock, FixedClock)

    async def scenario() -> None:
        async with telegram(tg, library) as (api, service):
            user = api.user(1301)
            await api.start(user)
            await pump(service)
            await dispatcher(tg, library, service, loaded).tick()
            idle = timedelta(hours=24)
            assert await service.conversations.remind_idle(idle) == 0  # not quiet yet
            clock.advance(timedelta(hours=25))
            assert await service.conversations.remind_idle(idle) == 1
            assert "Вы меня слышите?" in api.last_sent(user.id).text  # the script's no_input
            clock.advance(timedelta(hours=25))
            assert await service.conversations.remind_idle(idle) == 1
            assert "Хорошего дня" in api.last_sent(user.id).text  # its `then:` ending

    run(scenario)
    assert (row(tg, who).state, row(tg, who).outcome) == ("done", "no_answer")


def test_starting_the_bot_again_after_blocking_restores_surveys_not_marketing(
    tg: App, library: Library
) -> None:
    who = customer(tg, "Фёдор", chat=1401, marketing=True)

    async def scenario() -> None:
        async with telegram(tg, library) as (api, service):
            user = api.user(1401)
            await api.start(user)
            await pump(service)
            await api.block(user)
            await pump(service)
            tg.clock.advance(timedelta(minutes=5))  # type: ignore[attr-defined]
            await api.start(user)
            await pump(service)

    run(scenario)
    with tg.sessions() as session:
        entries = session.execute(
            select(Consent.purpose, Consent.granted, Consent.source)
            .where(Consent.customer_id == who, Consent.channel == "telegram")
            .order_by(Consent.at, Consent.id)
        ).all()
    latest = {purpose: granted for purpose, granted, _ in entries}
    assert latest == {"marketing": False, "survey": True, "service": True}


def test_the_service_posts_tasks_to_the_managers_chat_and_routes_their_buttons(
    tg: App, library: Library
) -> None:
    group = -1001234567890
    managed = replace(tg, settings=tg.settings.model_copy(update={"telegram_managers_chat": group}))
    who = customer(managed, "Инна", phone="+79160000009")
    with managed.sessions.begin() as session:
        task = ManagerTask(
            kind="callback",
            customer_id=who,
            campaign_id="feedback",
            due_at=NOW + timedelta(hours=3),
            note="перезвонить",
            state="open",
            created_at=NOW,
            updated_at=NOW,
        )
        session.add(task)
        session.flush()
        task_id = task.id

    async def scenario() -> None:
        async with telegram(managed, library) as (api, service):
            assert service.managers is not None
            maria = api.user(group, "Мария")
            maria.started = True
            assert await service.managers.notify() == 1
            posted = api.last_sent(group)
            assert "Инна" in posted.text and "перезвонить" in posted.text
            await api.press(maria, posted.message_id, f"t:done:{task_id}")
            await pump(service)
            assert api.last_sent(group).buttons() == []

    run(scenario)
    with managed.sessions() as session:
        assert session.get(ManagerTask, task_id).state == "done"  # type: ignore[union-attr]
