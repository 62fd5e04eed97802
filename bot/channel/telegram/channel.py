"""`TelegramChannel`: the `Channel` the dispatcher calls; the conversation lives on in updates."""

from __future__ import annotations

from bot.channel.base import Contact, Delivery
from bot.channel.telegram.conversations import Conversations


class TelegramChannel:
    name = "telegram"

    def __init__(self, conversations: Conversations) -> None:
        self.conversations = conversations

    async def start_conversation(self, contact: Contact) -> Delivery:
        return await self.conversations.start(contact)
