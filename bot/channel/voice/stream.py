"""One turn of a call's media stream: Twilio's audio in, what the caller said out.

Twilio sends JSON messages over the WebSocket: `connected`, `start` (with our `<Parameter>`s: the
turn's one-time token), `media` (base64 μ-law 8 kHz, 20 ms frames), `dtmf`, `stop`. The turn:

- `start`: the token is checked (`VoiceService.open_turn`); a bad or reused one closes the socket;
- `media`: each frame goes through the speech gate; only speech (with a little pre-roll and
  trailing silence) reaches the recogniser, so a quiet line costs almost nothing;
- the turn ends at the first final recognition, at a DTMF answer (digits; a two-digit scale waits
  briefly for the second digit), at no input (`no_input_seconds` without speech), at
  `max_answer_seconds`, or when the caller hangs up (`stop`);
- what was heard is stored for the turn and the socket closed: Twilio then requests the
  `<Connect>` action, which applies it (`VoiceService.next`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from bot.channel.voice.audio import SpeechGate, mulaw_decode
from bot.channel.voice.recognizer import Heard, Recognizer
from bot.channel.voice.service import Turn, VoiceService

logger = logging.getLogger(__name__)

DIGIT_PAUSE = 1.5
"""Seconds to wait for a second key when a scale goes above 9 (NPS "10")."""

RecognizerFactory = Callable[[Sequence[str]], Recognizer]


class Socket(Protocol):
    """The part of a WebSocket a turn uses (Starlette's WebSocket has it)."""

    async def receive_text(self) -> str: ...

    async def close(self, code: int = 1000, reason: str | None = None) -> None: ...


async def run_turn(
    socket: Socket,
    service: VoiceService,
    recognizer_for: RecognizerFactory,
    *,
    no_input_seconds: float,
    max_answer_seconds: float,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any] | None:
    """Serve one stream; returns what was stored as heard (None: the stream was refused)."""
    turn: Turn | None = None
    recognizer: Recognizer | None = None
    gate = SpeechGate()
    started_at = clock()
    speech_seen = False
    digits = ""
    digit_at = 0.0
    heard: dict[str, Any] | None = None
    try:
        while heard is None:
            wait = _timeout(
                turn, started_at, speech_seen, digits, digit_at, clock(), no_input_seconds
            )
            if wait <= 0:  # media keeps coming, so the time is checked at every message too
                heard = await _timed_out(recognizer, digits, speech_seen)
                break
            try:
                raw = await asyncio.wait_for(socket.receive_text(), timeout=wait)
            except TimeoutError:
                heard = await _timed_out(recognizer, digits, speech_seen)
                break
            message = json.loads(raw)
            event = message.get("event")
            if event == "start":
                start = message.get("start", {})
                token = str(start.get("customParameters", {}).get("token", ""))
                turn = await asyncio.to_thread(service.open_turn, token, start.get("callSid"))
                if turn is None:
                    logger.warning("voice: a stream with a bad or used token was refused")
                    await socket.close(code=1008, reason="bad stream token")
                    return None
                recognizer = recognizer_for(turn.phrases)
                started_at = clock()
            elif event == "media" and recognizer is not None:
                frame = mulaw_decode(base64.b64decode(message["media"]["payload"]))
                gated = gate.push(frame)
                if gated.started:
                    speech_seen = True
                if gated.audio:
                    result = await recognizer.feed(gated.audio)
                    if result is not None and result.text.strip():
                        heard = _words(result)
                        break
                if gated.ended:
                    result = await recognizer.finish()
                    if result is not None and result.text.strip():
                        heard = _words(result)
                        break
                if clock() - started_at > max_answer_seconds:
                    heard = await _timed_out(recognizer, digits, speech_seen)
            elif event == "dtmf" and turn is not None:
                digits += str(message.get("dtmf", {}).get("digit", ""))
                digit_at = clock()
                if not _wants_more(turn, digits):
                    heard = {"digits": digits}
            elif event == "stop":
                heard = {"hung_up": True}
        if turn is not None:
            await asyncio.to_thread(service.heard, turn, heard)
        return heard
    finally:
        with contextlib.suppress(Exception):
            await socket.close()


def _timeout(
    turn: Turn | None,
    started_at: float,
    speech_seen: bool,
    digits: str,
    digit_at: float,
    now: float,
    no_input_seconds: float,
) -> float:
    if turn is None:
        return 10.0  # waiting for `start`
    if digits:
        return digit_at + DIGIT_PAUSE - now
    if speech_seen:
        return 5.0  # speaking: the gate's `ended` or the next frame decides
    return started_at + no_input_seconds - now


async def _timed_out(
    recognizer: Recognizer | None, digits: str, speech_seen: bool
) -> dict[str, Any]:
    if digits:
        return {"digits": digits}
    if recognizer is not None and speech_seen:
        result = await recognizer.finish()
        if result is not None and result.text.strip():
            return _words(result)
    return {"no_input": True}


def _words(result: Heard) -> dict[str, Any]:
    return {"text": result.text, "confidence": result.confidence}


def _wants_more(turn: Turn, digits: str) -> bool:
    """On a scale a "1" may be the start of "10": wait `DIGIT_PAUSE` for a second key."""
    return turn.kind == "scale" and digits == "1"
