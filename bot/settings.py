"""Settings: read once from the environment (prefix BOOMERANG_) and an optional .env file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BOOMERANG_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default="sqlite:///boomerang.db",
        validation_alias=AliasChoices("DATABASE_URL", "BOOMERANG_DATABASE_URL"),
    )
    default_region: str = "RU"
    """Region used to read phone numbers written without a country code (ISO 3166 alpha-2)."""
    default_time_zone: str = "Europe/Moscow"
    default_currency: str = "RUB"
    default_locale: str = "ru"
    company_name: str = "Boomerang Demo Shop"
    vosk_model: Path | None = None
    """Folder of an unpacked Vosk model (e.g. vosk-model-small-ru-0.22); never downloaded."""

    # --- Telegram (docs/telegram.md) ---
    telegram_token: str | None = None
    """The bot's token from @BotFather; without it the Telegram channel is off."""
    telegram_api: str = "https://api.telegram.org"
    """The Bot API base URL: a self-hosted Bot API server or the emulator (bot.testing)."""
    telegram_bot_username: str | None = None
    """The bot's @username without '@', for deep links t.me/<username>?start=<token>."""
    telegram_link_secret: str | None = None
    """The key that signs deep-link tokens; without it the bot token is used."""
    telegram_link_days: int = Field(default=30, ge=1)
    """How long a deep link stays valid."""
    telegram_mode: str = Field(default="polling", pattern="^(polling|webhook)$")
    """polling (no public URL needed) or webhook."""
    telegram_webhook_secret: str | None = None
    """Required in webhook mode: Telegram sends it in X-Telegram-Bot-Api-Secret-Token."""
    public_url: str | None = None
    """The service's public base URL (webhooks: Telegram's and Twilio's)."""
    telegram_managers_chat: int | None = None
    """The chat id of the managers' group: callbacks, handoffs and detractors go there."""
    telegram_rate: float = Field(default=30.0, gt=0)
    """Messages per second for the whole bot (Telegram: about 30)."""
    telegram_chat_interval: float = Field(default=1.0, ge=0)
    """Seconds between two messages to the same chat (Telegram: about 1)."""
    telegram_reminder_hours: float = Field(default=24.0, gt=0)

    # --- voice: Twilio + Vosk (docs/voice.md) ---
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    """Also the key Twilio signs webhooks with (X-Twilio-Signature)."""
    twilio_api: str | None = None
    """Another REST base URL (the simulator in bot.testing); None: Twilio's."""
    voice_caller_id: str | None = None
    """The number calls come from (E.164, a Twilio number of the account)."""
    voice_calls_per_second: float = Field(default=1.0, gt=0)
    """The account's outbound rate (Twilio's default: 1 call per second)."""
    voice_tts_voice: str = "Polly.Tatyana"
    """<Say voice=...>: a Twilio/Polly voice for the script's language."""
    voice_tts_language: str = "ru-RU"
    voice_no_input_seconds: float = Field(default=6.0, gt=0)
    """Silence after a prompt before the step's no_input reprompt."""
    voice_max_answer_seconds: float = Field(default=15.0, gt=0)
    """The longest answer listened to in one turn."""
    voice_manager_phone: str | None = None
    """Where a script's `transfer` action dials (E.164); without it the transfer becomes a task."""
    """A conversation without a reply this long gets the script's reminder (its no_input)."""


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
