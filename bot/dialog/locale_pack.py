"""A locale pack (`dialogs/_locale/<locale>.yaml`): what every step of a script understands."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


def _yes_no_keys(value: Any) -> Any:
    # YAML 1.1 reads a bare `yes:` / `no:` key as a boolean.
    if isinstance(value, dict):
        return {
            {True: "yes", False: "no"}.get(k, k) if isinstance(k, bool) else k: v
            for k, v in value.items()
        }
    return value


class Buttons(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    yes: str
    no: str

    @model_validator(mode="before")
    @classmethod
    def _keys(cls, value: Any) -> Any:
        return _yes_no_keys(value)


class LocalePack(BaseModel):
    """Yes/no words, number words, stop phrases and the default texts of one language."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    yes: tuple[str, ...] = Field(min_length=1)
    no: tuple[str, ...] = Field(min_length=1)
    numbers: dict[int, tuple[str, ...]] = Field(default_factory=dict)
    """Number words: 0 -> ("ноль",), 1 -> ("один", "одна"), ..."""
    stop: tuple[str, ...] = Field(min_length=1)
    """Phrases that opt the customer out at any step."""
    stop_confirmation: str
    buttons: Buttons
    no_input_default: str
    no_match_default: str

    @model_validator(mode="before")
    @classmethod
    def _keys(cls, value: Any) -> Any:
        return _yes_no_keys(value)

    @field_validator("numbers")
    @classmethod
    def _non_negative(cls, numbers: dict[int, tuple[str, ...]]) -> dict[int, tuple[str, ...]]:
        for number in numbers:
            if number < 0:
                raise ValueError(f"number {number} must not be negative")
        return numbers
