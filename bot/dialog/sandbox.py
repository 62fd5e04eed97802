"""What a template may contain: the sandboxed Jinja2 environment and the forbidden constructs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Any

from jinja2 import StrictUndefined, Undefined, nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from bot.dialog.template_filters import locale_filters

SAFE_FILTERS = frozenset(
    {
        "upper",
        "lower",
        "capitalize",
        "title",
        "trim",
        "default",
        "round",
        "int",
        "length",
        "join",
        "first",
        "last",
        "replace",
        "truncate",
        "e",
    }
)
LOCALE_FILTERS = frozenset({"date", "money", "plural"})
ALLOWED_FILTERS = SAFE_FILTERS | LOCALE_FILTERS
ALLOWED_TESTS = frozenset(
    {"defined", "undefined", "none", "number", "string", "even", "odd", "divisibleby"}
    | {"eq", "ne", "lt", "le", "gt", "ge", "in", "true", "false", "boolean", "integer"}
)
FORBIDDEN_NODES: dict[type[nodes.Node], str] = {
    nodes.Include: "{% include %}",
    nodes.Import: "{% import %}",
    nodes.FromImport: "{% from ... import %}",
    nodes.Extends: "{% extends %}",
    nodes.Macro: "{% macro %}",
    nodes.CallBlock: "{% call %}",
    nodes.Pow: "the ** operator",
}
MAX_REPEATED_LENGTH = 10_000
"""`'text' * n` may build at most this many characters: the sandbox has no time or memory limit,
and one `{{ 'a' * 10**9 }}` would otherwise take the process down."""


class ScriptSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox with the operators that can build huge values kept small."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            raise SecurityError("the ** operator is not allowed in scripts")
        if operator == "*":
            for sequence, times in ((left, right), (right, left)):
                if (
                    isinstance(sequence, str | list | tuple)
                    and isinstance(times, int)
                    and len(sequence) * times > MAX_REPEATED_LENGTH
                ):
                    raise SecurityError(
                        f"repeating a value builds more than {MAX_REPEATED_LENGTH} items"
                    )
        return super().call_binop(context, operator, left, right)


def _finalize(value: object) -> object:
    """What an expression prints: plain values only; None prints nothing, a tuple is joined."""
    if value is None:
        return ""
    if isinstance(value, Undefined | str | int | float | date | datetime | Decimal):
        return value
    if isinstance(value, tuple) and all(isinstance(item, str | int | float) for item in value):
        return ", ".join(str(item) for item in value)
    raise TypeError(f"a template may only print plain values, not {type(value).__name__}")


@cache
def environment(locale: str) -> ScriptSandbox:
    """The one environment per locale: sandboxed, strict, no loader, no globals, allowed filters."""
    env = ScriptSandbox(
        undefined=StrictUndefined,
        autoescape=False,
        finalize=_finalize,
        keep_trailing_newline=False,
        auto_reload=False,
    )
    env.globals.clear()
    env.filters = {name: env.filters[name] for name in SAFE_FILTERS}
    env.filters.update(locale_filters(locale))
    env.tests = {name: env.tests[name] for name in ALLOWED_TESTS}
    return env


def forbidden(tree: nodes.Template) -> Iterator[tuple[int, str]]:
    """(template line, what) for every construct a script template may not use."""
    for node in tree.find_all(nodes.Node):
        line = node.lineno
        for kind, name in FORBIDDEN_NODES.items():
            if isinstance(node, kind):
                yield line, f"{name} is not allowed"
        if isinstance(node, nodes.Getattr) and node.attr.startswith("_"):
            yield line, f"access to '{node.attr}' is not allowed (names starting with _)"
        elif (
            isinstance(node, nodes.Getitem)
            and isinstance(node.arg, nodes.Const)
            and isinstance(node.arg.value, str)
            and node.arg.value.startswith("_")
        ):
            yield line, f"access to '{node.arg.value}' is not allowed (names starting with _)"
        elif isinstance(node, nodes.Filter) and node.name not in ALLOWED_FILTERS:
            yield line, f"filter '{node.name}' is not allowed; allowed: {_listed(ALLOWED_FILTERS)}"
        elif isinstance(node, nodes.Test) and node.name not in ALLOWED_TESTS:
            yield line, f"test '{node.name}' is not allowed; allowed: {_listed(ALLOWED_TESTS)}"


def _listed(names: frozenset[str]) -> str:
    return ", ".join(sorted(names))
