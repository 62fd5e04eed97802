"""`VoiceChannel`: the `Channel` the dispatcher calls; the call goes on in webhooks."""

from __future__ import annotations

from bot.channel.base import Contact, Delivery
from bot.channel.voice.service import VoiceService


class VoiceChannel:
    name = "voice"

    def __init__(self, service: VoiceService) -> None:
        self.service = service

    async def start_conversation(self, contact: Contact) -> Delivery:
        return await self.service.place(contact)
