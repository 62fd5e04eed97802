"""TwiML for each turn of a call, built with the twilio library's `VoiceResponse`.

A turn says the step's prompt and listens: `<Say>` then `<Connect action=next><Stream url=ws>`
with the turn's one-time token in `<Parameter>` (a stream URL cannot carry a query string).
The last turn says goodbye and hangs up; a transfer says its words and dials the manager, with
an action that learns whether anyone answered.
"""

from __future__ import annotations

from collections.abc import Sequence

from twilio.twiml.voice_response import Connect, Dial, VoiceResponse

TOKEN_PARAMETER = "token"


def _say(response: VoiceResponse, says: Sequence[str], voice: str, language: str) -> None:
    for text in says:
        if text.strip():
            response.say(text, voice=voice, language=language)


def listen(
    says: Sequence[str],
    *,
    voice: str,
    language: str,
    action_url: str,
    stream_url: str,
    token: str,
) -> str:
    response = VoiceResponse()
    _say(response, says, voice, language)
    connect = Connect(action=action_url, method="POST")
    stream = connect.stream(url=stream_url)
    stream.parameter(name=TOKEN_PARAMETER, value=token)
    response.append(connect)
    return str(response)


def goodbye(says: Sequence[str], *, voice: str, language: str) -> str:
    response = VoiceResponse()
    _say(response, says, voice, language)
    response.hangup()
    return str(response)


def transfer(
    says: Sequence[str],
    number: str,
    *,
    voice: str,
    language: str,
    action_url: str,
    timeout_seconds: int = 25,
) -> str:
    response = VoiceResponse()
    _say(response, says, voice, language)
    dial = Dial(action=action_url, method="POST", timeout=timeout_seconds)
    dial.number(number)
    response.append(dial)
    return str(response)
