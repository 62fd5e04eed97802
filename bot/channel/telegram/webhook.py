"""The Telegram webhook alone (the routes live in bot.web, with the voice webhooks)."""

from __future__ import annotations

from fastapi import FastAPI

from bot.channel.telegram.service import TelegramService


def webhook_app(service: TelegramService) -> FastAPI:
    from bot.web import web_app

    return web_app(telegram=service)
