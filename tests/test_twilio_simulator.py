"""The Twilio simulator (bot.testing.twilio) driven by the real twilio client and a tiny server.

The server in this file stands for ours: it validates every webhook with the real
RequestValidator (403 otherwise), answers TwiML (Say + Connect/Stream to its own WebSocket), and
its WebSocket records every Media Streams message and closes after a number of media frames.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp import WSMsgType, web
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from bot.testing.twilio import (
    FRAME_BYTES,
    SIGNATURE_HEADER,
    Callee,
    Turn,
    TwilioSimulator,
    frames,
    mulaw_decode,
    mulaw_encode,
    read_wav_8k,
    synthesize,
    write_wav_8k,
)

# twilio's AsyncTwilioHttpClient passes aiohttp.BasicAuth as auth=, deprecated in aiohttp 3.14.
pytestmark = [
    pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The 'auth' parameter is deprecated:DeprecationWarning"),
]

SID = "AC" + "1" * 32
TOKEN = "simulated-auth-token"
FROM = "+15005550006"
ANNA = "+79990000001"
MANAGER = "+79990000100"
SPEED = 5.0


class OurServer:
    """Stands for Boomerang's web app: TwiML webhooks, status callbacks, the media stream."""

    def __init__(self, close_after_frames: int = 10, close_on_digit: str | None = None) -> None:
        self.validator = RequestValidator(TOKEN)
        self.close_after_frames = close_after_frames
        self.close_on_digit = close_on_digit
        self.requests: list[tuple[str, dict[str, str]]] = []  # (path, params), valid only
        self.forged: list[str] = []
        self.streams: list[list[dict[str, Any]]] = []
        self.arrivals: list[list[float]] = []
        self.handshake_signatures: list[bool] = []
        self.after_twiml = "<Response><Say>Goodbye</Say><Hangup/></Response>"
        self.dialed_twiml = "<Response><Say>Sorry</Say></Response>"
        self.twiml: str | None = None
        self.app = web.Application()
        self.app.router.add_post("/voice", self.voice)
        self.app.router.add_post("/after", self.after)
        self.app.router.add_post("/dialed", self.dialed)
        self.app.router.add_post("/status", self.ok)
        self.app.router.add_post("/amd", self.ok)
        self.app.router.add_get("/media", self.media)
        self.runner = web.AppRunner(self.app, access_log=None)
        self.base = ""

    async def __aenter__(self) -> OurServer:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        self.base = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()

    async def checked(self, request: web.Request) -> dict[str, str]:
        form = {key: str(value) for key, value in (await request.post()).items()}
        signature = request.headers.get(SIGNATURE_HEADER, "")
        if not self.validator.validate(str(request.url), form, signature):
            self.forged.append(request.path)
            raise web.HTTPForbidden()
        self.requests.append((request.path, form))
        return form

    def params(self, path: str) -> list[dict[str, str]]:
        return [params for seen, params in self.requests if seen == path]

    async def voice(self, request: web.Request) -> web.Response:
        await self.checked(request)
        ws_url = self.base.replace("http://", "ws://") + "/media"
        twiml = self.twiml or (
            '<?xml version="1.0" encoding="UTF-8"?><Response>'
            '<Say voice="Polly.Tatyana" language="ru-RU">Здравствуйте, Анна!</Say>'
            '<Pause length="1"/>'
            f'<Connect action="/after"><Stream url="{ws_url}">'
            '<Parameter name="token" value="one-time-token"/>'
            '<Parameter name="step" value="greeting"/>'
            "</Stream></Connect></Response>"
        )
        return web.Response(text=twiml, content_type="text/xml")

    async def after(self, request: web.Request) -> web.Response:
        await self.checked(request)
        return web.Response(text=self.after_twiml, content_type="text/xml")

    async def dialed(self, request: web.Request) -> web.Response:
        await self.checked(request)
        return web.Response(text=self.dialed_twiml, content_type="text/xml")

    async def ok(self, request: web.Request) -> web.Response:
        await self.checked(request)
        return web.Response(text="")

    async def media(self, request: web.Request) -> web.WebSocketResponse:
        url = str(request.url).replace("http://", "ws://")
        signature = request.headers.get(SIGNATURE_HEADER, "")
        self.handshake_signatures.append(self.validator.validate(url, {}, signature))
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        messages: list[dict[str, Any]] = []
        arrivals: list[float] = []
        self.streams.append(messages)
        self.arrivals.append(arrivals)
        media = 0
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            data = json.loads(message.data)
            messages.append(data)
            arrivals.append(time.monotonic())
            if data["event"] == "start":  # play something back, then ask for a mark
                payload = base64.b64encode(b"\xff" * FRAME_BYTES).decode()
                sid = data["streamSid"]
                await ws.send_json(
                    {"event": "media", "streamSid": sid, "media": {"payload": payload}}
                )
                await ws.send_json({"event": "mark", "streamSid": sid, "mark": {"name": "said"}})
            if data["event"] == "media":
                media += 1
                if media >= self.close_after_frames:
                    break
            if data["event"] == "dtmf" and data["dtmf"]["digit"] == self.close_on_digit:
                break
            if data["event"] == "stop":
                break
        await ws.close()
        return ws


Scenario = Callable[[TwilioSimulator, OurServer, Client], Awaitable[None]]


def run(
    scenario: Scenario,
    *,
    server: OurServer | None = None,
    token: str = TOKEN,
    **options: Any,
) -> None:
    async def main() -> None:
        options.setdefault("speed", SPEED)
        async with (
            TwilioSimulator(account_sid=SID, auth_token=TOKEN, **options) as sim,
            server or OurServer() as ours,
        ):
            http = AsyncTwilioHttpClient()
            client = Client(SID, token, http_client=http)
            client.api.base_url = sim.base_url  # the real client, pointed at the simulator
            try:
                await scenario(sim, ours, client)
            finally:
                await http.close()

    asyncio.run(main())


async def create(client: Client, ours: OurServer, to: str = ANNA, **extra: Any) -> Any:
    return await client.calls.create_async(
        to=to,
        from_=FROM,
        url=f"{ours.base}/voice",
        status_callback=f"{ours.base}/status",
        status_callback_event=["initiated", "ringing", "answered", "completed"],
        **extra,
    )


def tone(path: Path, seconds: float, rate: int = 16000) -> Path:
    """A 440 Hz tone WAV at ``rate`` (the simulator resamples it to 8 kHz)."""
    import wave

    t = np.arange(int(seconds * rate)) / rate
    pcm = (8000 * np.sin(2 * np.pi * 440 * t)).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm.tobytes())
    return path


# ---------------------------------------------------------------------------------- the call


def test_real_client_call_twiml_stream_and_callbacks(tmp_path: Path) -> None:
    wav = tone(tmp_path / "yes.wav", 0.5)

    async def scenario(sim: TwilioSimulator, ours: OurServer, client: Client) -> None:
        sim.callee(ANNA, Callee(turns=[Turn(audio=wav, before=0.1)]))
        call = await create(
            client,
            ours,
            machine_detection="Enable",
            async_amd="true",
            async_amd_status_callback=f"{ours.base}/amd",
        )
        assert call.sid.startswith("CA") and len(call.sid) == 34
        assert call.status == "queued" and call.to == ANNA and call._from == FROM
        record = await sim.wait(call.sid)

        # TwiML followed: Say, Pause, Connect/Stream with its parameters, the action's TwiML.
        assert [(say.text, say.voice, say.language) for say in record.says] == [
            ("Здравствуйте, Анна!", "Polly.Tatyana", "ru-RU"),
            ("Goodbye", None, None),
        ]
        (stream,) = record.streams
        assert stream.parameters == {"token": "one-time-token", "step": "greeting"}
        assert stream.ended_by == "server" and stream.action == "/after"
        assert record.hung_up_by == "twiml"
        assert record.errors == [] and ours.forged == []
        assert ours.handshake_signatures == [True]

        # The WebSocket: connected, start, then 20 ms μ-law frames until we closed it.
        (messages,) = ours.streams
        assert [m["event"] for m in messages[:2]] == ["connected", "start"]
        assert messages[0] == {"event": "connected", "protocol": "Call", "version": "1.0.0"}
        start = messages[1]["start"]
        assert start["callSid"] == call.sid and start["accountSid"] == SID
        assert start["customParameters"] == {"token": "one-time-token", "step": "greeting"}
        assert start["mediaFormat"] == {
            "encoding": "audio/x-mulaw",
            "sampleRate": 8000,
            "channels": 1,
        }
        media = [m for m in messages if m["event"] == "media"]
        assert len(media) == 10
        assert all(len(base64.b64decode(m["media"]["payload"])) == FRAME_BYTES for m in media)
        assert [m["media"]["chunk"] for m in media] == [str(i) for i in range(1, 11)]
        assert [m["media"]["timestamp"] for m in media] == [str(20 * i) for i in range(10)]
        assert all(m["streamSid"] == messages[1]["streamSid"] for m in messages[1:])
        sequence = [int(m["sequenceNumber"]) for m in messages[1:]]
        assert sequence == list(range(1, len(messages)))
        # The first 5 frames are the turn's silence, then the tone.
        assert base64.b64decode(media[0]["media"]["payload"]) == b"\xff" * FRAME_BYTES
        assert base64.b64decode(media[6]["media"]["payload"]) != b"\xff" * FRAME_BYTES
        # Real-time pacing divided by the speed factor: 10 frames span ~9 x 20 ms / SPEED.
        times = [
            t for m, t in zip(messages, ours.arrivals[0], strict=True) if m["event"] == "media"
        ]
        assert times[-1] - times[0] >= 9 * 0.02 / SPEED * 0.8
        # Our playback and its mark came back as Twilio does.
        assert stream.marks == ["said"] and len(stream.outbound_audio()) == FRAME_BYTES
        assert "mark" in [m["event"] for m in messages]

        # Webhooks: the standard params, every one validated by the real RequestValidator.
        (voice,) = ours.params("/voice")
        assert voice["CallSid"] == call.sid and voice["AccountSid"] == SID
        assert voice["CallStatus"] == "in-progress" and voice["Direction"] == "outbound-api"
        assert voice["From"] == FROM and voice["To"] == ANNA and voice["ApiVersion"] == "2010-04-01"
        assert len(ours.params("/after")) == 1
        (amd,) = ours.params("/amd")
        assert amd["AnsweredBy"] == "human" and amd["CallSid"] == call.sid

        # Status callbacks in order, with sequence numbers and the duration at the end.
        statuses = ours.params("/status")
        assert [p["CallStatus"] for p in statuses] == [
            "initiated",
            "ringing",
            "in-progress",
            "completed",
        ]
        assert [p["SequenceNumber"] for p in statuses] == ["0", "1", "2", "3"]
        assert int(statuses[-1]["CallDuration"]) >= 1
        assert record.statuses == ["initiated", "ringing", "in-progress", "completed"]
        assert {hook.status for hook in record.webhooks} == {200}

        fetched = await client.calls(call.sid).fetch_async()
        assert fetched.status == "completed" and fetched.answered_by == "human"

    run(scenario)


def test_dtmf_then_dial_with_its_action() -> None:
    async def scenario(sim: TwilioSimulator, ours: OurServer, client: Client) -> None:
        sim.callee(ANNA, Callee(turns=[Turn(digits="12", before=0.04)]))
        sim.dial_result(MANAGER, "no-answer")
        ours.after_twiml = (
            f'<Response><Dial action="/dialed" timeout="20" callerId="{FROM}">'
            f"<Number>{MANAGER}</Number></Dial><Say>never reached</Say></Response>"
        )
        call = await create(client, ours)
        record = await sim.wait(call.sid)
        (messages,) = ours.streams
        dtmf = [m for m in messages if m["event"] == "dtmf"]
        assert [m["dtmf"] for m in dtmf] == [
            {"track": "inbound_track", "digit": "1"},
            {"track": "inbound_track", "digit": "2"},
        ]
        assert record.streams[0].dtmf == "12"
        (dial,) = record.dials
        assert (dial.number, dial.result, dial.timeout, dial.action) == (
            MANAGER,
            "no-answer",
            20,
            "/dialed",
        )
        (dialed,) = ours.params("/dialed")
        assert dialed["DialCallStatus"] == "no-answer" and "DialCallDuration" not in dialed
        assert [say.text for say in record.says] == ["Здравствуйте, Анна!", "Sorry"]
        assert record.status == "completed"

    run(scenario, server=OurServer(close_after_frames=1000, close_on_digit="2"))


def test_dial_completed_reports_duration() -> None:
    async def scenario(sim: TwilioSimulator, ours: OurServer, client: Client) -> None:
        sim.dial_result(MANAGER, "completed", seconds=2.0)
        ours.twiml = f'<Response><Dial action="/dialed">{MANAGER}</Dial></Response>'
        record = await sim.wait((await create(client, ours, to=ANNA)).sid)
        assert record.status == "no-answer"  # unknown numbers do not answer
        sim.callee(ANNA, Callee())
        record = await sim.wait((await create(client, ours, to=ANNA)).sid)
        (dialed,) = ours.params("/dialed")
        assert dialed["DialCallStatus"] == "completed" and dialed["DialCallDuration"] == "2"
        assert record.dials[0].number == MANAGER

    run(scenario)


def test_callee_hangs_up_mid_turn() -> None:
    async def scenario(sim: TwilioSimulator, ours: OurServer, client: Client) -> None:
        sim.callee(ANNA, Callee(turns=[Turn.silence(0.1, hang_up=True)]))
        record = await sim.wait((await create(client, ours)).sid)
        (messages,) = ours.streams
        assert messages[-1]["event"] == "stop"
        assert messages[-1]["stop"] == {"accountSid": SID, "callSid": record.sid}
        assert len([m for m in messages if m["event"] == "media"]) == 5
        assert record.streams[0].ended_by == "callee" and record.hung_up_by == "callee"
        assert ours.params("/after") == []  # the call is over: no action
        assert record.statuses[-1] == "completed"

    run(scenario, server=OurServer(close_after_frames=1000))


def test_hang_up_through_the_rest_api() -> None:
    async def scenario(sim: TwilioSimulator, ours: OurServer, client: Client) -> None:
        sim.callee(ANNA, Callee(turns=[Turn.silence(30)]))
        call = await create(client, ours)
        for _ in range(200):
            if ours.streams and len(ours.streams[0]) > 3:
                break
            await asyncio.sleep(0.01)
        updated = await client.calls(call.sid).update_async(status="completed")
        assert updated.sid == call.sid
        record = await sim.wait(call.sid)
        assert ours.streams[0][-1]["event"] == "stop"
        assert record.hung_up_by == "api" and record.status == "completed"
        assert ours.params("/status")[-1]["CallStatus"] == "completed"

    run(scenario, server=OurServer(close_after_frames=100000))


def test_unanswered_busy_failed_and_machine_callees() -> None:
    async def scenario(sim: TwilioSimulator, ours: OurServer, client: Client) -> None:
        sim.callee("+79990000002", Callee(busy=True))
        sim.callee("+79990000003", Callee(fail=True))
        sim.callee("+79990000004", Callee(answer=False, ring_seconds=0.5))
        sim.callee("+79990000005", Callee(machine=True, turns=[Turn.silence(0.1, hang_up=True)]))
        sim.callee("+79990000006", Callee(answered_by="fax", turns=[Turn(hang_up=True)]))
        expected = {
            "+79990000001": ["initiated", "ringing", "no-answer"],  # unknown number
            "+79990000002": ["initiated", "ringing", "busy"],
            "+79990000003": ["initiated", "failed"],
            "+79990000004": ["initiated", "ringing", "no-answer"],
            "+79990000005": ["initiated", "ringing", "in-progress", "completed"],
            "+79990000006": ["initiated", "ringing", "in-progress", "completed"],
        }
        sids = {}
        for number in expected:
            call = await create(
                client,
                ours,
                to=number,
                machine_detection="Enable",
                async_amd="true",
                async_amd_status_callback=f"{ours.base}/amd",
            )
            sids[number] = call.sid
        await sim.idle()
        for number, statuses in expected.items():
            record = sim.call(sids[number])
            assert record.statuses == statuses, number
            assert record.status == statuses[-1]
        assert sim.call(sids["+79990000004"]).duration == 0
        answered_by = {p["CallSid"]: p["AnsweredBy"] for p in ours.params("/amd")}
        assert answered_by == {
            sids["+79990000005"]: "machine_start",
            sids["+79990000006"]: "fax",
        }
        assert sim.calls_per_second == 6

    run(scenario, speed=20.0)


# ---------------------------------------------------------------------------------- chaos


def test_duplicate_status_callbacks() -> None:
    async def scenario(sim: TwilioSimulator, ours: OurServer, client: Client) -> None:
        sim.callee(ANNA, Callee(busy=True))
        await sim.wait((await create(client, ours)).sid)
        statuses = [(p["CallStatus"], p["SequenceNumber"]) for p in ours.params("/status")]
        assert statuses == [
            ("initiated", "0"),
            ("initiated", "0"),
            ("ringing", "1"),
            ("ringing", "1"),
            ("busy", "2"),
            ("busy", "2"),
        ]

    run(scenario, duplicate_callbacks=True)


def test_out_of_order_status_callbacks() -> None:
    async def scenario(sim: TwilioSimulator, ours: OurServer, client: Client) -> None:
        sim.callee(ANNA, Callee(answer=False))
        record = await sim.wait((await create(client, ours)).sid)
        statuses = [p["CallStatus"] for p in ours.params("/status")]
        assert statuses == ["no-answer", "initiated", "ringing"]  # ringing after the final one
        assert record.statuses == statuses

    run(scenario, reorder_callbacks=True)


def test_forged_signature_is_detected_by_our_server() -> None:
    async def scenario(sim: TwilioSimulator, ours: OurServer, client: Client) -> None:
        sim.callee(ANNA, Callee())
        sim.forge_next_signature()
        call = await client.calls.create_async(to=ANNA, from_=FROM, url=f"{ours.base}/voice")
        record = await sim.wait(call.sid)
        (hook,) = record.webhooks
        assert hook.kind == "twiml" and hook.forged and hook.status == 403
        assert ours.forged == ["/voice"] and record.verbs == []
        assert record.errors and "403" in record.errors[0]
        # The next webhook is signed properly again.
        call = await client.calls.create_async(to=ANNA, from_=FROM, url=f"{ours.base}/voice")
        record = await sim.wait(call.sid)
        assert ours.forged == ["/voice"] and record.says

    run(scenario, server=OurServer(close_after_frames=2))


# ---------------------------------------------------------------------------------- REST


def test_rest_rejects_bad_credentials_and_numbers() -> None:
    async def wrong_token(sim: TwilioSimulator, ours: OurServer, client: Client) -> None:
        with pytest.raises(TwilioRestException) as error:
            await create(client, ours)
        assert error.value.status == 401 and error.value.code == 20003
        assert sim.calls == {}

    run(wrong_token, token="wrong-token")

    async def bad_numbers(sim: TwilioSimulator, ours: OurServer, client: Client) -> None:
        with pytest.raises(TwilioRestException) as error:
            await create(client, ours, to="8 999 000-00-01")
        assert error.value.status == 400 and error.value.code == 21211
        assert "Invalid 'To' Phone Number" in error.value.msg
        with pytest.raises(TwilioRestException) as error:
            await client.calls("CA" + "0" * 32).fetch_async()
        assert error.value.status == 404 and error.value.code == 20404
        assert sim.calls == {} and sim.calls_per_second == 0

    run(bad_numbers)


# ---------------------------------------------------------------------------------- audio


def test_mulaw_round_trip_and_frames(tmp_path: Path) -> None:
    assert mulaw_encode(np.array([0], dtype=np.int16)) == b"\xff"
    assert mulaw_decode(b"\xff\x7f")[0] == 0
    assert mulaw_encode(np.array([32767, -32768], dtype=np.int16)) == b"\x80\x00"
    t = np.arange(8000) / 8000
    pcm = (12000 * np.sin(2 * np.pi * 300 * t)).astype(np.int16)
    decoded = mulaw_decode(mulaw_encode(pcm)).astype(np.float64)
    error = decoded - pcm
    snr = 10 * np.log10(np.mean(pcm.astype(np.float64) ** 2) / np.mean(error**2))
    assert snr > 30  # G.711 gives ~38 dB
    assert np.all(np.abs(error) <= np.abs(pcm) / 16 + 8)
    all_codes = bytes(range(256))
    assert mulaw_encode(mulaw_decode(all_codes)) == all_codes.replace(b"\x7f", b"\xff")

    chunks = frames(b"\x01" * 400)
    assert [len(chunk) for chunk in chunks] == [160, 160, 160]
    assert chunks[-1].endswith(b"\xff" * 80)

    wav = tone(tmp_path / "tone.wav", 1.0, rate=16000)
    resampled = read_wav_8k(wav)
    assert resampled.dtype == np.int16 and len(resampled) == 8000
    copy = write_wav_8k(tmp_path / "copy.wav", resampled)
    assert np.array_equal(read_wav_8k(copy), resampled)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")
def test_synthesize_with_espeak(tmp_path: Path) -> None:
    path = synthesize("yes, I will come back", tmp_path / "yes.wav", voice="en")
    pcm = read_wav_8k(path)
    assert len(pcm) > 8000 * 0.5 and np.abs(pcm).max() > 1000
