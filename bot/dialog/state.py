"""Where a conversation is: its script and pinned version, current step, reprompts and answers.

Immutable and JSON-serialisable, so a channel can store it in a row between two turns.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.dialog.events import JsonValue

FORMAT = 1
_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class State:
    script: str
    version: str
    step: str
    reprompts: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    """step -> {"no_input": n, "no_match": n}: reprompts already spent at that step."""
    answers: Mapping[str, JsonValue] = field(default_factory=dict)
    """Recorded outcomes so far: {"nps": 8, "reason": "price"}."""
    finished: bool = False
    outcome: str | None = None

    def at(self, step: str) -> State:
        if step == self.step:
            return self
        return State(
            self.script,
            self.version,
            step,
            self.reprompts,
            self.answers,
            self.finished,
            self.outcome,
        )

    def finish(self, outcome: str) -> State:
        return State(
            self.script, self.version, self.step, self.reprompts, self.answers, True, outcome
        )

    def reprompted(self, step: str, kind: str) -> int:
        return self.reprompts.get(step, {}).get(kind, 0)

    def with_reprompt(self, step: str, kind: str) -> State:
        counts = dict(self.reprompts.get(step, {}))
        counts[kind] = counts.get(kind, 0) + 1
        reprompts = {**self.reprompts, step: counts}
        return State(
            self.script,
            self.version,
            self.step,
            reprompts,
            self.answers,
            self.finished,
            self.outcome,
        )

    def with_answer(self, name: str, value: JsonValue) -> State:
        answers = {**self.answers, name: value}
        return State(
            self.script,
            self.version,
            self.step,
            self.reprompts,
            answers,
            self.finished,
            self.outcome,
        )

    def to_dict(self) -> dict[str, Any]:
        """The state as plain JSON data (what `to_json` encodes; a JSON column stores it as is)."""
        return {
            "format": FORMAT,
            "script": self.script,
            "version": self.version,
            "step": self.step,
            "reprompts": {step: dict(counts) for step, counts in self.reprompts.items()},
            "answers": dict(self.answers),
            "finished": self.finished,
            "outcome": self.outcome,
        }

    def to_json(self) -> str:
        return _ENCODER.encode(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> State:
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> State:
        """The state `to_dict` made (what a JSON column gives back)."""
        if data.get("format") != FORMAT:
            raise ValueError(f"unknown dialog state format {data.get('format')!r}")
        return cls(
            script=str(data["script"]),
            version=str(data["version"]),
            step=str(data["step"]),
            reprompts={
                str(step): {str(kind): int(n) for kind, n in counts.items()}
                for step, counts in data.get("reprompts", {}).items()
            },
            answers=dict(data.get("answers", {})),
            finished=bool(data.get("finished", False)),
            outcome=data.get("outcome"),
        )
