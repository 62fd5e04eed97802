"""A campaign definition: who, with which script, over which channels, when, and how often."""

from __future__ import annotations

from datetime import date, time, tzinfo
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Channel = Literal["telegram", "voice"]
Purpose = Literal["survey", "service", "marketing"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
AbcClass = Literal["A", "B", "C"]
ValuePriority = Literal["win_back_first", "must_win_back", "win_back_if_cheap", "let_go"]
"""The retention playbook's verdicts (bot.audience.value.PRIORITY)."""

AUDIENCE_KINDS = ("lapsed", "post-order", "welcome", "anniversary", "birthday")
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ID_PATTERN = r"^[a-z][a-z0-9_]*$"


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


def _unique(values: tuple[str, ...], what: str) -> tuple[str, ...]:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{what} {value!r} is listed twice")
        seen.add(value)
    return values


# --- audience: the options of `boomerang audience preview`, per kind ---


class CommonParams(Strict):
    contacted_within: int = Field(default=14, ge=0)
    """Skip customers contacted (by any campaign) in the last N days."""
    exclude_let_go: bool = False
    """Skip CZ customers (the playbook's `let_go`)."""


class LapsedParams(CommonParams):
    factor: float = Field(default=4 / 3, gt=0)
    """Lapsed when days since the last order exceed factor x the expected gap."""
    min_orders: int = Field(default=3, ge=1)
    """Purchase days needed before a customer's own median gap is trusted (else the shop's)."""
    classes: tuple[AbcClass, ...] = ()
    """Only these ABC classes (empty: all)."""
    priorities: tuple[ValuePriority, ...] = ()
    """Only these playbook priorities (empty: all)."""

    @field_validator("classes")
    @classmethod
    def _classes_once(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _unique(value, "class")

    @field_validator("priorities")
    @classmethod
    def _priorities_once(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _unique(value, "priority")


class DaysRange(CommonParams):
    min_days: int = Field(default=0, ge=0)
    max_days: int = Field(default=3, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> DaysRange:
        if self.min_days > self.max_days:
            raise ValueError(f"min_days {self.min_days} is after max_days {self.max_days}")
        return self


class PostOrderParams(DaysRange):
    min_days: int = Field(default=2, ge=0)
    """Days since delivery, from..."""
    max_days: int = Field(default=7, ge=0)
    """...to (inclusive)."""


class WelcomeParams(DaysRange):
    """Days since the first order: `min_days`..`max_days` (0..3)."""


class AnniversaryParams(CommonParams):
    years: int | None = Field(default=None, ge=1)
    """Exactly N years since the first order (none: any number of years, at least one)."""


class BirthdayParams(CommonParams):
    days_ahead: int = Field(default=0, ge=0)
    """Birthdays from today to today + N days."""


class LapsedAudience(Strict):
    kind: Literal["lapsed"]
    params: LapsedParams = LapsedParams()


class PostOrderAudience(Strict):
    kind: Literal["post-order"]
    params: PostOrderParams = PostOrderParams()


class WelcomeAudience(Strict):
    kind: Literal["welcome"]
    params: WelcomeParams = WelcomeParams()


class AnniversaryAudience(Strict):
    kind: Literal["anniversary"]
    params: AnniversaryParams = AnniversaryParams()


class BirthdayAudience(Strict):
    kind: Literal["birthday"]
    params: BirthdayParams = BirthdayParams()


Audience = Annotated[
    LapsedAudience | PostOrderAudience | WelcomeAudience | AnniversaryAudience | BirthdayAudience,
    Field(discriminator="kind"),
]


# --- when ---


def zone_of(name: str) -> ZoneInfo:
    """The IANA time zone `name`; ValueError when there is none by that name."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"{name!r} is not an IANA time zone (e.g. Europe/Moscow)") from error


class Schedule(Strict):
    cron: str
    """Five fields: minute hour day month weekday, in `time_zone`."""
    time_zone: str

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        zone_of(value)
        return value

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        try:
            CronTrigger.from_crontab(value, timezone="UTC")
        except ValueError as error:
            raise ValueError(f"cron {value!r}: {error}") from error
        return value

    def trigger(self) -> CronTrigger:
        """The APScheduler trigger that fires this schedule in its time zone."""
        return CronTrigger.from_crontab(self.cron, timezone=zone_of(self.time_zone))

    @property
    def zone(self) -> tzinfo:
        return zone_of(self.time_zone)


def _clock_time(value: object) -> object:
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(f'{value!r} is not a time: write it as "HH:MM"')
    if isinstance(value, str) and len(value) != 5:
        raise ValueError(f'{value!r} is not a time "HH:MM"')
    return value


class Window(Strict):
    """When a customer may be contacted, in the customer's local time."""

    weekdays: tuple[Weekday, ...] = WEEKDAYS
    start: time = Field(alias="from")
    end: time = Field(alias="to")
    """Contacts start before this time (exclusive)."""
    holidays: tuple[date, ...] = ()
    skip_holidays: bool = True

    @field_validator("start", "end", mode="before")
    @classmethod
    def _hh_mm(cls, value: object) -> object:
        return _clock_time(value)

    @field_validator("weekdays")
    @classmethod
    def _weekdays(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("list at least one weekday")
        return _unique(value, "weekday")


# --- how often ---


class FrequencyCap(Strict):
    days: int = Field(default=14, ge=0)
    """At most one contact per N days across all campaigns (0: no cap)."""
    exempt: bool = False
    """This campaign neither counts against nor is held back by the cap (post-order feedback)."""


class Retry(Strict):
    delay_minutes: int = Field(ge=0)
    max: int = Field(ge=0)
    """How many more attempts after this outcome, at most."""


class Attempts(Strict):
    no_answer: Retry = Retry(delay_minutes=120, max=2)
    busy: Retry = Retry(delay_minutes=30, max=2)
    voicemail: Retry = Retry(delay_minutes=240, max=1)
    failed: Retry = Retry(delay_minutes=60, max=1)


# --- worth winning back ---


class Economics(Strict):
    """Skip customers whose win-back is worth less than it costs (lapsed audiences only)."""

    margin: float = Field(gt=0, le=1)
    """Share of an order's amount that is margin (0.3: 30 %)."""
    cost_to_win_back: float = Field(ge=0)
    """What one win-back attempt costs, in major units of the shop currency
    (BOOMERANG_DEFAULT_CURRENCY): 150.00 is 150 roubles for RUB."""
    lifetime_months: float | None = Field(default=None, gt=0)
    """Months a customer stays once back; none: the shop's lifetime from the churn of the last
    full calendar month before the run."""


class Campaign(Strict):
    id: str = Field(pattern=ID_PATTERN)
    title: str = Field(min_length=1)
    enabled: bool = True
    audience: Audience
    script: str = Field(pattern=ID_PATTERN)
    """A dialog script id (`dialogs/<script>.<locale>.yaml`)."""
    channels: tuple[Channel, ...]
    """In order of preference; the next one is tried when a customer is unreachable on one."""
    purpose: Purpose
    schedule: Schedule
    window: Window
    frequency_cap: FrequencyCap = FrequencyCap()
    attempts: Attempts = Attempts()
    max_simultaneous_calls: int = Field(default=5, ge=1)
    holdout_share: float = Field(default=0.0, ge=0, lt=1)
    """The share of the audience kept as a control group, never contacted."""
    attribution_days: int = Field(default=30, ge=1)
    """An order within N days after a contact counts as won back by this campaign."""
    priority: int = 100
    """Lower goes first when campaigns compete for the same customer."""
    voicemail_message: str | None = Field(default=None, min_length=1, max_length=500)
    """On an answering machine, say this (plain text, the campaign's language) and hang up;
    without it the call is hung up at once. Either way `attempts.voicemail` decides the retry."""
    economics: Economics | None = None
    """Skip lapsed customers not worth winning back (planner: `skipped`, `not_worth_it`)."""

    @field_validator("channels")
    @classmethod
    def _channels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("list at least one channel: telegram, voice")
        return _unique(value, "channel")
