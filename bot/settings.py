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


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
