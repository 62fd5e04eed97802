"""The voice service: places calls, serves each turn's TwiML, hears answers, applies call outcomes.

A call, step by step (docs/voice.md):

1. `place` (the dispatcher's `VoiceChannel.start_conversation`; the outreach row is `sending`):
   within the account's calls per second, the script's first step is run, a `voice_calls` row
   is written with the first turn's TwiML (the prompt, then `<Connect><Stream>` with a one-time
   token), and the call is created by REST with status callbacks and asynchronous answering-
   machine detection. The outreach row becomes `in_conversation`.
2. Twilio fetches the call's URL: `answer` serves the stored first TwiML.
3. The media stream (`bot.channel.voice.stream`) opens with the turn's token (`open_turn`: single
   use, bound to its call), feeds the caller's audio to a recogniser, and stores what it heard
   (`heard`): words, DTMF digits, or nothing (no input); then it closes the socket.
4. Twilio requests the `<Connect>` action: `next` turns what was heard into an engine event on the
   pinned script version, stores the new state (`done` with the outcome when the script ends, with
   its opt-out and manager tasks) and serves the next turn's TwiML, which is stored too: Twilio
   repeating the request gets the same answer, and nothing is applied twice.
5. Status callbacks (`status`) are stored once per (call, status) and applied in lifecycle order:
   busy, no answer, failed -> the campaign's retry policy; a call that ended before the script did
   -> `hung_up`; an answering machine (`amd`) -> hung up and the voicemail policy.
6. Calls with no news (`reconcile`, every minute from `housekeeping`): a call that has not ended
   and has heard nothing for `RECONCILE_AFTER` is fetched from Twilio's REST API; a final status
   is applied as its callback would have been (a lost callback must not leave the outreach row in
   conversation forever), and a call Twilio does not know is `failed`.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, func, select, type_coerce, update
from sqlalchemy.orm import Session
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from bot.app import App
from bot.campaign.attempts import verdict
from bot.campaign.guard import GuardPolicy
from bot.campaign.loader import LoadedCampaign
from bot.campaign.route import sending_window
from bot.campaign.states import DONE, FAILED, IN_CONVERSATION, RETRY, SENDING
from bot.campaign.tasks import TaskSpec, insert_tasks
from bot.campaign.window import is_open
from bot.channel.base import Contact, Delivery, Status, begin
from bot.channel.finish import conversations_finished
from bot.channel.pace import Pace
from bot.channel.periodic import every
from bot.channel.versions import ScriptVersions, Stored
from bot.channel.voice import twiml
from bot.channel.voice.prompt import Prompt, prompt
from bot.customers.zone import customer_zone
from bot.db.models import Customer
from bot.db.outreach import Outreach
from bot.db.types import to_epoch
from bot.db.upsert import dialect_insert
from bot.db.voice import VoiceCall, VoiceStatusEvent, VoiceStreamToken
from bot.dialog import engine
from bot.dialog.events import Answer, Ask, Event, HangUp, NoInput, Output
from bot.dialog.library import Library
from bot.dialog.offers import issue_offers
from bot.dialog.state import State
from bot.settings import Settings

logger = logging.getLogger(__name__)

ANSWER_PATH = "/voice/answer/{call_id}"
NEXT_PATH = "/voice/next/{call_id}/{turn}"
DIAL_PATH = "/voice/dial/{call_id}"
STATUS_PATH = "/voice/status"
AMD_PATH = "/voice/amd"
STREAM_PATH = "/voice/stream"
STATUS_RANK = {
    "queued": 0,
    "initiated": 1,
    "ringing": 2,
    "in-progress": 3,
    "completed": 4,
    "busy": 4,
    "no-answer": 4,
    "failed": 4,
    "canceled": 4,
}
NOT_ANSWERED = {"busy": Status.BUSY, "no-answer": Status.NO_ANSWER, "failed": Status.FAILED}
TALKING = (SENDING, IN_CONVERSATION)
RECONCILE_AFTER = timedelta(minutes=10)
"""A call that has not ended and has had no news (a turn, a status) for this long is asked about.
Twilio retries a failed status callback only briefly; a call of ours rarely stays quiet this long
(a turn waits seconds for an answer), and one that does -- a long transfer -- is only fetched."""
"""A call's row while it lasts: `sending` until the dispatcher stores its batch."""
MACHINES = ("machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax")


@dataclass(frozen=True, slots=True)
class Turn:
    """A media stream's turn: the call, which turn, and what the step expects."""

    call_id: int
    turn: int
    phrases: tuple[str, ...]
    """What a grammar should accept (empty: full vocabulary)."""
    kind: str | None
    """The Ask's kind (scale, yes_no, ...), None when nothing is asked."""


class VoiceService:
    def __init__(
        self,
        app: App,
        library: Library,
        campaigns: Mapping[str, LoadedCampaign],
        client: Any,
        pace: Pace | None = None,
        policy: GuardPolicy | None = None,
    ) -> None:
        settings = app.settings
        if not settings.public_url:
            raise ValueError("BOOMERANG_PUBLIC_URL is required: Twilio must reach our webhooks")
        self.app = app
        self.library = library
        self.campaigns = campaigns
        self.client = client
        """twilio.rest.Client (async http client): the one seam to Twilio's REST API."""
        # Evenly spaced calls (one key, an interval), not bursts within a second.
        self.pace = pace or Pace(None, 1.0 / settings.voice_calls_per_second)
        self.policy = policy or GuardPolicy()
        self.versions = ScriptVersions(app, library)
        self.base = settings.public_url.rstrip("/")

    # --- URLs ---

    def url(self, path: str, **values: object) -> str:
        return self.base + path.format(**values)

    @property
    def stream_url(self) -> str:
        scheme, rest = self.base.split("://", 1)
        return ("wss" if scheme == "https" else "ws") + "://" + rest + STREAM_PATH

    # --- placing a call ---

    async def place(self, contact: Contact) -> Delivery:
        settings = self.app.settings
        if contact.outreach_id is None:
            raise ValueError("a call needs the outreach row's id")
        if not contact.address:
            return Delivery.unreachable("no phone number")
        if not settings.voice_caller_id:
            return Delivery.failed("BOOMERANG_VOICE_CALLER_ID is not set", retryable=False)
        self.versions.remember(contact.script)
        delivery = begin(contact)
        assert delivery.state is not None
        now = self.app.clock.now()
        state, context = issue_offers(
            contact.script, delivery.state, delivery.outputs, contact.context, now.date()
        )
        said = prompt(delivery.outputs, contact.script, contact.pack, context)
        with self.app.sessions.begin() as session:
            # The conversation is on the row before the phone rings: the dispatcher stores its
            # batch later, and a quick callee must find what to talk about.
            session.execute(
                update(Outreach)
                .where(Outreach.id == contact.outreach_id, Outreach.state == SENDING)
                .values(conversation=state.to_dict())
                .execution_options(synchronize_session=False)
            )
            call = VoiceCall(
                outreach_id=contact.outreach_id,
                to_number=contact.address,
                status="queued",
                status_rank=0,
                turn=0,
                created_at=now,
                updated_at=now,
            )
            session.add(call)
            session.flush()
            call.twiml = self._turn_twiml(session, call, said, 0, now)
            call_id = call.id
        await self.pace.wait(0)
        if not self._window_open(contact):
            with self.app.sessions.begin() as session:
                session.execute(
                    update(VoiceCall)
                    .where(VoiceCall.id == call_id)
                    .values(status="canceled", status_rank=4, outcome="window closed")
                )
            return Delivery(Status.DEFERRED, reason="the calling window closed before the call")
        try:
            created = await self.client.calls.create_async(
                to=contact.address,
                from_=settings.voice_caller_id,
                url=self.url(ANSWER_PATH, call_id=call_id),
                method="POST",
                status_callback=self.url(STATUS_PATH),
                status_callback_event=["initiated", "ringing", "answered", "completed"],
                status_callback_method="POST",
                machine_detection="Enable",
                async_amd="true",
                async_amd_status_callback=self.url(AMD_PATH),
                async_amd_status_callback_method="POST",
                timeout=25,
            )
        except Exception as error:  # the REST call failed: nothing was dialled
            return self._not_placed(call_id, error)
        with self.app.sessions.begin() as session:
            session.execute(
                update(VoiceCall)
                .where(VoiceCall.id == call_id)
                .values(call_sid=created.sid, status=created.status or "queued")
            )
        return Delivery.talked(state, delivery.outputs)

    def _window_open(self, contact: Contact) -> bool:
        """Right before dialling (after waiting for the account's rate): still inside the
        campaign's window and the voice hours, in the customer's local time?"""
        now = self.app.clock.now()
        with self.app.sessions() as session:
            found = session.execute(
                select(Outreach.campaign_id, Customer.time_zone, Customer.phone)
                .join(Customer, Customer.id == Outreach.customer_id)
                .where(Outreach.id == contact.outreach_id)
            ).first()
        if found is None:
            return False
        loaded = self.campaigns.get(found.campaign_id)
        if loaded is None:
            return True  # no campaign to read a window from: the guard decided a moment ago
        campaign = loaded.campaign
        zone = customer_zone(found.time_zone, found.phone, campaign.schedule.time_zone)
        return is_open(now, zone, sending_window(campaign), self.policy.voice_hours)

    def _not_placed(self, call_id: int, error: Exception) -> Delivery:
        status = getattr(error, "status", None)
        text = f"Twilio: {getattr(error, 'msg', None) or error}"
        with self.app.sessions.begin() as session:
            session.execute(
                update(VoiceCall)
                .where(VoiceCall.id == call_id)
                .values(status="failed", status_rank=4, outcome=text[:100])
            )
        if isinstance(status, int) and 400 <= status < 500:
            return Delivery.unreachable(text)  # an invalid number: try the next channel
        return Delivery.failed(text, retryable=True)

    def _turn_twiml(
        self, session: Session, call: VoiceCall, said: Prompt, turn: int, now: datetime
    ) -> str:
        settings = self.app.settings
        voice, language = settings.voice_tts_voice, settings.voice_tts_language
        if said.transfer and settings.voice_manager_phone:
            return twiml.transfer(
                said.says,
                settings.voice_manager_phone,
                voice=voice,
                language=language,
                action_url=self.url(DIAL_PATH, call_id=call.id),
            )
        if said.ask is None:
            return twiml.goodbye(said.says, voice=voice, language=language)
        token = secrets.token_urlsafe(24)
        session.add(VoiceStreamToken(token=token, call_id=call.id, turn=turn, created_at=now))
        return twiml.listen(
            said.says,
            voice=voice,
            language=language,
            action_url=self.url(NEXT_PATH, call_id=call.id, turn=turn),
            stream_url=self.stream_url,
            token=token,
        )

    # --- the turns ---

    def answer(self, call_id: int) -> str | None:
        """The TwiML of the call's first turn (None: no such call)."""
        with self.app.sessions() as session:
            call = session.get(VoiceCall, call_id)
            if call is None:
                return None
            if call.turn == 0 and call.twiml is not None:
                return call.twiml
            return twiml.goodbye([], voice="", language="")

    def open_turn(self, token: str, call_sid: str | None) -> Turn | None:
        """A media stream starts: its token must be unused and belong to this call's current
        turn. None refuses the stream."""
        now = self.app.clock.now()
        with self.app.sessions.begin() as session:
            found = session.get(VoiceStreamToken, token)
            if found is None or found.used_at is not None:
                return None
            call = session.get(VoiceCall, found.call_id)
            if call is None or call.turn != found.turn:
                return None
            if call_sid is not None and call.call_sid is not None and call.call_sid != call_sid:
                return None
            found.used_at = now
            talk = self._talk(session, call)
            if talk is None:
                return None
            ask = engine.ask_output(talk.loaded.script, talk.pack, talk.state.step)
            phrases = ask.expected_phrases if ask is not None else ()
            return Turn(call.id, call.turn, phrases, ask.kind if ask is not None else None)

    def heard(self, turn: Turn, heard: Mapping[str, Any]) -> None:
        """Store what the stream heard for `turn` (words, digits, or no input)."""
        with self.app.sessions.begin() as session:
            session.execute(
                update(VoiceCall)
                .where(VoiceCall.id == turn.call_id, VoiceCall.turn == turn.turn)
                .values(heard=dict(heard), updated_at=self.app.clock.now())
            )

    def next(self, call_id: int, turn: int) -> str | None:
        """The Connect action of `turn`: apply what was heard, serve the next turn's TwiML."""
        now = self.app.clock.now()
        with self.app.sessions.begin() as session:
            call = session.get(VoiceCall, call_id, with_for_update=True)
            if call is None:
                return None
            if call.turn == turn + 1 and call.twiml is not None:
                return call.twiml  # Twilio repeated the request: the same answer
            if call.turn != turn:
                return twiml.goodbye([], voice="", language="")
            talk = self._talk(session, call)
            if talk is None:
                return twiml.goodbye([], voice="", language="")
            event = _event(call.heard, now.astimezone(talk.zone))
            state, outputs = engine.advance(
                talk.loaded.script, talk.pack, talk.state, event, version=talk.loaded.version
            )
            state, context = issue_offers(
                talk.loaded, state, outputs, talk.context, now.astimezone(talk.zone).date()
            )
            self._store_state(session, call, talk, state, outputs, now)
            said = prompt(outputs, talk.loaded, talk.pack, context)
            call.turn = turn + 1
            call.heard = None
            call.twiml = self._turn_twiml(session, call, said, turn + 1, now)
            call.updated_at = now
            return call.twiml

    def dialled(self, call_id: int, dial_status: str) -> str:
        """The manager's phone was dialled: nobody answering becomes a callback task."""
        settings = self.app.settings
        voice, language = settings.voice_tts_voice, settings.voice_tts_language
        if dial_status == "completed":
            return twiml.goodbye([], voice=voice, language=language)
        sorry = {
            "ru": "Сейчас никто не может ответить. Менеджер перезвонит вам. До свидания!",
            "en": "Nobody can answer right now. A manager will call you back. Goodbye!",
        }
        locale = "ru" if language.startswith("ru") else "en"
        now = self.app.clock.now()
        with self.app.sessions.begin() as session:
            call = session.get(VoiceCall, call_id)
            row = session.get(Outreach, call.outreach_id) if call is not None else None
            if row is not None:
                spec = TaskSpec(
                    "callback",
                    row.customer_id,
                    row.id,
                    row.campaign_id,
                    now,
                    f"transfer not answered ({dial_status}): call the customer back",
                )
                insert_tasks(session, [spec], now)
        return twiml.goodbye([sorry[locale]], voice=voice, language=language)

    def _talk(self, session: Session, call: VoiceCall) -> Stored | None:
        row = session.get(Outreach, call.outreach_id)
        if row is None:
            return None
        return self.versions.load(
            session, row.id, row.customer_id, row.campaign_id, row.conversation
        )

    def _store_state(
        self,
        session: Session,
        call: VoiceCall,
        talk: Stored,
        state: State,
        outputs: list[Output],
        now: datetime,
    ) -> None:
        values: dict[str, object] = {"conversation": state.to_dict(), "updated_at": now}
        if state.finished:
            values.update(
                state=DONE,
                outcome=state.outcome,
                lease_owner=None,
                lease_until=None,
                contacted_at=func.coalesce(
                    Outreach.contacted_at, type_coerce(to_epoch(now), BigInteger)
                ),
            )
        moved = session.execute(
            update(Outreach)
            .where(Outreach.id == talk.outreach_id, Outreach.state.in_(TALKING))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if moved.rowcount != 1:  # type: ignore[attr-defined]
            logger.warning("voice: outreach %s is no longer in conversation", talk.outreach_id)
            return
        if state.finished:
            call.outcome = state.outcome
            conversations_finished(session, [talk.finished(state, outputs)], now)

    # --- status callbacks ---

    def status(self, params: Mapping[str, str]) -> None:
        """A status callback (or the call's final status): stored once, applied in order."""
        sid, status = params.get("CallSid"), params.get("CallStatus")
        if not sid or status not in STATUS_RANK:
            return
        now = self.app.clock.now()
        with self.app.sessions.begin() as session:
            insert = dialect_insert(session)
            fresh = session.execute(
                insert(VoiceStatusEvent)
                .values(call_sid=sid, status=status, received_at=now)
                .on_conflict_do_nothing(index_elements=["call_sid", "status"])
            )
            if not fresh.rowcount:  # type: ignore[attr-defined]
                return  # a duplicate
            call = session.scalars(
                select(VoiceCall).where(VoiceCall.call_sid == sid).with_for_update()
            ).first()
            if call is None or STATUS_RANK[status] <= call.status_rank:
                return  # unknown, or late (a "ringing" after "completed")
            call.status, call.status_rank, call.updated_at = status, STATUS_RANK[status], now
            if STATUS_RANK[status] < 4:
                return
            call.ended_at = now
            self._ended(session, call, status, now)

    def _ended(self, session: Session, call: VoiceCall, status: str, now: datetime) -> None:
        row = session.get(Outreach, call.outreach_id)
        if row is None or row.state not in TALKING:
            return  # the script had ended: the row is done already
        campaign = self.campaigns.get(row.campaign_id)
        machine = call.answered_by in MACHINES
        if status in NOT_ANSWERED or (status == "completed" and machine):
            kind = Status.VOICEMAIL if machine else NOT_ANSWERED.get(status, Status.FAILED)
            call.outcome = kind.value
            if campaign is None:
                target, retry_at = FAILED, None
            else:
                decided = verdict(campaign.campaign, kind, row.attempts, now)
                retry_at = decided.retry_at
                target = RETRY if retry_at is not None else FAILED
            session.execute(
                update(Outreach)
                .where(Outreach.id == row.id, Outreach.state.in_(TALKING))
                .values(
                    state=target,
                    skip_reason=kind.value,
                    next_attempt_at=retry_at,
                    contacted_at=None,  # nobody took the call: not a contact
                    lease_owner=None,
                    lease_until=None,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            return
        talk = self._talk(session, call)
        if talk is None:
            return
        state, outputs = engine.advance(
            talk.loaded.script, talk.pack, talk.state, HangUp(), version=talk.loaded.version
        )
        self._store_state(session, call, talk, state, outputs, now)

    async def amd(self, params: Mapping[str, str]) -> None:
        """The answering-machine result: a machine or a fax gets the campaign's voicemail message
        (when it has one) or is hung up on; the voicemail policy retries it."""
        sid, answered_by = params.get("CallSid"), params.get("AnsweredBy")
        if not sid or not answered_by:
            return
        with self.app.sessions.begin() as session:
            call = session.scalars(select(VoiceCall).where(VoiceCall.call_sid == sid)).first()
            if call is None or call.answered_by is not None:
                return
            call.answered_by = answered_by
            row = session.get(Outreach, call.outreach_id)
        if answered_by not in MACHINES:
            return
        loaded = self.campaigns.get(row.campaign_id) if row is not None else None
        message = loaded.campaign.voicemail_message if loaded is not None else None
        settings = self.app.settings
        try:
            if message and answered_by != "fax":
                farewell = twiml.goodbye(
                    [message], voice=settings.voice_tts_voice, language=settings.voice_tts_language
                )
                await self.client.calls(sid).update_async(twiml=farewell)
            else:
                await self.client.calls(sid).update_async(status="completed")
        except Exception:  # the call may be over already
            logger.info("voice: ending the call to a machine at %s failed", sid, exc_info=True)

    # --- calls with no news ---

    async def housekeeping(self, stop: asyncio.Event, every_seconds: float = 60.0) -> None:
        """Until `stop`: reconcile the calls with no news."""
        await every(every_seconds, stop, self.reconcile, "voice: reconciling quiet calls")

    async def reconcile(self, quiet: timedelta = RECONCILE_AFTER, limit: int = 100) -> int:
        """Fetch from Twilio each call (up to `limit`, the longest quiet first) that has not ended
        and has had no news for `quiet` while its outreach row is still talking; apply a final
        status as its callback would have been applied. A call Twilio does not know (404) is
        `failed`. Returns how many calls were brought to an end."""
        now = self.app.clock.now()
        with self.app.sessions() as session:
            quiet_calls = session.execute(
                select(VoiceCall.id, VoiceCall.call_sid)
                .join(Outreach, Outreach.id == VoiceCall.outreach_id)
                .where(
                    VoiceCall.ended_at.is_(None),
                    VoiceCall.call_sid.is_not(None),
                    VoiceCall.updated_at <= now - quiet,
                    Outreach.state.in_(TALKING),
                )
                .order_by(VoiceCall.updated_at, VoiceCall.id)
                .limit(limit)
            ).all()
        ended = 0
        for call_id, sid in quiet_calls:
            assert sid is not None  # selected so
            try:
                fetched = await self.client.calls(sid).fetch_async()
                status, answered_by = str(fetched.status), fetched.answered_by
            except TwilioRestException as error:
                if error.status != 404:
                    logger.warning("voice: fetching quiet call %s failed: %s", sid, error)
                    continue
                status, answered_by = "failed", None
            with self.app.sessions.begin() as session:
                values: dict[str, Any] = {"updated_at": now}  # asked: quiet again from now
                call = session.get(VoiceCall, call_id)
                if call is not None and call.answered_by is None and answered_by:
                    values["answered_by"] = str(answered_by)  # the AMD callback was lost too
                session.execute(update(VoiceCall).where(VoiceCall.id == call_id).values(values))
            if STATUS_RANK.get(status, 0) >= STATUS_RANK["completed"]:
                logger.info("voice: call %s had no news for %s; Twilio says %s", sid, quiet, status)
                self.status({"CallSid": sid, "CallStatus": status})
                ended += 1
        return ended


class TwilioHttp(AsyncTwilioHttpClient):  # type: ignore[misc]
    """Twilio's async HTTP client, sending Basic auth as a header: its own use of aiohttp's
    `BasicAuth`/`auth=` is deprecated by aiohttp 3.14 (a warning on every request)."""

    async def request(self, *args: Any, auth: Any = None, **kwargs: Any) -> Any:
        if auth is not None:
            pair = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            headers = dict(kwargs.get("headers") or {})
            headers["Authorization"] = f"Basic {pair}"
            kwargs["headers"] = headers
        return await super().request(*args, auth=None, **kwargs)


def make_twilio_client(settings: Settings) -> Any:
    """The real twilio REST client (async HTTP), pointed at `BOOMERANG_TWILIO_API` when set (the
    simulator in bot.testing). Close it with `await client.http_client.close()`."""
    if not settings.twilio_account_sid or not settings.twilio_auth_token:
        raise ValueError("set BOOMERANG_TWILIO_ACCOUNT_SID and BOOMERANG_TWILIO_AUTH_TOKEN")
    client = Client(
        settings.twilio_account_sid, settings.twilio_auth_token, http_client=TwilioHttp()
    )
    if settings.twilio_api:
        client.api.base_url = settings.twilio_api.rstrip("/")
    return client


def _event(heard: Mapping[str, Any] | None, at: datetime) -> Event:
    if heard is None or heard.get("hung_up"):
        return HangUp() if heard is not None else NoInput()
    if heard.get("digits"):
        return Answer(digits=str(heard["digits"]), at=at)
    text = heard.get("text")
    if text:
        return Answer(text=str(text), confidence=float(heard.get("confidence", 1.0)), at=at)
    return NoInput()


__all__ = ["Ask", "Turn", "VoiceService"]
