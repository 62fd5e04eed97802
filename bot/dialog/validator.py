"""Checking a loaded script: routes, answers without a route, templates, sandbox, voice and HTML."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser

from jinja2 import TemplateSyntaxError, meta

from bot.dialog.context import CONTEXT_NAMES, sample_context
from bot.dialog.loader import KeyPath, LoadedScript
from bot.dialog.locale_pack import LocalePack
from bot.dialog.model import (
    END_OUTCOMES,
    STEP_ID,
    ChoiceAsk,
    ScaleAsk,
    Step,
    YesNoAsk,
    scale_route,
)
from bot.dialog.problem import Problem, Severity
from bot.dialog.renderer import spoken, template_fields
from bot.dialog.sandbox import environment, forbidden

DEFAULT_MAX_SPOKEN_CHARS = 300
TELEGRAM_TAGS = frozenset({"b", "i", "u", "s", "a", "code"})
PUNCTUATION = re.compile(r"[^\w\s]")
SPACES = re.compile(r"\s+")


def normalise_phrase(phrase: str) -> str:
    """How a voice phrase is compared: lowercase, ё→е, punctuation and extra spaces removed."""
    text = PUNCTUATION.sub(" ", phrase.lower().replace("ё", "е"))
    return SPACES.sub(" ", text).strip()


def check_script(
    loaded: LoadedScript,
    packs: Mapping[str, LocalePack],
    max_spoken_chars: int = DEFAULT_MAX_SPOKEN_CHARS,
) -> list[Problem]:
    """Every error and warning in a script that has passed the schema, in file order."""
    checker = _Checker(loaded, packs, max_spoken_chars)
    checker.run()
    return sorted(checker.problems, key=lambda p: (p.line, p.message))


@dataclass
class _Checker:
    loaded: LoadedScript
    packs: Mapping[str, LocalePack]
    max_spoken_chars: int
    problems: list[Problem] = field(default_factory=list)

    def report(self, path: KeyPath, message: str, severity: Severity = "error") -> None:
        step = str(path[1]) if len(path) >= 2 and path[0] == "steps" else None
        line = self.loaded.lines.key(path)
        self.problems.append(Problem(self.loaded.file, line, message, step, severity))

    def run(self) -> None:
        script = self.loaded.script
        if script.locale not in self.packs:
            self.report(("locale",), f"locale '{script.locale}' has no locale pack")
        if script.start not in script.steps:
            self.report(("start",), f"start step '{script.start}' does not exist")
        for name in script.variables:
            if name not in CONTEXT_NAMES:
                self.report(
                    ("variables",),
                    f"variable '{name}' is not provided by the campaign context",
                    "warning",
                )
        for step_id, step in script.steps.items():
            self.routes(step_id, step)
            self.way_out(step_id, step)
            self.choice_voice(step_id, step)
            self.templates(step_id, step)
        self.reachable()

    def routes(self, step_id: str, step: Step) -> None:
        steps = self.loaded.script.steps
        base: KeyPath = ("steps", step_id)
        for path, label, target in _targets(base, step):
            if target not in steps:
                self.report(path, f"{label} goes to unknown step '{target}'")
        end = step.end
        if end is not None and end not in END_OUTCOMES and not re.match(STEP_ID, end):
            self.report(
                (*base, "end"),
                f"end outcome '{end}' is neither known ({', '.join(END_OUTCOMES)})"
                " nor a lowercase custom name",
            )

    def way_out(self, step_id: str, step: Step) -> None:
        base: KeyPath = ("steps", step_id)
        fallback = step.else_ is not None or step.next is not None or step.end is not None
        ask = step.ask
        if ask is None:
            if step.on:
                self.report((*base, "on"), "`on` routes answers but the step has no `ask`")
            if step.next is None and step.end is None:
                self.report(base, "no way out: the step has no `ask`, `next` or `end`")
            return
        keys = list(step.on)
        if isinstance(ask, YesNoAsk):
            answers = ["yes", "no"]
            self.unfit(base, [k for k in keys if k not in answers], "a yes_no answer is yes or no")
            uncovered = [a for a in answers if a not in step.on]
        elif isinstance(ask, ChoiceAsk):
            self.unfit(
                base,
                [k for k in keys if k not in ask.options],
                f"the options are {', '.join(ask.options)}",
            )
            uncovered = [option for option in ask.options if option not in step.on]
            if ask.free_text and not fallback:
                uncovered.append("free text")
        elif isinstance(ask, ScaleAsk):
            uncovered = self.scale(base, step, ask)
        else:
            self.unfit(base, keys, f"a {ask.type} answer is routed by `else`")
            uncovered = [f"any {ask.type}"]
        if uncovered and not fallback:
            self.report(
                (*base, "on") if step.on else (*base, "ask"),
                f"answers with no route: {', '.join(uncovered)} (add `on` routes or `else`)",
            )

    def unfit(self, base: KeyPath, keys: list[str], expected: str) -> None:
        for key in keys:
            self.report((*base, "on", key), f"route '{key}' does not fit the ask: {expected}")

    def scale(self, base: KeyPath, step: Step, ask: ScaleAsk) -> list[str]:
        covered: dict[int, str] = {}
        for key in step.on:
            bounds = scale_route(key)
            if bounds is None or bounds[0] > bounds[1]:
                self.report(
                    (*base, "on", key),
                    f"route '{key}' does not fit the ask: a scale route is a number or a range"
                    " like 7-8",
                )
                continue
            low, high = bounds
            if low < ask.min or high > ask.max:
                self.report(
                    (*base, "on", key),
                    f"route '{key}' does not fit the ask: outside the scale {ask.min}-{ask.max}",
                )
            for value in range(max(low, ask.min), min(high, ask.max) + 1):
                if value in covered:
                    self.report(
                        (*base, "on", key),
                        f"value {value} is routed by both '{covered[value]}' and '{key}'",
                    )
                covered.setdefault(value, key)
        missing = [v for v in range(ask.min, ask.max + 1) if v not in covered]
        return _ranges(missing)

    def choice_voice(self, step_id: str, step: Step) -> None:
        if not isinstance(step.ask, ChoiceAsk):
            return
        options: KeyPath = ("steps", step_id, "ask", "options")
        phrases: dict[str, str] = {}
        digits: dict[str, str] = {}
        for option_id, option in step.ask.options.items():
            mine = {normalise_phrase(p) for p in (option.label, *option.synonyms)} - {""}
            for phrase in sorted(mine):
                other = phrases.setdefault(phrase, option_id)
                if other != option_id:
                    self.report(
                        (*options, option_id),
                        f"voice phrase '{phrase}' picks both '{other}' and '{option_id}'",
                    )
            if option.dtmf is not None:
                other = digits.setdefault(option.dtmf, option_id)
                if other != option_id:
                    self.report(
                        (*options, option_id, "dtmf"),
                        f"DTMF digit {option.dtmf} is used by both '{other}' and '{option_id}'",
                    )

    def templates(self, step_id: str, step: Step) -> None:
        script = self.loaded.script
        env = environment(script.locale)
        context = sample_context(script.locale, script.variables)
        for name, text in template_fields(step):
            path = _field_path(step_id, step, name)
            first_line = self.loaded.lines.value(path)
            try:
                tree = env.parse(text)
            except TemplateSyntaxError as error:
                line = first_line + (error.lineno or 1) - 1
                self.problems.append(
                    Problem(
                        self.loaded.file, line, f"{name}: template syntax: {error.message}", step_id
                    )
                )
                continue
            refused = False
            for line, reason in forbidden(tree):
                refused = True
                self.problems.append(
                    Problem(self.loaded.file, first_line + line - 1, f"{name}: {reason}", step_id)
                )
            if refused:
                continue
            unknown = sorted(
                n
                for n in meta.find_undeclared_variables(tree)
                if n not in CONTEXT_NAMES and n not in script.variables
            )
            for variable in unknown:
                self.report(
                    path,
                    f"{name}: variable '{variable}' is not provided by the campaign context"
                    " nor declared in `variables`",
                )
            if unknown:
                continue
            try:
                rendered = env.from_string(tree).render(context)
            except Exception as error:  # any runtime error of an author's template
                self.report(path, f"{name}: fails to render: {type(error).__name__}: {error}")
                continue
            if name.endswith("say"):
                self.chat_and_voice(path, name, rendered)

    def chat_and_voice(self, path: KeyPath, name: str, rendered: str) -> None:
        for reason in _telegram_html(rendered):
            self.report(path, f"{name}: {reason}")
        voice = spoken(rendered)
        if len(voice) > self.max_spoken_chars:
            self.report(
                path,
                f"{name}: {len(voice)} characters spoken (over {self.max_spoken_chars}):"
                " too long to listen to",
                "warning",
            )

    def reachable(self) -> None:
        steps = self.loaded.script.steps
        seen: set[str] = set()
        todo = [self.loaded.script.start] if self.loaded.script.start in steps else []
        while todo:
            current = todo.pop()
            if current in seen:
                continue
            seen.add(current)
            base: KeyPath = ("steps", current)
            todo.extend(t for _, _, t in _targets(base, steps[current]) if t in steps)
        for step_id in steps:
            if step_id not in seen:
                self.report(("steps", step_id), "unreachable from the start step", "warning")


def _targets(base: KeyPath, step: Step) -> Iterator[tuple[KeyPath, str, str]]:
    for key, target in step.on.items():
        yield (*base, "on", key), f"route '{key}'", target
    if step.else_ is not None:
        yield (*base, "else"), "else", step.else_
    if step.next is not None:
        yield (*base, "next"), "next", step.next
    for name, reprompt in (("no_input", step.no_input), ("no_match", step.no_match)):
        if reprompt is not None and reprompt.then is not None:
            yield (*base, name, "then"), f"{name}.then", reprompt.then


def _field_path(step_id: str, step: Step, name: str) -> KeyPath:
    parts = name.split(".")
    if parts[0] == "do":
        index = int(parts[1])
        return ("steps", step_id, "do", index, step.do[index].kind, parts[2])
    return ("steps", step_id, *parts)


def _ranges(values: list[int]) -> list[str]:
    spans: list[str] = []
    start = previous = None
    for value in [*values, None]:
        if value is not None and previous is not None and value == previous + 1:
            previous = value
            continue
        if start is not None and previous is not None:
            spans.append(str(start) if start == previous else f"{start}-{previous}")
        start = previous = value
    return spans


class _TagCheck(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.reasons: list[str] = []
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in TELEGRAM_TAGS:
            self.reasons.append(f"HTML tag <{tag}> is not allowed; use {_tags()}")
            return
        names = [name for name, _ in attrs]
        if tag == "a" and names != ["href"]:
            self.reasons.append("<a> needs exactly one attribute, href")
        elif tag != "a" and names:
            self.reasons.append(f"<{tag}> takes no attributes")
        self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.reasons.append(f"HTML tag <{tag}/> is not allowed; use {_tags()}")

    def handle_endtag(self, tag: str) -> None:
        if tag not in TELEGRAM_TAGS:
            return
        if not self.open or self.open[-1] != tag:
            self.reasons.append(f"</{tag}> closes a tag that is not open")
            return
        self.open.pop()


def _tags() -> str:
    return " ".join(f"<{tag}>" for tag in sorted(TELEGRAM_TAGS))


def _telegram_html(text: str) -> list[str]:
    parser = _TagCheck()
    parser.feed(text)
    parser.close()
    reasons = list(dict.fromkeys(parser.reasons))
    reasons.extend(f"<{tag}> is not closed" for tag in parser.open)
    return reasons
