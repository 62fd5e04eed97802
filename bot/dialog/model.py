"""The script format as typed data: what a manager's YAML file means once it has been read.

See docs/dialogs.md for the format with examples. Everything here is plain, immutable data with no
behaviour beyond parsing: the engine, the validator and the renderer work on these objects.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

STEP_ID = r"^[a-z][a-z0-9_]*$"
OUTCOME_FIELDS = (
    "nps",
    "csat",
    "reason",
    "reason_text",
    "callback_at",
    "offer_accepted",
    "consent",
    "opt_out",
)
END_OUTCOMES = (
    "offer_accepted",
    "feedback_given",
    "declined",
    "callback_booked",
    "opted_out",
    "handed_off",
    "no_answer",
)
RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Option(_Strict):
    label: str
    """Button text in chat."""
    synonyms: tuple[str, ...] = ()
    """Words and phrases that pick this option when typed or spoken (the label counts too)."""
    dtmf: str | None = Field(default=None, pattern=r"^[0-9*#]$")


class YesNoAsk(_Strict):
    type: Literal["yes_no"]


class ChoiceAsk(_Strict):
    type: Literal["choice"]
    options: dict[str, Option]
    free_text: bool = False
    """Keep an unmatched answer as text (routed by `else`) instead of a no-match reprompt."""

    @field_validator("options")
    @classmethod
    def _option_ids(cls, options: dict[str, Option]) -> dict[str, Option]:
        if not options:
            raise ValueError("a choice needs at least one option")
        for key in options:
            if not re.match(STEP_ID, key):
                raise ValueError(f"option id {key!r} must be lowercase letters, digits, _")
        return options


class ScaleAsk(_Strict):
    type: Literal["scale"]
    min: int = 0
    max: int = 10

    @model_validator(mode="after")
    def _ordered(self) -> ScaleAsk:
        if self.min >= self.max:
            raise ValueError(f"scale min {self.min} must be below max {self.max}")
        return self


class TextAsk(_Strict):
    type: Literal["text"]


class DateTimeAsk(_Strict):
    type: Literal["datetime"]


class PhoneAsk(_Strict):
    type: Literal["phone"]


Ask = Annotated[
    YesNoAsk | ChoiceAsk | ScaleAsk | TextAsk | DateTimeAsk | PhoneAsk,
    Field(discriminator="type"),
]


class Reprompt(_Strict):
    reprompt: int = Field(default=1, ge=0, le=5)
    """How many times to say `say` and ask again before giving up."""
    say: str | None = None
    then: str | None = None
    """Step to go to after the last reprompt; None ends the talk as no_answer."""


class IssueOffer(_Strict):
    kind: Literal["issue_offer"] = "issue_offer"
    code: str
    """Jinja2 template of the promo code, e.g. BACK-{{ customer_id }}."""
    discount: int = Field(ge=1, le=100)
    expires_in_days: int = Field(default=14, ge=1)


class CreateTask(_Strict):
    kind: Literal["create_task"] = "create_task"
    note: str
    due_in_hours: int = Field(default=24, ge=0)


class OptOut(_Strict):
    kind: Literal["opt_out"] = "opt_out"


class Transfer(_Strict):
    kind: Literal["transfer"] = "transfer"
    to: str = "manager"
    """`manager` (the customer's responsible manager) or a phone number."""


class Handoff(_Strict):
    kind: Literal["handoff"] = "handoff"
    note: str = ""


class ScheduleFollowup(_Strict):
    kind: Literal["schedule_followup"] = "schedule_followup"
    in_days: int = Field(ge=1)
    script: str | None = None


Action = IssueOffer | CreateTask | OptOut | Transfer | Handoff | ScheduleFollowup
ACTIONS: dict[str, type[Action]] = {
    "issue_offer": IssueOffer,
    "create_task": CreateTask,
    "opt_out": OptOut,
    "transfer": Transfer,
    "handoff": Handoff,
    "schedule_followup": ScheduleFollowup,
}


class Step(_Strict):
    say: str = ""
    ask: Ask | None = None
    record: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]*$")
    on: dict[str, str] = Field(default_factory=dict)
    else_: str | None = Field(default=None, alias="else")
    no_input: Reprompt | None = None
    no_match: Reprompt | None = None
    do: tuple[Action, ...] = ()
    next: str | None = None
    end: str | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("on", mode="before")
    @classmethod
    def _keys_as_text(cls, value: Any) -> Any:
        # YAML reads `yes:` as True and `8:` as 8; routes are matched as text.
        if isinstance(value, dict):
            return {_route_key(k): v for k, v in value.items()}
        return value

    @field_validator("do", mode="before")
    @classmethod
    def _actions(cls, value: Any) -> Any:
        if value is None:
            return ()
        if not isinstance(value, list):
            raise ValueError("`do` is a list of actions, e.g. - opt_out: {}")
        actions: list[Action] = []
        for item in value:
            if not isinstance(item, dict) or len(item) != 1:
                raise ValueError(f"each action is one `name: {{...}}` entry, got {item!r}")
            ((name, params),) = item.items()
            if name not in ACTIONS:
                raise ValueError(f"unknown action {name!r}; known: {', '.join(ACTIONS)}")
            actions.append(ACTIONS[name].model_validate(params or {}))
        return tuple(actions)


class Script(_Strict):
    id: str = Field(pattern=STEP_ID)
    title: str
    locale: Literal["ru", "en"]
    variables: tuple[str, ...] = ()
    start: str
    steps: dict[str, Step]

    @field_validator("steps")
    @classmethod
    def _step_ids(cls, steps: dict[str, Step]) -> dict[str, Step]:
        if not steps:
            raise ValueError("a script needs at least one step")
        for key in steps:
            if not re.match(STEP_ID, key):
                raise ValueError(f"step id {key!r} must be lowercase letters, digits, _")
        return steps


def _route_key(key: object) -> str:
    if key is True:
        return "yes"
    if key is False:
        return "no"
    return str(key)


def scale_route(key: str) -> tuple[int, int] | None:
    """`"7-8"` -> (7, 8), `"10"` -> (10, 10); None when the key is not a number or range."""
    match = RANGE.match(key)
    if match is None:
        return None
    low = int(match.group(1))
    high = int(match.group(2)) if match.group(2) is not None else low
    return low, high
