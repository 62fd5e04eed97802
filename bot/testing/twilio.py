"""A Twilio simulator: the Calls REST API, scripted callees, TwiML, Media Streams, callbacks.

No machine here reaches Twilio, so every voice test talks to this server with the real ``twilio``
client pointed at it (``client.api.base_url = sim.base_url``). It ships in the package so users can
test their own scripts the same way (see docs/testing-voice.md).

::

    async with TwilioSimulator(account_sid="AC" + "0" * 32, auth_token="secret") as sim:
        sim.callee("+15005550006", Callee(turns=[Turn(audio="yes.wav"), Turn(digits="1")]))
        ...  # our code creates a call through the real twilio client
        record = await sim.wait(call_sid)
        record.says, record.streams, record.statuses

What the simulated Twilio does for a created call: status callbacks (``initiated``, ``ringing``,
then ``in-progress`` or ``busy`` / ``no-answer`` / ``failed``), the async AMD callback, the TwiML
fetched from ``Url`` with a valid ``X-Twilio-Signature``, then the verbs in order: ``<Say>``,
``<Play>``, ``<Pause>``, ``<Connect><Stream>`` (a WebSocket speaking the Media Streams protocol,
fed from WAV files in real time, or ``speed`` times faster), ``<Dial>``, ``<Redirect>``,
``<Hangup>``; the final ``completed`` callback carries ``CallDuration``. Everything is recorded.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import math
import re
import secrets
import shutil
import subprocess
import tempfile
import time
import wave
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

import numpy as np
from aiohttp import (
    ClientError,
    ClientSession,
    ClientTimeout,
    ClientWebSocketResponse,
    WSMsgType,
    WSServerHandshakeError,
    web,
)
from twilio.request_validator import RequestValidator

from bot.clock import Clock, SystemClock
from bot.testing.server import LocalServer

JSON = dict[str, Any]

API_VERSION = "2010-04-01"
SIGNATURE_HEADER = "X-Twilio-Signature"
SAMPLE_RATE = 8000
FRAME_BYTES = 160  # 20 ms of 8 kHz μ-law
FRAME_SECONDS = FRAME_BYTES / SAMPLE_RATE
MULAW_SILENCE = 0xFF  # μ-law of 0
WEBHOOK_TIMEOUT = 15.0  # Twilio's budget for one webhook
E164_RE = re.compile(r"^\+[1-9]\d{1,14}$")
FINAL_STATUSES = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})
DIAL_RESULTS = frozenset({"completed", "answered", "busy", "no-answer", "failed", "canceled"})
ANSWERED_BY = frozenset(
    {
        "human",
        "machine_start",
        "machine_end_beep",
        "machine_end_silence",
        "machine_end_other",
        "fax",
        "unknown",
    }
)
# StatusCallbackEvent name -> the CallStatus it reports ("completed" covers every final status).
EVENT_OF_STATUS = {
    "initiated": "initiated",
    "ringing": "ringing",
    "in-progress": "answered",
    **{status: "completed" for status in FINAL_STATUSES},
}

# ---------------------------------------------------------------------------------- audio

_BIAS = 0x84
_CLIP = 32635


def _encode_table() -> np.ndarray:
    x = np.arange(-32768, 32768, dtype=np.int32)
    sign = np.where(x < 0, 0x80, 0)
    magnitude = np.minimum(np.abs(x), _CLIP) + _BIAS
    exponent = np.clip(np.floor(np.log2(magnitude)).astype(np.int32) - 7, 0, 7)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    table: np.ndarray = (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8)
    return table


def _decode_table() -> np.ndarray:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (u >> 4) & 0x07
    magnitude = (((u & 0x0F) << 3) + _BIAS) << exponent
    return np.where(u & 0x80, _BIAS - magnitude, magnitude - _BIAS).astype(np.int16)


_ENCODE = _encode_table()
_DECODE = _decode_table()


def mulaw_encode(pcm16: np.ndarray) -> bytes:
    """G.711 μ-law of 16-bit linear PCM (any shape, flattened); one byte per sample."""
    samples = np.asarray(pcm16).astype(np.int16, copy=False).ravel()
    return bytes(_ENCODE[samples.astype(np.int32) + 32768].tobytes())


def mulaw_decode(data: bytes) -> np.ndarray:
    """16-bit linear PCM (int16) from G.711 μ-law bytes."""
    return np.asarray(_DECODE[np.frombuffer(data, dtype=np.uint8)], dtype=np.int16)


def read_wav_8k(path: str | Path) -> np.ndarray:
    """A PCM WAV file as 8 kHz mono int16 (channels averaged, resampled when needed)."""
    from math import gcd

    from scipy.signal import resample_poly

    with wave.open(str(path), "rb") as wav:
        rate = wav.getframerate()
        channels = wav.getnchannels()
        width = wav.getsampwidth()
        raw = wav.readframes(wav.getnframes())
    if width == 1:
        samples = (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) * 256.0
    elif width == 2:
        samples = np.frombuffer(raw, dtype="<i2").astype(np.float64)
    elif width == 4:
        samples = np.frombuffer(raw, dtype="<i4").astype(np.float64) / 65536.0
    else:
        raise ValueError(f"{path}: {width * 8}-bit WAV is not supported (8, 16 or 32-bit PCM)")
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    if rate != SAMPLE_RATE and samples.size:
        common = gcd(rate, SAMPLE_RATE)
        samples = np.asarray(resample_poly(samples, SAMPLE_RATE // common, rate // common))
    return np.clip(np.round(samples), -32768, 32767).astype(np.int16)


def write_wav_8k(path: str | Path, pcm16: np.ndarray) -> Path:
    """Write 8 kHz mono 16-bit PCM."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(np.asarray(pcm16, dtype="<i2").tobytes())
    return Path(path)


def frames(mulaw: bytes) -> list[bytes]:
    """μ-law audio cut into 160-byte (20 ms) frames; the last one padded with silence."""
    out = [mulaw[i : i + FRAME_BYTES] for i in range(0, len(mulaw), FRAME_BYTES)]
    if out and len(out[-1]) < FRAME_BYTES:
        out[-1] = out[-1] + bytes([MULAW_SILENCE]) * (FRAME_BYTES - len(out[-1]))
    return out


def silence(seconds: float) -> bytes:
    """μ-law silence, a whole number of frames."""
    return bytes([MULAW_SILENCE]) * (FRAME_BYTES * max(0, round(seconds / FRAME_SECONDS)))


def synthesize(text: str, path: str | Path, *, voice: str = "en", wpm: int | None = None) -> Path:
    """Speak ``text`` with espeak-ng into an 8 kHz mono 16-bit WAV at ``path`` (for tests).

    It proves the audio path, not recognition accuracy. Needs ``espeak-ng`` on PATH.
    """
    binary = shutil.which("espeak-ng")
    if binary is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "speech.wav"
        command = [binary, "-v", voice, "-w", str(raw)]
        if wpm is not None:
            command += ["-s", str(wpm)]
        subprocess.run([*command, text], check=True, capture_output=True, timeout=60)
        return write_wav_8k(path, read_wav_8k(raw))


# ---------------------------------------------------------------------------------- scripts


@dataclass(frozen=True)
class Turn:
    """What the callee does during one ``<Connect><Stream>``.

    In order: ``before`` seconds of silence, the WAV files of ``audio`` one after another, the DTMF
    ``digits`` (a ``dtmf`` event each, ``digit_gap`` seconds apart), ``after`` seconds of silence.
    Then, with ``hang_up``, the callee hangs up (``stop``, call ``completed``); otherwise they wait
    in silence until our server closes the socket, or for the callee's ``patience`` and hang up.
    Times are audio seconds: the simulator's ``speed`` divides them.
    """

    audio: str | Path | Sequence[str | Path] = ()
    digits: str = ""
    before: float = 0.0
    after: float = 0.0
    hang_up: bool = False
    digit_gap: float = 0.1

    @classmethod
    def silence(cls, seconds: float, *, hang_up: bool = False) -> Turn:
        """Nothing but silence frames for ``seconds``."""
        return cls(before=seconds, hang_up=hang_up)

    def audio_paths(self) -> list[Path]:
        if isinstance(self.audio, str | Path):
            return [Path(self.audio)]
        return [Path(item) for item in self.audio]


@dataclass(frozen=True)
class Callee:
    """A scripted phone at one number.

    ``busy``, ``fail``, or ``answer=False`` (no-answer after ``ring_seconds``, at most the call's
    ``Timeout``) end the call before it is answered. ``machine`` makes answering-machine detection
    report ``machine_start`` (``machine_end_beep`` with ``DetectMessageEnd``); ``answered_by`` sets
    any AMD result (``fax``, ``unknown``...). ``turns``: one per ``<Connect><Stream>`` met; when
    they run out the callee stays silent. ``patience``: audio seconds of silence after a turn
    before the callee hangs up.
    """

    answer: bool = True
    busy: bool = False
    fail: bool = False
    machine: bool = False
    answered_by: str | None = None
    ring_seconds: float = 0.0
    amd_seconds: float = 0.5
    turns: Sequence[Turn] = ()
    patience: float = 30.0
    speed: float | None = None  # overrides the simulator's speed for this callee

    def amd_result(self, detection: str) -> str:
        if self.answered_by is not None:
            if self.answered_by not in ANSWERED_BY:
                raise ValueError(f"answered_by must be one of {sorted(ANSWERED_BY)}")
            return self.answered_by
        if self.machine:
            return "machine_end_beep" if detection == "DetectMessageEnd" else "machine_start"
        return "human"


NO_ANSWER = Callee(answer=False)


# ---------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Webhook:
    """One HTTP request the simulator made to our server; ``status`` None on a connection error.

    ``kind``: twiml | action | redirect | status | amd.
    """

    kind: str
    url: str
    method: str
    params: dict[str, str]
    status: int | None
    body: str = ""
    error: str | None = None
    forged: bool = False


@dataclass(frozen=True)
class Say:
    text: str
    voice: str | None
    language: str | None
    loop: int = 1


@dataclass(frozen=True)
class Play:
    url: str
    digits: str | None = None


@dataclass(frozen=True)
class Pause:
    length: float


@dataclass
class Stream:
    """One ``<Connect><Stream>``: what was sent and received, and how it ended.

    ``ended_by``: "server" (our server closed the socket), "callee" (hung up: ``stop`` sent),
    "api" (hung up through the REST API: ``stop`` sent), "error" (no socket).
    """

    url: str
    parameters: dict[str, str]
    action: str | None
    stream_sid: str
    name: str | None = None
    sent: list[JSON] = field(default_factory=list)  # every message, media payloads included
    received: list[JSON] = field(default_factory=list)  # messages from our server
    dtmf: str = ""
    media_frames: int = 0
    marks: list[str] = field(default_factory=list)  # mark names echoed back
    ended_by: str = ""
    handshake_headers: dict[str, str] = field(default_factory=dict)

    def events(self) -> list[str]:
        return [message["event"] for message in self.sent]

    def outbound_audio(self) -> bytes:
        """The μ-law audio our server played to the callee."""
        return b"".join(
            base64.b64decode(message["media"]["payload"])
            for message in self.received
            if message.get("event") == "media"
        )


@dataclass(frozen=True)
class Dial:
    number: str
    action: str | None
    timeout: int
    caller_id: str | None
    result: str
    duration: int


@dataclass(frozen=True)
class Hangup:
    pass


@dataclass(frozen=True)
class Redirect:
    url: str
    method: str


Verb = Say | Play | Pause | Stream | Dial | Hangup | Redirect


@dataclass
class CallRecord:
    """A call the simulator placed; ``status`` is its current CallStatus."""

    sid: str
    account_sid: str
    to: str
    from_: str
    url: str | None
    method: str
    twiml: str | None
    status_callback: str | None
    status_callback_method: str
    status_callback_events: list[str]
    machine_detection: str | None
    async_amd: bool
    amd_callback: str | None
    amd_callback_method: str
    timeout: int
    created_at: float  # time.monotonic()
    date_created: str
    status: str = "queued"
    answered_by: str | None = None
    answered_at: float | None = None
    ended_at: float | None = None
    duration: int | None = None
    verbs: list[Verb] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)  # CallStatus of each callback sent
    webhooks: list[Webhook] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    hung_up_by: str | None = None  # "callee" | "api" | "twiml" | None
    done: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    _api_status: str | None = field(default=None, repr=False)
    _held: list[dict[str, str]] = field(default_factory=list, repr=False)
    _sequence: itertools.count[int] = field(default_factory=itertools.count, repr=False)

    @property
    def says(self) -> list[Say]:
        return [verb for verb in self.verbs if isinstance(verb, Say)]

    @property
    def streams(self) -> list[Stream]:
        return [verb for verb in self.verbs if isinstance(verb, Stream)]

    @property
    def dials(self) -> list[Dial]:
        return [verb for verb in self.verbs if isinstance(verb, Dial)]

    def webhooks_of(self, kind: str) -> list[Webhook]:
        return [hook for hook in self.webhooks if hook.kind == kind]


# ---------------------------------------------------------------------------------- errors


class TwilioError(Exception):
    """A REST error answer in Twilio's JSON shape."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> JSON:
        return {
            "code": self.code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.status,
        }


class _CallEnded(Exception):
    """The callee hung up during a verb: stop executing TwiML."""


def _sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"true", "1", "yes"}


# ---------------------------------------------------------------------------------- simulator


class TwilioSimulator(LocalServer):
    """An aiohttp server speaking Twilio's Calls REST API, placing simulated calls to our server.

    ``speed`` divides every simulated duration (ringing, pauses, audio pacing, dial); 1.0 is real
    time. ``duplicate_callbacks``: every status callback is sent twice. ``reorder_callbacks``:
    status callbacks are held and delivered when the call ends, the final one first (``ringing``
    after ``completed``). ``lose_callbacks``: status callbacks are never delivered (Twilio could
    not reach the server); the call's status is only known by fetching it.
    ``say_seconds_per_char``: audio time a ``<Say>`` takes per character
    (0 = instant). ``port=0`` picks a free port.
    """

    def __init__(
        self,
        account_sid: str = "AC" + "0" * 32,
        auth_token: str = "test-auth-token",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        speed: float = 1.0,
        duplicate_callbacks: bool = False,
        reorder_callbacks: bool = False,
        lose_callbacks: bool = False,
        say_seconds_per_char: float = 0.0,
        webhook_timeout: float = WEBHOOK_TIMEOUT,
        clock: Clock | None = None,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.host = host
        self.port = port
        self.speed = speed
        self.duplicate_callbacks = duplicate_callbacks
        self.reorder_callbacks = reorder_callbacks
        self.lose_callbacks = lose_callbacks
        self.say_seconds_per_char = say_seconds_per_char
        self.webhook_timeout = webhook_timeout
        self.clock: Clock = clock or SystemClock()
        self.validator = RequestValidator(auth_token)
        # Inspection.
        self.calls: dict[str, CallRecord] = {}
        self.create_times: list[float] = []  # time.monotonic() of each accepted create
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status) of REST requests

        self._callees: dict[str, Callee] = {}
        self._dial_results: dict[str, tuple[str, float]] = {}
        self._forge = 0
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.app = web.Application()
        accounts = f"/{API_VERSION}/Accounts/{{account}}"
        self.app.router.add_post(f"{accounts}/Calls.json", self._create_call)
        self.app.router.add_get(f"{accounts}/Calls/{{sid}}.json", self._fetch_call)
        self.app.router.add_post(f"{accounts}/Calls/{{sid}}.json", self._update_call)
        self.app.router.add_route("*", "/{tail:.*}", self._not_found)

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        """Give it to the real client: ``client.api.base_url = sim.base_url``."""
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        if not self.serving:
            await self.start_serving(ClientSession())

    async def close(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        self._tasks.clear()
        await self.stop_serving()

    # ------------------------------------------------------------------ scripting

    def callee(self, number: str, callee: Callee) -> Callee:
        """Script the phone at ``number``; unknown numbers do not answer."""
        self._callees[number] = callee
        return callee

    def dial_result(self, number: str, result: str = "completed", seconds: float = 0.0) -> None:
        """What a ``<Dial>`` to ``number`` (a manager) gives: DialCallStatus and duration."""
        if result not in DIAL_RESULTS:
            raise ValueError(f"result must be one of {sorted(DIAL_RESULTS)}")
        self._dial_results[number] = (result, seconds)

    def forge_next_signature(self, count: int = 1) -> None:
        """The next ``count`` webhooks carry a wrong X-Twilio-Signature."""
        self._forge += count

    # ------------------------------------------------------------------ inspection

    def call(self, sid: str) -> CallRecord:
        return self.calls[sid]

    def calls_to(self, number: str) -> list[CallRecord]:
        return [record for record in self.calls.values() if record.to == number]

    @property
    def calls_per_second(self) -> int:
        """The most calls created within any one second."""
        times = sorted(self.create_times)
        best = 0
        for i, start in enumerate(times):
            best = max(best, sum(1 for t in times[i:] if t < start + 1.0))
        return best

    async def wait(self, sid: str, seconds: float = 30.0) -> CallRecord:
        """Wait until the call has ended and its final callbacks are sent."""
        record = self.calls[sid]
        await asyncio.wait_for(record.done.wait(), seconds)
        return record

    async def idle(self, seconds: float = 30.0) -> None:
        """Wait until every call has ended."""
        async with asyncio.timeout(seconds):
            for record in list(self.calls.values()):
                await record.done.wait()

    # ------------------------------------------------------------------ REST

    def _check_auth(self, request: web.Request) -> None:
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        try:
            login, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except ValueError:
            login = password = ""
        if scheme.lower() != "basic" or (login, password) != (self.account_sid, self.auth_token):
            raise TwilioError(401, 20003, "Authenticate")
        if request.match_info["account"] != self.account_sid:
            raise TwilioError(404, 20404, f"The requested resource {request.path} was not found")

    async def _rest(self, request: web.Request, handler: Any) -> web.Response:
        try:
            self._check_auth(request)
            status, body = await handler(request)
        except TwilioError as error:
            status, body = error.status, error.body()
        self.requests.append((request.method, request.path, status))
        return web.json_response(body, status=status)

    async def _not_found(self, request: web.Request) -> web.Response:
        error = TwilioError(404, 20404, f"The requested resource {request.path} was not found")
        self.requests.append((request.method, request.path, 404))
        return web.json_response(error.body(), status=404)

    async def _create_call(self, request: web.Request) -> web.Response:
        return await self._rest(request, self._do_create)

    async def _fetch_call(self, request: web.Request) -> web.Response:
        return await self._rest(request, self._do_fetch)

    async def _update_call(self, request: web.Request) -> web.Response:
        return await self._rest(request, self._do_update)

    async def _do_create(self, request: web.Request) -> tuple[int, JSON]:
        form = await request.post()

        def one(name: str) -> str | None:
            value = form.get(name)
            return value if isinstance(value, str) and value != "" else None

        to, from_ = one("To"), one("From")
        url, twiml = one("Url"), one("Twiml")
        if to is None:
            raise TwilioError(400, 21201, "No 'To' number is specified")
        if from_ is None:
            raise TwilioError(400, 21213, "No 'From' number is specified")
        if url is None and twiml is None and one("ApplicationSid") is None:
            raise TwilioError(400, 21205, "Url parameter is required.")
        if not E164_RE.match(to):
            raise TwilioError(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if not E164_RE.match(from_):
            raise TwilioError(400, 21212, f"Invalid 'From' Phone Number: {from_}")
        for name in ("Url", "StatusCallback", "AsyncAmdStatusCallback"):
            value = one(name)
            if value is not None and urlsplit(value).scheme not in {"http", "https"}:
                raise TwilioError(400, 21205, f"{name} is not a valid URL: {value}")
        events = [str(event) for event in form.getall("StatusCallbackEvent", [])]
        events = [item for event in events for item in event.split()]  # "initiated ringing"
        bad = [
            event
            for event in events
            if event not in {"initiated", "ringing", "answered", "completed"}
        ]
        if bad:
            raise TwilioError(400, 21626, f"Invalid StatusCallbackEvent: {bad[0]}")
        timeout_text = one("Timeout") or "60"
        if not timeout_text.isdigit():
            raise TwilioError(400, 21216, f"Invalid Timeout: {timeout_text}")
        detection = one("MachineDetection")
        if detection is not None and detection not in {"Enable", "DetectMessageEnd"}:
            raise TwilioError(400, 21626, f"Invalid MachineDetection: {detection}")
        now = time.monotonic()
        sid = _sid("CA")
        record = CallRecord(
            sid=sid,
            account_sid=self.account_sid,
            to=to,
            from_=from_,
            url=url,
            method=(one("Method") or "POST").upper(),
            twiml=twiml,
            status_callback=one("StatusCallback"),
            status_callback_method=(one("StatusCallbackMethod") or "POST").upper(),
            status_callback_events=events or ["completed"],
            machine_detection=detection,
            async_amd=_truthy(one("AsyncAmd")),
            amd_callback=one("AsyncAmdStatusCallback"),
            amd_callback_method=(one("AsyncAmdStatusCallbackMethod") or "POST").upper(),
            timeout=min(600, max(1, int(timeout_text))),
            created_at=now,
            date_created=self._rfc2822(),
        )
        self.calls[sid] = record
        self.create_times.append(now)
        self._tasks[sid] = asyncio.get_running_loop().create_task(self._lifecycle(record))
        return 201, self._resource(record)

    def _record_of(self, request: web.Request) -> CallRecord:
        record = self.calls.get(request.match_info["sid"])
        if record is None:
            raise TwilioError(404, 20404, f"The requested resource {request.path} was not found")
        return record

    async def _do_fetch(self, request: web.Request) -> tuple[int, JSON]:
        return 200, self._resource(self._record_of(request))

    async def _do_update(self, request: web.Request) -> tuple[int, JSON]:
        record = self._record_of(request)
        form = await request.post()
        status = form.get("Status")
        if status not in (None, "completed", "canceled"):
            raise TwilioError(400, 21218, f"Invalid Status: {status!r}")
        if status is not None and record.status not in FINAL_STATUSES:
            answered = record.status == "in-progress"
            if status == "completed" or not answered:  # canceled only stops unanswered calls
                record._api_status = "completed" if answered else "canceled"
                record.hung_up_by = "api"
                task = self._tasks.get(record.sid)
                if task is not None:
                    task.cancel()
        return 200, self._resource(record)

    def _resource(self, record: CallRecord) -> JSON:
        uri = f"/{API_VERSION}/Accounts/{record.account_sid}/Calls/{record.sid}"
        return {
            "account_sid": record.account_sid,
            "annotation": None,
            "answered_by": record.answered_by,
            "api_version": API_VERSION,
            "caller_name": None,
            "date_created": record.date_created,
            "date_updated": self._rfc2822(),
            "direction": "outbound-api",
            "duration": None if record.duration is None else str(record.duration),
            "end_time": None,
            "forwarded_from": None,
            "from": record.from_,
            "from_formatted": record.from_,
            "group_sid": None,
            "parent_call_sid": None,
            "phone_number_sid": None,
            "price": None,
            "price_unit": "USD",
            "queue_time": "0",
            "sid": record.sid,
            "start_time": None,
            "status": record.status,
            "subresource_uris": {
                name: f"{uri}/{name.title().replace('_', '')}.json"
                for name in ("notifications", "recordings", "payments", "events", "siprec")
            },
            "to": record.to,
            "to_formatted": record.to,
            "trunk_sid": None,
            "uri": f"{uri}.json",
        }

    def _rfc2822(self) -> str:
        return format_datetime(self.clock.now(), usegmt=True)

    # ------------------------------------------------------------------ the call

    def _speed(self, callee: Callee) -> float:
        return callee.speed or self.speed

    async def _sleep(self, callee: Callee, seconds: float) -> None:
        if seconds > 0:
            await asyncio.sleep(seconds / self._speed(callee))

    async def _lifecycle(self, record: CallRecord) -> None:
        callee = self._callees.get(record.to, NO_ANSWER)
        final = "completed"
        try:
            final = await self._run(record, callee)
        except asyncio.CancelledError:
            if record._api_status is None:  # the simulator is closing
                record.done.set()
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            final = record._api_status
        except Exception as error:  # a bug in the script or the simulator: record it
            record.errors.append(f"{type(error).__name__}: {error}")
        record.ended_at = time.monotonic()
        if record.answered_at is not None:
            record.duration = max(
                1, math.ceil((record.ended_at - record.answered_at) * self._speed(callee))
            )
        else:
            record.duration = 0
        try:
            await self._set_status(record, final)
            if self.reorder_callbacks and record._held:
                held, record._held = record._held, []
                for params in [held[-1], *held[:-1]]:
                    await self._deliver_status(record, params)
        finally:
            record.done.set()

    async def _run(self, record: CallRecord, callee: Callee) -> str:
        await self._set_status(record, "initiated")
        if callee.fail:
            return "failed"
        await self._set_status(record, "ringing")
        if callee.busy:
            return "busy"
        if not callee.answer:
            await self._sleep(callee, min(callee.ring_seconds, float(record.timeout)))
            return "no-answer"
        await self._sleep(callee, callee.ring_seconds)
        record.answered_at = time.monotonic()
        await self._set_status(record, "in-progress")
        amd: asyncio.Task[None] | None = None
        if record.machine_detection is not None:
            result = callee.amd_result(record.machine_detection)
            if record.async_amd:
                amd = asyncio.get_running_loop().create_task(self._amd(record, callee, result))
            else:
                await self._sleep(callee, callee.amd_seconds)
                record.answered_by = result
        turns = iter(callee.turns)
        try:
            if record.twiml is not None:
                await self._execute(record, callee, turns, record.twiml, record.url or "")
            else:
                assert record.url is not None
                body = await self._fetch_twiml(record, "twiml", record.url, record.method, {})
                if body is not None:
                    await self._execute(record, callee, turns, body, record.url)
        except _CallEnded:
            pass
        finally:
            if amd is not None:
                if amd.done():
                    await amd
                else:
                    amd.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await amd
        return "completed"

    async def _amd(self, record: CallRecord, callee: Callee, result: str) -> None:
        await self._sleep(callee, callee.amd_seconds)
        record.answered_by = result
        if record.amd_callback is None:
            return
        params = {
            "AccountSid": record.account_sid,
            "CallSid": record.sid,
            "AnsweredBy": result,
            "MachineDetectionDuration": str(round(callee.amd_seconds * 1000)),
        }
        await self._webhook(record, "amd", record.amd_callback, record.amd_callback_method, params)

    # ------------------------------------------------------------------ callbacks

    def _standard_params(self, record: CallRecord) -> dict[str, str]:
        params = {
            "AccountSid": record.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": record.sid,
            "CallStatus": record.status,
            "Called": record.to,
            "Caller": record.from_,
            "Direction": "outbound-api",
            "From": record.from_,
            "To": record.to,
        }
        if record.answered_by is not None:
            params["AnsweredBy"] = record.answered_by
        return params

    async def _set_status(self, record: CallRecord, status: str) -> None:
        record.status = status
        event = EVENT_OF_STATUS[status]
        if record.status_callback is None or event not in record.status_callback_events:
            return
        if self.lose_callbacks:
            return
        params = self._standard_params(record)
        params.update(
            {
                "CallbackSource": "call-progress-events",
                "SequenceNumber": str(next(record._sequence)),
                "Timestamp": self._rfc2822(),
            }
        )
        if status in FINAL_STATUSES:
            params["CallDuration"] = str(record.duration or 0)
            params["Duration"] = str(math.ceil((record.duration or 0) / 60))
        if self.reorder_callbacks:
            record._held.append(params)
            return
        await self._deliver_status(record, params)

    async def _deliver_status(self, record: CallRecord, params: dict[str, str]) -> None:
        assert record.status_callback is not None
        for _ in range(2 if self.duplicate_callbacks else 1):
            record.statuses.append(params["CallStatus"])
            await self._webhook(
                record, "status", record.status_callback, record.status_callback_method, params
            )

    def _sign(self, url: str, params: Mapping[str, str]) -> tuple[str, bool]:
        signature: str = self.validator.compute_signature(url, dict(params))
        if self._forge > 0:
            self._forge -= 1
            return base64.b64encode(secrets.token_bytes(20)).decode(), True
        return signature, False

    async def _webhook(
        self,
        record: CallRecord,
        kind: str,
        url: str,
        method: str,
        params: Mapping[str, str],
    ) -> Webhook:
        """One signed request to our server, recorded; never raises on HTTP trouble."""
        assert self._client is not None, "the simulator is not started"
        method = method.upper()
        if method == "GET":
            parts = urlsplit(url)
            query = "&".join(q for q in (parts.query, urlencode(params)) if q)
            target = urlunsplit(parts._replace(query=query))
            signature, forged = self._sign(target, {})
            data: dict[str, str] | None = None
        else:
            target = url
            signature, forged = self._sign(url, params)
            data = dict(params)
        headers = {
            SIGNATURE_HEADER: signature,
            "User-Agent": "TwilioProxy/1.1",
            "Accept": "*/*",
            "I-Twilio-Idempotency-Token": secrets.token_hex(16),
        }
        status: int | None = None
        body = ""
        error: str | None = None
        try:
            async with self._client.request(
                method,
                target,
                data=data,
                headers=headers,
                timeout=ClientTimeout(total=self.webhook_timeout),
                allow_redirects=False,
            ) as response:
                status = response.status
                body = await response.text()
        except (ClientError, TimeoutError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        hook = Webhook(kind, url, method, dict(params), status, body, error, forged)
        record.webhooks.append(hook)
        if error is None and status is not None and not 200 <= status < 300:
            error = f"{kind} webhook {url} answered {status}"
        if error is not None:
            record.errors.append(error)
        return hook

    async def _fetch_twiml(
        self,
        record: CallRecord,
        kind: str,
        url: str,
        method: str,
        extra: Mapping[str, str],
    ) -> str | None:
        """TwiML from our server, or None (an error recorded: Twilio says "application error")."""
        params = self._standard_params(record)
        params.update(extra)
        hook = await self._webhook(record, kind, url, method, params)
        if hook.status is None or not 200 <= hook.status < 300:
            return None
        return hook.body

    # ------------------------------------------------------------------ TwiML

    async def _execute(
        self,
        record: CallRecord,
        callee: Callee,
        turns: Iterator[Turn],
        document: str,
        document_url: str,
    ) -> None:
        """Run a TwiML document; returns when the call should hang up."""
        try:
            root = ET.fromstring(document)
        except ET.ParseError as error:
            record.errors.append(f"TwiML from {document_url} is not XML: {error}")
            return
        if root.tag != "Response":
            record.errors.append(f"TwiML from {document_url}: root is <{root.tag}>, not <Response>")
            return
        for verb in root:
            tag = verb.tag
            text = (verb.text or "").strip()
            if tag == "Say":
                loop = int(verb.get("loop", "1") or "1")
                record.verbs.append(Say(text, verb.get("voice"), verb.get("language"), loop))
                await self._sleep(callee, len(text) * self.say_seconds_per_char * max(loop, 1))
            elif tag == "Play":
                record.verbs.append(Play(text, verb.get("digits")))
            elif tag == "Pause":
                length = float(verb.get("length", "1"))
                record.verbs.append(Pause(length))
                await self._sleep(callee, length)
            elif tag == "Connect":
                action = verb.get("action")
                stream_el = verb.find("Stream")
                if stream_el is None:
                    record.errors.append("<Connect> without <Stream> is not simulated")
                    continue
                turn = next(turns, Turn())
                await self._stream(record, callee, turn, stream_el, action, document_url)
                if action:
                    url = urljoin(document_url, action)
                    method = verb.get("method", "POST")
                    body = await self._fetch_twiml(record, "action", url, method, {})
                    if body is not None:
                        await self._execute(record, callee, turns, body, url)
                    return
            elif tag == "Dial":
                if await self._dial(record, callee, turns, verb, document_url):
                    return
            elif tag == "Hangup":
                record.verbs.append(Hangup())
                record.hung_up_by = "twiml"
                return
            elif tag == "Redirect":
                url = urljoin(document_url, text)
                method = verb.get("method", "POST").upper()
                record.verbs.append(Redirect(url, method))
                body = await self._fetch_twiml(record, "redirect", url, method, {})
                if body is not None:
                    await self._execute(record, callee, turns, body, url)
                return
            else:
                record.errors.append(f"<{tag}> is not simulated")

    async def _dial(
        self,
        record: CallRecord,
        callee: Callee,
        turns: Iterator[Turn],
        verb: ET.Element,
        document_url: str,
    ) -> bool:
        """Dial a manager; True when the action's TwiML took over (stop this document)."""
        number = (verb.text or "").strip()
        for child in verb:
            if child.tag in {"Number", "Client", "Sip"}:
                number = (child.text or "").strip()
        result, seconds = self._dial_results.get(number, ("completed", 0.0))
        timeout = int(verb.get("timeout", "30"))
        action = verb.get("action")
        answered = result in {"completed", "answered"}
        duration = math.ceil(seconds) if answered else 0
        record.verbs.append(Dial(number, action, timeout, verb.get("callerId"), result, duration))
        await self._sleep(callee, seconds if answered else min(seconds, timeout))
        if not action:
            return False
        url = urljoin(document_url, action)
        extra = {"DialCallStatus": result, "DialCallSid": _sid("CA")}
        if answered:
            extra["DialCallDuration"] = str(duration)
        body = await self._fetch_twiml(record, "action", url, verb.get("method", "POST"), extra)
        if body is not None:
            await self._execute(record, callee, turns, body, url)
        return True

    # ------------------------------------------------------------------ Media Streams

    async def _stream(
        self,
        record: CallRecord,
        callee: Callee,
        turn: Turn,
        element: ET.Element,
        action: str | None,
        document_url: str,
    ) -> None:
        url = element.get("url", "")
        parameters = {p.get("name", ""): p.get("value", "") for p in element.findall("Parameter")}
        stream = Stream(url, parameters, action, _sid("MZ"), element.get("name"))
        record.verbs.append(stream)
        parts = urlsplit(url)
        if parts.scheme not in {"ws", "wss"}:
            record.errors.append(f"<Stream url> must be ws:// or wss://, not {url!r}")
            stream.ended_by = "error"
            return
        if parts.query:
            record.errors.append(f"<Stream url> cannot carry a query string: {url!r}")
            url = urlunsplit(parts._replace(query=""))
        assert self._client is not None
        signature, _ = self._sign(url, {})
        stream.handshake_headers = {SIGNATURE_HEADER: signature}
        try:
            async with asyncio.timeout(10.0):
                ws = await self._client.ws_connect(url, headers=stream.handshake_headers)
        except (WSServerHandshakeError, ClientError, OSError, TimeoutError) as error:
            record.errors.append(f"stream {url}: {type(error).__name__}: {error}")
            stream.ended_by = "error"
            return
        try:
            ended = await self._feed(record, callee, turn, stream, ws)
        except asyncio.CancelledError:
            if not ws.closed:
                with contextlib.suppress(Exception):
                    await self._send(stream, ws, self._stop(record, stream))
                stream.ended_by = "api"
            raise
        finally:
            await ws.close()
        if ended == "callee":
            record.hung_up_by = "callee"
            raise _CallEnded

    def _stop(self, record: CallRecord, stream: Stream) -> JSON:
        return {
            "event": "stop",
            "streamSid": stream.stream_sid,
            "stop": {"accountSid": record.account_sid, "callSid": record.sid},
        }

    async def _send(self, stream: Stream, ws: ClientWebSocketResponse, message: JSON) -> None:
        if message["event"] != "connected":
            message["sequenceNumber"] = str(len(stream.sent))
        stream.sent.append(message)
        await ws.send_str(json.dumps(message))

    def _turn_plan(self, turn: Turn, callee: Callee) -> list[bytes | str]:
        """The turn as 20 ms frames, with DTMF digits (str) between them."""
        plan: list[bytes | str] = list(frames(silence(turn.before)))
        for path in turn.audio_paths():
            plan += frames(mulaw_encode(read_wav_8k(path)))
        gap = frames(silence(turn.digit_gap)) or [bytes([MULAW_SILENCE]) * FRAME_BYTES]
        for digit in turn.digits:
            plan.append(digit)
            plan += gap
        plan += frames(silence(turn.after))
        if not turn.hang_up:
            plan += frames(silence(callee.patience))
        return plan

    async def _feed(
        self,
        record: CallRecord,
        callee: Callee,
        turn: Turn,
        stream: Stream,
        ws: ClientWebSocketResponse,
    ) -> str:
        """Send connected, start, the turn in real time; 'server' or 'callee' ended it."""
        speed = self._speed(callee)
        closed = asyncio.Event()
        loop = asyncio.get_running_loop()
        state = {"played_until": loop.time()}
        pending_marks: dict[asyncio.TimerHandle, str] = {}
        sends: set[asyncio.Task[None]] = set()

        def echo_mark(name: str) -> None:
            # Twilio answers a mark once the audio queued before it has played (or was cleared).
            if ws.closed:
                return
            stream.marks.append(name)
            message = {"event": "mark", "streamSid": stream.stream_sid, "mark": {"name": name}}
            task = loop.create_task(self._send(stream, ws, message))
            sends.add(task)
            task.add_done_callback(sends.discard)

        async def read() -> None:
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(message.data)
                except ValueError:
                    record.errors.append(f"stream {stream.url}: not JSON: {message.data[:80]!r}")
                    continue
                if not isinstance(data, dict):
                    record.errors.append(f"stream {stream.url}: not an object: {data!r}")
                    continue
                stream.received.append(data)
                event = data.get("event")
                if event == "media":
                    payload = base64.b64decode(data.get("media", {}).get("payload", ""))
                    start = max(loop.time(), state["played_until"])
                    state["played_until"] = start + len(payload) / SAMPLE_RATE / speed
                elif event == "mark":
                    name = str(data.get("mark", {}).get("name", ""))
                    handle = loop.call_at(state["played_until"], echo_mark, name)
                    pending_marks[handle] = name
                elif event == "clear":
                    state["played_until"] = loop.time()
                    for handle, name in list(pending_marks.items()):
                        if not handle.cancelled() and loop.time() < handle.when():
                            handle.cancel()
                            echo_mark(name)
                    pending_marks.clear()
                elif event is not None and event not in {"media", "mark", "clear"}:
                    record.errors.append(f"stream {stream.url}: unknown event {event!r}")
            closed.set()

        plan = self._turn_plan(turn, callee)  # read the WAV files before the clock starts
        reader = loop.create_task(read())
        try:
            await self._send(
                stream, ws, {"event": "connected", "protocol": "Call", "version": "1.0.0"}
            )
            start = {
                "accountSid": record.account_sid,
                "streamSid": stream.stream_sid,
                "callSid": record.sid,
                "tracks": ["inbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                "customParameters": stream.parameters,
            }
            await self._send(
                stream, ws, {"event": "start", "start": start, "streamSid": stream.stream_sid}
            )
            t0 = loop.time()
            chunk = 0
            for item in plan:
                if closed.is_set() or ws.closed:
                    return "server"
                if isinstance(item, str):
                    stream.dtmf += item
                    message = {
                        "event": "dtmf",
                        "streamSid": stream.stream_sid,
                        "dtmf": {"track": "inbound_track", "digit": item},
                    }
                    await self._send(stream, ws, message)
                    continue
                due = t0 + chunk * FRAME_SECONDS / speed
                if due > loop.time():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(closed.wait(), due - loop.time())
                    if closed.is_set():
                        return "server"
                chunk += 1
                message = {
                    "event": "media",
                    "streamSid": stream.stream_sid,
                    "media": {
                        "track": "inbound",
                        "chunk": str(chunk),
                        "timestamp": str((chunk - 1) * 20),
                        "payload": base64.b64encode(item).decode(),
                    },
                }
                try:
                    await self._send(stream, ws, message)
                except (ConnectionResetError, ClientError):
                    return "server"
                stream.media_frames += 1
            if closed.is_set() or ws.closed:
                return "server"
            await self._send(stream, ws, self._stop(record, stream))
            stream.ended_by = "callee"
            return "callee"
        finally:
            if stream.ended_by == "":
                stream.ended_by = "server"
            for handle in pending_marks:
                handle.cancel()
            reader.cancel()
            await asyncio.gather(reader, *sends, return_exceptions=True)
