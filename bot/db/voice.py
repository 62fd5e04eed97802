"""The voice channel's tables: calls, their one-time stream tokens, their status events.

- `voice_calls`: one row per call placed for an outreach attempt. `turn` counts the prompts the
  caller has heard; `twiml` is the answer to the current turn's request, served again when Twilio
  repeats that request; `heard` is what the media stream recognised for the current turn (text,
  DTMF digits, or nothing: no input) until the Connect action consumes it.
- `voice_stream_tokens`: a token per turn, sent in the TwiML's `<Parameter>` (the stream URL
  cannot carry a query string); single-use and bound to its call.
- `voice_status_events`: every status callback once per (call, status), so duplicates change
  nothing; the call's `status_rank` keeps a late "ringing" from overwriting "completed".
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bot.db.base import Base
from bot.db.types import UtcTimestamp


class VoiceCall(Base):
    __tablename__ = "voice_calls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    outreach_id: Mapped[int] = mapped_column(
        ForeignKey("outreach.id", ondelete="CASCADE"), index=True
    )
    call_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    to_number: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    """Twilio's CallStatus: queued, initiated, ringing, in-progress, completed, busy, ..."""
    status_rank: Mapped[int] = mapped_column(Integer, default=0)
    answered_by: Mapped[str | None] = mapped_column(String(32))
    turn: Mapped[int] = mapped_column(Integer, default=0)
    twiml: Mapped[str | None] = mapped_column(Text)
    heard: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    outcome: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UtcTimestamp)
    updated_at: Mapped[datetime] = mapped_column(UtcTimestamp)
    ended_at: Mapped[datetime | None] = mapped_column(UtcTimestamp)


class VoiceStreamToken(Base):
    __tablename__ = "voice_stream_tokens"

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("voice_calls.id", ondelete="CASCADE"))
    turn: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcTimestamp)
    used_at: Mapped[datetime | None] = mapped_column(UtcTimestamp)


class VoiceStatusEvent(Base):
    __tablename__ = "voice_status_events"
    __table_args__ = (UniqueConstraint("call_sid", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(UtcTimestamp)
