"""Telegram's tables: chats that started the bot, used link tokens, received updates, the outbox,
and the script versions live conversations are pinned to.

- `telegram_chats`: every private chat that wrote to the bot, linked to a customer or not (unknown
  users are kept as unlinked contacts); `blocked_at` when the user blocked the bot.
- `telegram_link_uses`: the nonce of every deep-link token used: a token works once.
- `telegram_updates`: every update received, by `update_id`, stored before it is acknowledged, so a
  duplicate (Telegram retries a webhook, a restart re-reads the polling offset) is processed once.
- `telegram_messages`: the outbox. One row per message an outreach step sends, unique per
  (outreach, seq): committed with the conversation's new state before the Bot API call, so a step's
  message is sent exactly once across retries and restarts (a row left `sending` by a crash is
  never re-sent).
- `script_versions`: the source of every script version a conversation started on, so a reply
  that comes after the script was edited continues on the version it started with.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from bot.db.base import Base
from bot.db.types import UtcTimestamp

MESSAGE_STATES = ("pending", "sending", "sent", "failed", "dropped")
"""pending: committed, not sent yet; sending: the Bot API call may have happened (a crash here is
never re-sent); sent; failed: the Bot API refused it (400, 403); dropped: its conversation ended
before it could go."""


class TelegramChat(Base):
    __tablename__ = "telegram_chats"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    username: Mapped[str | None] = mapped_column(String(64))
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    language_code: Mapped[str | None] = mapped_column(String(16))
    phone: Mapped[str | None] = mapped_column(String(20))
    """E.164, when the user shared their contact."""
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"), index=True
    )
    first_seen_at: Mapped[datetime] = mapped_column(UtcTimestamp)
    last_seen_at: Mapped[datetime] = mapped_column(UtcTimestamp)
    blocked_at: Mapped[datetime | None] = mapped_column(UtcTimestamp)


class TelegramLinkUse(Base):
    __tablename__ = "telegram_link_uses"

    nonce: Mapped[str] = mapped_column(String(32), primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    chat_id: Mapped[int] = mapped_column(BigInteger)
    used_at: Mapped[datetime] = mapped_column(UtcTimestamp)


class TelegramUpdate(Base):
    __tablename__ = "telegram_updates"

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    received_at: Mapped[datetime] = mapped_column(UtcTimestamp)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    processed_at: Mapped[datetime | None] = mapped_column(UtcTimestamp)
    error: Mapped[str | None] = mapped_column(Text)


class TelegramMessage(Base):
    __tablename__ = "telegram_messages"
    __table_args__ = (
        UniqueConstraint("outreach_id", "seq"),
        Index("ix_telegram_messages_state", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    outreach_id: Mapped[int | None] = mapped_column(ForeignKey("outreach.id", ondelete="CASCADE"))
    """None for messages outside a campaign (help, confirmations, managers' chat)."""
    seq: Mapped[int] = mapped_column(Integer)
    """Order within the outreach: 0, 1, 2, ..."""
    chat_id: Mapped[int] = mapped_column(BigInteger)
    text: Mapped[str] = mapped_column(Text)
    reply_markup: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    """Bot API reply_markup JSON (an inline keyboard), or None."""
    state: Mapped[str] = mapped_column(String(16))
    """One of MESSAGE_STATES."""
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcTimestamp)
    sent_at: Mapped[datetime | None] = mapped_column(UtcTimestamp)


class ScriptVersion(Base):
    __tablename__ = "script_versions"

    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    script_id: Mapped[str] = mapped_column(String(100))
    locale: Mapped[str] = mapped_column(String(8))
    source: Mapped[str] = mapped_column(Text)
    """The YAML text of the script at that version."""
    first_used_at: Mapped[datetime] = mapped_column(UtcTimestamp)
