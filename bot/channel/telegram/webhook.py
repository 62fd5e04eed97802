"""The webhook: a FastAPI route that stores each update before it answers 200.

A request without the configured `X-Telegram-Bot-Api-Secret-Token` (or with a wrong one) gets 403
and nothing is stored; a body that is not an update gets 400. A valid update is committed to
`telegram_updates` (a duplicate `update_id` changes nothing), then acknowledged, then processed in
the background -- so a crash after the 200 loses nothing: `recover()` processes it at start-up.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import BackgroundTasks, FastAPI, Request, Response

from bot.channel.telegram.service import SECRET_HEADER, WEBHOOK_PATH, TelegramService


def webhook_app(service: TelegramService) -> FastAPI:
    api = FastAPI(title="Boomerang webhooks", docs_url=None, redoc_url=None, openapi_url=None)

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

    @api.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return api
