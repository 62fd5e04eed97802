"""The service's HTTP face: one FastAPI app with the channels' webhooks.

- Telegram (`/telegram/webhook`): the secret token is checked, the update stored before the 200
  (bot.channel.telegram.service).
- Voice (`/voice/...`): every Twilio webhook's `X-Twilio-Signature` is validated against
  `BOOMERANG_PUBLIC_URL` + the path (what Twilio signed; proxies change the Host) and answered 403
  with nothing changed when it does not match; the media stream (`/voice/stream`) is a WebSocket
  authenticated by its turn's one-time token. The database work of each request runs in a worker
  thread, so a busy database never stalls the media streams on the event loop.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import BackgroundTasks, FastAPI, Request, Response, WebSocket
from twilio.request_validator import RequestValidator

from bot.channel.telegram.service import SECRET_HEADER, WEBHOOK_PATH, TelegramService
from bot.channel.voice.service import (
    AMD_PATH,
    ANSWER_PATH,
    DIAL_PATH,
    NEXT_PATH,
    STATUS_PATH,
    STREAM_PATH,
    VoiceService,
)
from bot.channel.voice.stream import RecognizerFactory, run_turn

TWIML = "application/xml"
SIGNATURE_HEADER = "X-Twilio-Signature"


def web_app(
    telegram: TelegramService | None = None,
    voice: VoiceService | None = None,
    recognizer_for: RecognizerFactory | None = None,
) -> FastAPI:
    api = FastAPI(title="Boomerang webhooks", docs_url=None, redoc_url=None, openapi_url=None)

    @api.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    if telegram is not None:
        _telegram_routes(api, telegram)
    if voice is not None:
        if recognizer_for is None:
            raise ValueError("the voice webhooks need a recogniser (BOOMERANG_VOSK_MODEL)")
        _voice_routes(api, voice, recognizer_for)
    return api


def _telegram_routes(api: FastAPI, service: TelegramService) -> None:
    @api.post(WEBHOOK_PATH)
    async def telegram_update(request: Request, background: BackgroundTasks) -> Response:
        if not service.secret_ok(request.headers.get(SECRET_HEADER)):
            return Response("forbidden: wrong or missing secret token", status_code=403)
        try:
            payload: Any = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return Response("bad request: the body is not JSON", status_code=400)
        if not isinstance(payload, dict) or not isinstance(payload.get("update_id"), int):
            return Response("bad request: not a Telegram update", status_code=400)
        if service.store(payload):
            background.add_task(service.process_stored)
        return Response(status_code=200)


def _voice_routes(api: FastAPI, service: VoiceService, recognizer_for: RecognizerFactory) -> None:
    token = service.app.settings.twilio_auth_token
    if not token:
        raise ValueError("BOOMERANG_TWILIO_AUTH_TOKEN is required to check Twilio's signatures")
    validator = RequestValidator(token)
    settings = service.app.settings

    async def signed(request: Request) -> dict[str, str] | None:
        """The webhook's form parameters, or None when Twilio did not sign them."""
        form = await request.form()
        params = {key: str(value) for key, value in form.items()}
        url = service.base + request.url.path
        if request.url.query:
            url += "?" + request.url.query
        signature = request.headers.get(SIGNATURE_HEADER, "")
        return params if signature and validator.validate(url, params, signature) else None

    forbidden = Response("forbidden: bad or missing X-Twilio-Signature", status_code=403)

    @api.post(ANSWER_PATH)
    async def voice_answer(call_id: int, request: Request) -> Response:
        if await signed(request) is None:
            return forbidden
        body = await asyncio.to_thread(service.answer, call_id)
        if body is None:
            return Response("no such call", status_code=404)
        return Response(body, media_type=TWIML)

    @api.post(NEXT_PATH)
    async def voice_next(call_id: int, turn: int, request: Request) -> Response:
        if await signed(request) is None:
            return forbidden
        body = await asyncio.to_thread(service.next, call_id, turn)
        if body is None:
            return Response("no such call", status_code=404)
        return Response(body, media_type=TWIML)

    @api.post(DIAL_PATH)
    async def voice_dial(call_id: int, request: Request) -> Response:
        params = await signed(request)
        if params is None:
            return forbidden
        status = params.get("DialCallStatus", "failed")
        body = await asyncio.to_thread(service.dialled, call_id, status)
        return Response(body, media_type=TWIML)

    @api.post(STATUS_PATH)
    async def voice_status(request: Request) -> Response:
        params = await signed(request)
        if params is None:
            return forbidden
        await asyncio.to_thread(service.status, params)
        return Response(status_code=204)

    @api.post(AMD_PATH)
    async def voice_amd(request: Request) -> Response:
        params = await signed(request)
        if params is None:
            return forbidden
        await service.amd(params)
        return Response(status_code=204)

    @api.websocket(STREAM_PATH)
    async def voice_stream(socket: WebSocket) -> None:
        await socket.accept()
        await run_turn(
            socket,
            service,
            recognizer_for,
            no_input_seconds=settings.voice_no_input_seconds,
            max_answer_seconds=settings.voice_max_answer_seconds,
        )
