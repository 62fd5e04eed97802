"""Rendering a step's texts: templates compiled once per script version, plain context, sandbox.

Fields of a step that are templates: `say`, `no_input.say`, `no_match.say` and, for actions,
`do.<index>.code` (issue_offer) and `do.<index>.note` (create_task, handoff).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator, Mapping

from jinja2 import Template
from jinja2.exceptions import SecurityError

from bot.dialog.context import plain_context
from bot.dialog.loader import LoadedScript
from bot.dialog.model import CreateTask, Handoff, IssueOffer, Step
from bot.dialog.sandbox import environment, forbidden

TAG = re.compile(r"<[^>]*>")
SPACES = re.compile(r"\s+")

_compiled: dict[tuple[str, str, str], Template] = {}


class TemplateRejected(SecurityError):
    """A template uses a construct the sandbox forbids; found before it is compiled."""


def template_fields(step: Step) -> Iterator[tuple[str, str]]:
    """(field, template text) for every template in a step."""
    if step.say:
        yield "say", step.say
    for name, reprompt in (("no_input", step.no_input), ("no_match", step.no_match)):
        if reprompt is not None and reprompt.say:
            yield f"{name}.say", reprompt.say
    for index, action in enumerate(step.do):
        if isinstance(action, IssueOffer):
            yield f"do.{index}.code", action.code
        elif isinstance(action, CreateTask | Handoff) and action.note:
            yield f"do.{index}.note", action.note


def compile_template(text: str, locale: str) -> Template:
    """Parse, refuse forbidden constructs (TemplateRejected), compile. Syntax errors propagate."""
    env = environment(locale)
    tree = env.parse(text)
    for line, reason in forbidden(tree):
        raise TemplateRejected(f"line {line}: {reason}")
    return env.from_string(tree)


def compile_script(loaded: LoadedScript) -> None:
    """Compile every template of a script into the cache, keyed by (version, step, field)."""
    for step_id, step in loaded.script.steps.items():
        for field, text in template_fields(step):
            key = (loaded.version, step_id, field)
            if key not in _compiled:
                _compiled[key] = compile_template(text, loaded.script.locale)


def render(loaded: LoadedScript, step_id: str, field: str, context: Mapping[str, object]) -> str:
    """The text of one template field of a step, rendered with a context of plain values.

    TypeError for a context value that is not plain; jinja2's UndefinedError for a missing name,
    SecurityError (TemplateRejected among them) for anything the sandbox refuses; KeyError for a
    step or field that has no template.
    """
    values = plain_context(context)
    key = (loaded.version, step_id, field)
    template = _compiled.get(key)
    if template is None:
        texts = dict(template_fields(loaded.script.steps[step_id]))
        template = compile_template(texts[field], loaded.script.locale)
        _compiled[key] = template
    return template.render(values)


def spoken(text: str) -> str:
    """What a voice says for a chat text: tags dropped, entities unescaped, spaces collapsed."""
    return SPACES.sub(" ", html.unescape(TAG.sub("", text))).strip()
